package fsperm

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestPrivate(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	if err := PrivateDir(dir, log); err != nil {
		t.Fatal(err)
	}
	mode := func(p string) os.FileMode {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if m := mode(dir); m != DirMode {
		t.Errorf("new dir %v, want %v", m, DirMode)
	}
	if logs.Len() != 0 {
		t.Errorf("a new dir warned: %s", logs.String())
	}

	os.Chmod(dir, 0o755)
	open := filepath.Join(dir, "open.db")
	os.WriteFile(open, nil, 0o644)
	os.Chmod(open, 0o644)
	private := filepath.Join(dir, "private.db")
	if err := CreatePrivate(private); err != nil {
		t.Fatal(err)
	}
	if err := PrivateDir(dir, log); err != nil {
		t.Fatal(err)
	}
	if err := PrivateFiles(log, open, private, filepath.Join(dir, "missing")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: DirMode, open: FileMode, private: FileMode} {
		if m := mode(p); m != want {
			t.Errorf("%s: %v, want %v", p, m, want)
		}
	}
	out := logs.String()
	if strings.Count(out, "restricted") != 2 || !strings.Contains(out, open) || strings.Contains(out, private) {
		t.Errorf("warnings: want one for the dir and one for open.db:\n%s", out)
	}
}

// TestReadSecret: a secret file is read up to 64 KiB and refused past it,
// never read whole (/dev/zero ran the node out of memory).
func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		size int
		ok   bool
	}{{0, true}, {maxSecretBytes, true}, {maxSecretBytes + 1, false}} {
		p := filepath.Join(dir, fmt.Sprint(tt.size))
		os.WriteFile(p, bytes.Repeat([]byte("k"), tt.size), 0o600)
		b, err := ReadSecret(p)
		if (err == nil) != tt.ok || (tt.ok && len(b) != tt.size) {
			t.Errorf("%d bytes: read %d, %v; want ok %v", tt.size, len(b), err, tt.ok)
		}
	}
	if _, err := ReadSecret("/dev/zero"); err == nil || !strings.Contains(err.Error(), "over 64 KiB") {
		t.Errorf("/dev/zero: %v, want refused as over 64 KiB", err)
	}
	if _, err := ReadSecret(dir); err == nil {
		t.Error("a directory was read as a secret")
	}
}

// TestWarnShared: a secret file others may read is named in a warning,
// with the config key that points at it; a private one, or a missing one,
// is not.
func TestWarnShared(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		mode os.FileMode
		warn bool
	}{{0o600, false}, {0o400, false}, {0o640, true}, {0o644, true}, {0o604, true}} {
		p := filepath.Join(dir, tt.mode.String())
		if err := os.WriteFile(p, []byte("secret"), tt.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, tt.mode)
		var buf bytes.Buffer
		WarnShared(slog.New(slog.NewTextHandler(&buf, nil)), "smtp.tls_key", p)
		if got := strings.Contains(buf.String(), "smtp.tls_key is readable by group or others"); got != tt.warn {
			t.Errorf("mode %v: warned %v, want %v (%s)", tt.mode, got, tt.warn, buf.String())
		}
	}
	var buf bytes.Buffer
	WarnShared(slog.New(slog.NewTextHandler(&buf, nil)), "smtp.tls_key", filepath.Join(dir, "missing"))
	if buf.Len() != 0 {
		t.Errorf("a missing file was warned of: %s", buf.String())
	}
}

// TestPrivateFilesChangeOnlyTheirOwnFiles: the files a node tightens at
// start are its own regular files in data_dir. A symbolic link there was
// followed: a node running as root, finding tenants.snapshot.json linked
// to /etc/shadow or the panel key to /dev/zero, made /etc/shadow 0600 and
// /dev/zero 0600 (every other user's programs lost it). A link, a FIFO, a
// device or a directory is left as it is, and named in a warning; the
// readers report what they cannot use.
func TestPrivateFilesChangeOnlyTheirOwnFiles(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	outside := filepath.Join(elsewhere, "shadow")
	if err := os.WriteFile(outside, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(outside, 0o644)
	link := filepath.Join(dir, "tenants.snapshot.json")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "panel-session.key")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(fifo, 0o644)
	sub := filepath.Join(dir, "mxgrid.db")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(sub, 0o755)
	var logs bytes.Buffer
	if err := PrivateFiles(slog.New(slog.NewTextHandler(&logs, nil)), link, fifo, sub); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{outside: 0o644, fifo: 0o644, sub: 0o755} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want it left at %v", p, fi.Mode().Perm(), want)
		}
	}
	for _, p := range []string{link, fifo, sub} {
		if !strings.Contains(logs.String(), p) {
			t.Errorf("no warning names %s:\n%s", p, logs.String())
		}
	}
}
