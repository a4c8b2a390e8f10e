//go:build linux || darwin

package tenant

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/fspermtest"

	"github.com/mxgrid/mxgrid/health"
)

// TestSnapshotPathThatIsNoFileDoesNotHang: a FIFO where the snapshot or
// its journal should be (made by mistake, or by whoever can write
// data_dir) blocked the open until something wrote to it: a node starting
// with the store down never got past reading it and never listened, and a
// running one stopped at its next journal line, applying no tenant change
// again. Neither is a file the node wrote: the snapshot is refused and
// named, the journal line is not written (the next change rewrites the
// snapshot instead).
func TestSnapshotPathThatIsNoFileDoesNotHang(t *testing.T) {
	within := func(t *testing.T, what string, fn func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { fn(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s still blocked after 5 s", what)
		}
	}
	t.Run("snapshot", func(t *testing.T) {
		dir := t.TempDir()
		if err := syscall.Mkfifo(filepath.Join(dir, SnapshotFile), 0o600); err != nil {
			t.Skipf("no FIFO: %v", err)
		}
		var h *health.Registry
		within(t, "start", func() { _, h = newTestSyncer(t, dir, &fakeLoader{err: errors.New("down")}, nil) })
		if level, conds := h.Report(); level != health.NotReady || len(conds) != 1 || !strings.Contains(conds[0].Reason, "not a regular file") {
			t.Fatalf("readiness %v %v, want not ready naming the file", level, conds)
		}
	})
	t.Run("journal", func(t *testing.T) {
		dir := t.TempDir()
		l := &fakeLoader{data: storeData(1, "one.test:25")}
		s, _ := newTestSyncer(t, dir, l, nil)
		if err := syscall.Mkfifo(filepath.Join(dir, SnapshotJournal), 0o600); err != nil {
			t.Skipf("no FIFO: %v", err)
		}
		l.deltas = []Delta{{Data: Data{Version: 2}, RemovedDomains: []int64{3}}, {Data: Data{Version: 3}, RemovedDomains: []int64{4}}}
		within(t, "a delta", func() { s.Reload(context.Background()) })
		within(t, "the next delta", func() { s.Reload(context.Background()) })
		if v := s.Directory().Snapshot().Version; v != 3 {
			t.Fatalf("serving version %d, want 3", v)
		}
		again, _ := newTestSyncer(t, dir, &fakeLoader{err: errors.New("down")}, nil)
		if v := again.Directory().Snapshot().Version; v != 3 {
			t.Fatalf("restarted from the files at version %d, want 3", v)
		}
	})
}

// TestSnapshotFilesFollowNoLink: the journal is opened for append, and
// created, at each tenant change; a symbolic link in its place was
// followed, so a node running as root appended JSON lines to whatever
// file the link named (/etc/passwd, another program's database) or
// created the file a dangling link pointed at. The snapshot itself was
// read through a link: another node's snapshot, or any file of the same
// form, was served as this node's domains. Neither is a file the node
// wrote: the journal line is not written (the next change rewrites the
// snapshot instead, which replaces the link), and a linked snapshot is
// refused and named, as a FIFO is.
func TestSnapshotFilesFollowNoLink(t *testing.T) {
	const precious = "root:x:0:0:root:/root:/bin/sh\n"
	for _, tt := range []struct {
		name string
		// plant makes the journal's path; outside is a path elsewhere.
		plant   func(t *testing.T, path, outside string)
		holds   string // what outside holds after; "" with missing
		missing bool
	}{
		{"link to a file outside", func(t *testing.T, path, outside string) {
			if err := os.WriteFile(outside, []byte(precious), 0o644); err != nil {
				t.Fatal(err)
			}
			fspermtest.Symlink(t, outside, path)
		}, precious, false},
		{"dangling link", func(t *testing.T, path, outside string) {
			fspermtest.Symlink(t, outside, path)
		}, "", true},
		{"directory", func(t *testing.T, path, _ string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "", true},
	} {
		t.Run("journal/"+tt.name, func(t *testing.T) {
			dir, outside := t.TempDir(), filepath.Join(t.TempDir(), "victim")
			l := &fakeLoader{data: storeData(1, "one.test:25")}
			s, _ := newTestSyncer(t, dir, l, nil)
			tt.plant(t, filepath.Join(dir, SnapshotJournal), outside)
			l.deltas = []Delta{{Data: Data{Version: 2}, RemovedDomains: []int64{3}}, {Data: Data{Version: 3}, RemovedDomains: []int64{4}}}
			s.Reload(context.Background())
			s.Reload(context.Background())
			if v := s.Directory().Snapshot().Version; v != 3 {
				t.Fatalf("serving version %d, want 3", v)
			}
			b, err := os.ReadFile(outside)
			if tt.missing && !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s was created through the link: %q, %v", outside, b, err)
			}
			if !tt.missing && string(b) != tt.holds {
				t.Fatalf("%s was written through the link: %q", outside, b)
			}
			again, _ := newTestSyncer(t, dir, &fakeLoader{err: errors.New("down")}, nil)
			if v := again.Directory().Snapshot().Version; v != 3 {
				t.Fatalf("restarted from the files at version %d, want 3", v)
			}
		})
	}
	t.Run("snapshot/link to another node's snapshot", func(t *testing.T) {
		other, dir := t.TempDir(), t.TempDir()
		newTestSyncer(t, other, &fakeLoader{data: storeData(7, "other.test:25")}, nil)
		fspermtest.Symlink(t, filepath.Join(other, SnapshotFile), filepath.Join(dir, SnapshotFile))
		s, h := newTestSyncer(t, dir, &fakeLoader{err: errors.New("down")}, nil)
		if v := s.Directory().Snapshot().Version; v == 7 {
			t.Fatal("served the snapshot a link named")
		}
		if level, conds := h.Report(); level != health.NotReady || len(conds) != 1 || !strings.Contains(conds[0].Reason, "not a regular file") {
			t.Fatalf("readiness %v %v, want not ready naming the file", level, conds)
		}
	})
}
