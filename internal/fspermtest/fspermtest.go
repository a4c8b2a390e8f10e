//go:build unix

// Package fspermtest plants, in a test's directory, what a node may find
// where it keeps a file of its own in data_dir: a symbolic link (to a file
// outside, or to nothing) or a FIFO. Each test of a file the node opens
// there plants them; one place makes them the same way.
package fspermtest

import (
	"os"
	"syscall"
	"testing"
)

// Symlink makes path a symbolic link to target.
func Symlink(t testing.TB, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// FIFO makes path a FIFO, or skips the test where the file system has
// none.
func FIFO(t testing.TB, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("no FIFO: %v", err)
	}
}
