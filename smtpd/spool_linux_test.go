//go:build linux

package smtpd_test

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/metrictest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
)

// TestSpoolOnAFullDiskIs452: smtp.spool_min_free is checked as a spool file
// is made, and the disk can still fill while its body arrives (other
// senders' bodies, the quarantine, a log; spool_min_free set low). The
// write's ENOSPC was an "unclassified error": 451 4.3.0 "local error",
// logged at ERROR and counted read_error, as if the client had gone, so
// the operator's dashboards did not show the node out of disk. It is the
// low-disk refusal: 452 4.3.1, counted no_resources, nothing delivered,
// no file left. It needs a small file system of its own (tmpfs, as root).
func TestSpoolOnAFullDiskIs452(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		t.Skipf("no tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	n, sink := startNode(t, func(cfg *config.Config) {
		cfg.DataDir = dir
		cfg.SMTP.SpoolThreshold = 64 << 10
		cfg.SMTP.SpoolMinFree = 0
	})
	code, msg := smtptest.Send(t, n.SMTPAddr(), "big@sender.test", "bob@example.org", bigBody(1, 2<<20))
	if code != 452 || !strings.Contains(msg, "insufficient system resources") {
		t.Errorf("big body filling the disk: %d %s, want 452 4.3.1", code, msg)
	}
	if got := metrictest.Counter(t, n.metrics, "mxgrid_smtp_transactions_total", "no_resources"); got != 1 {
		t.Errorf("transactions counted no_resources: %v, want 1", got)
	}
	if code, msg := smtptest.Send(t, n.SMTPAddr(), "small@sender.test", "bob@example.org", bigBody(2, 4<<10)); code != 250 {
		t.Errorf("small body after: %d %s, want 250", code, msg)
	}
	if got := len(sink.Messages()); got != 1 {
		t.Errorf("%d messages delivered, want the small one", got)
	}
	if left := spoolFiles(t, n); len(left) != 0 {
		t.Errorf("%d spool files left", len(left))
	}
}
