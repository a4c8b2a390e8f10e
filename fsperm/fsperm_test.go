package fsperm

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/fspermtest"
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
	fspermtest.Symlink(t, outside, link)
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

// plants are what may be found where the node keeps a file in data_dir,
// other than its own regular file: each is made at path, with outside a
// path in a directory of its own that a link may name.
var plants = []struct {
	name string
	// plant makes the thing at path; outside is made (or not) first.
	plant func(t *testing.T, path, outside string)
	// outsideHolds is what outside holds; missing: outside must not exist.
	outsideHolds string
	missing      bool
}{
	{"link to a file outside", func(t *testing.T, path, outside string) {
		if err := os.WriteFile(outside, []byte("root:x:0:0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chmod(outside, 0o644)
		fspermtest.Symlink(t, outside, path)
	}, "root:x:0:0\n", false},
	{"dangling link", func(t *testing.T, path, outside string) {
		fspermtest.Symlink(t, outside, path)
	}, "", true},
	{"FIFO", func(t *testing.T, path, _ string) {
		fspermtest.FIFO(t, path)
	}, "", true},
	{"directory", func(t *testing.T, path, _ string) {
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
	}, "", true},
}

// checkOutside fails t unless outside is as the plant left it: a link's
// target neither created, written nor chmodded.
func checkOutside(t *testing.T, outside, holds string, missing bool) {
	t.Helper()
	fi, err := os.Lstat(outside)
	if missing {
		if err == nil {
			t.Fatalf("%s was created through the link", outside)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != holds || fi.Mode().Perm() != 0o644 {
		t.Fatalf("%s changed: %q, mode %v", outside, b, fi.Mode().Perm())
	}
}

// TestCreatePrivateCreatesOnlyItsOwnFile: CreatePrivate makes the SQLite
// database before SQLite opens it. A dangling symbolic link at its path
// was followed and its target created (empty, 0600), so a node running as
// root created a file wherever a link in data_dir pointed (/etc/cron.d/x,
// /etc/ld.so.preload); a FIFO blocked the node's start. Anything but a
// regular file is refused, naming what it is, without waiting.
func TestCreatePrivateCreatesOnlyItsOwnFile(t *testing.T) {
	for _, tt := range plants {
		t.Run(tt.name, func(t *testing.T) {
			dir, elsewhere := t.TempDir(), t.TempDir()
			path, outside := filepath.Join(dir, "mxgrid.db"), filepath.Join(elsewhere, "victim")
			tt.plant(t, path, outside)
			done := make(chan error, 1)
			go func() { done <- CreatePrivate(path) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("CreatePrivate still blocked after 5 s")
			}
			if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), path) {
				t.Errorf("CreatePrivate: %v, want refused as not a regular file, naming it", err)
			}
			checkOutside(t, outside, tt.outsideHolds, tt.missing)
		})
	}
	// A regular file, new or there already, is made or kept, 0600.
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "new.db"), filepath.Join(dir, "new.db")} {
		if err := CreatePrivate(p); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != FileMode {
			t.Fatalf("%s: %v %v, want a regular file 0600", p, fi, err)
		}
	}
}

// TestPrivateFilesLeaveWhatIsNotTheirs: each plant, and a hard link to a
// file elsewhere, is left as it is with a warning naming it; the open
// file's mode is what is changed, never a path's after a check.
func TestPrivateFilesLeaveWhatIsNotTheirs(t *testing.T) {
	hard := plants[0]
	hard.name = "hard link to a file outside"
	hard.plant = func(t *testing.T, path, outside string) {
		if err := os.WriteFile(outside, []byte("root:x:0:0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chmod(outside, 0o644)
		if err := os.Link(outside, path); err != nil {
			t.Skipf("no hard link: %v", err)
		}
	}
	for _, tt := range append(slices.Clone(plants), hard) {
		t.Run(tt.name, func(t *testing.T) {
			dir, elsewhere := t.TempDir(), t.TempDir()
			path, outside := filepath.Join(dir, "tenants.snapshot.json"), filepath.Join(elsewhere, "victim")
			if tt.name == hard.name {
				// Same file system as dir: t.TempDir's parent.
				outside = filepath.Join(filepath.Dir(dir), "victim-"+filepath.Base(dir))
				t.Cleanup(func() { os.Remove(outside) })
			}
			tt.plant(t, path, outside)
			var logs bytes.Buffer
			done := make(chan error, 1)
			go func() { done <- PrivateFiles(slog.New(slog.NewTextHandler(&logs, nil)), path) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("PrivateFiles: %v, want a warning only", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("PrivateFiles still blocked after 5 s")
			}
			if !strings.Contains(logs.String(), path) || !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("no warning names %s:\n%s", path, logs.String())
			}
			checkOutside(t, outside, tt.outsideHolds, tt.missing)
		})
	}
}
