//go:build linux || darwin

package tenant

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
