//go:build linux || darwin

package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/fspermtest"
)

// TestDataDirLockFollowsNoLink: mxgrid.lock is opened, truncated and
// written with the node's pid. A symbolic link in its place (whoever can
// write data_dir, or an operator's link) was followed, so a node running
// as root emptied the file it named (/etc/passwd, a database) and wrote
// its pid there, or created a file where a dangling link pointed. The
// lock is then not taken (a warning, as for a read-only data_dir) and the
// link's target is left as it was.
func TestDataDirLockFollowsNoLink(t *testing.T) {
	const precious = "root:x:0:0:root:/root:/bin/sh\n"
	for _, tc := range []struct {
		name string
		// target is made (or not) in outside, a directory of its own,
		// and the link points at it.
		make func(t *testing.T, target string)
		// want is the target's content after the lock was tried; "" with
		// wantMissing: the target must still not exist.
		want        string
		wantMissing bool
	}{
		{
			name: "link to a regular file",
			make: func(t *testing.T, target string) {
				if err := os.WriteFile(target, []byte(precious), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: precious,
		},
		{
			name:        "dangling link",
			make:        func(t *testing.T, target string) {},
			wantMissing: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			target := filepath.Join(outside, "victim")
			tc.make(t, target)
			fspermtest.Symlink(t, target, filepath.Join(dir, lockFile))
			release, err := lockDataDir(dir)
			if err == nil {
				release()
				t.Errorf("the lock was taken through a symbolic link")
			}
			var inUse *dataDirInUseError
			if errors.As(err, &inUse) {
				t.Errorf("a link is not another node: %v", err)
			}
			got, rerr := os.ReadFile(target)
			switch {
			case tc.wantMissing && !errors.Is(rerr, os.ErrNotExist):
				t.Errorf("the dangling link's target was created (%q, %v)", got, rerr)
			case !tc.wantMissing && string(got) != tc.want:
				t.Errorf("the link's target now holds %q, want %q unchanged", got, tc.want)
			}
		})
	}

	// A FIFO or a directory there is no lock either: refused at once,
	// named, never waited on, and never another node.
	for name, plant := range map[string]func(string) error{
		"FIFO":      func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"directory": func(p string) error { return os.Mkdir(p, 0o700) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, lockFile)
			if err := plant(p); err != nil {
				t.Skip(err)
			}
			done := make(chan error, 1)
			go func() {
				release, err := lockDataDir(dir)
				if err == nil {
					release()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || errors.As(err, new(*dataDirInUseError)) || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), p) {
					t.Errorf("lockDataDir: %v, want refused as not a regular file, naming it", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("lockDataDir still blocked after 5 s")
			}
		})
	}

	// A regular file is still locked, and a second taker refused.
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("locking a fresh data_dir: %v", err)
	}
	defer release()
	if _, err := lockDataDir(dir); !errors.As(err, new(*dataDirInUseError)) {
		t.Fatalf("a second lock: %v, want the directory in use", err)
	}
}
