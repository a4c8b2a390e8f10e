package smtpd_test

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/tenant"
)

// hungHold is a quarantine whose store does not answer, as a stopped
// PostgreSQL does (connections accepted, nothing answered): each hold
// fails with the store's deadline after wait, until answering is set.
type hungHold struct {
	wait      time.Duration
	answering atomic.Bool
	holds     atomic.Int32
}

func (h *hungHold) Hold(ctx context.Context, it quarantine.Item, msg io.Reader) ([]int64, error) {
	h.holds.Add(1)
	io.Copy(io.Discard, msg)
	if h.answering.Load() {
		return make([]int64, len(it.Recipients)), nil
	}
	select {
	case <-time.After(h.wait):
	case <-ctx.Done():
	}
	return nil, fmt.Errorf("store: quarantine a message: begin: %w", context.DeadlineExceeded)
}

func (h *hungHold) Ready(ctx context.Context) error {
	if h.answering.Load() {
		return nil
	}
	return fmt.Errorf("store: try a hold: begin: %w", context.DeadlineExceeded)
}

// TestHungQuarantineStoreIsNotWaitedForByEveryMessage: while the store
// does not answer, tag-band mail of a domain that quarantines is tagged
// and delivered, as when it is down; but each message waited for the
// store's timeout first (5 s on a node whose PostgreSQL was stopped),
// holding its session, and most of a node's sessions went to that. Once a
// hold timed out, the next ones are not tried until the store takes holds
// again (RecheckQuarantine, which the node runs every few seconds).
func TestHungQuarantineStoreIsNotWaitedForByEveryMessage(t *testing.T) {
	sink := smtptest.StartSink(t)
	cfg := testConfig(t)
	d := smtptest.Domain("example.org", sink.Addr, "bob")
	d.TagAction = ptr(tenant.TagQuarantine)
	cfg.Domains = append(cfg.Domains, d)
	deps := configDeps(t, cfg, []scanner.Stage{{Check: scoreCheck{score: 8}}})
	q := &hungHold{wait: 2 * time.Second}
	deps.Quarantine = q
	srv, err := smtpd.New(cfg.SMTP, deps)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv, cfg.SMTP.ShutdownGrace)
	send := func() time.Duration {
		t.Helper()
		c := dial(t, addr)
		start := time.Now()
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.data(250, testMessage)
		return time.Since(start)
	}

	send() // waits for the store's deadline, then delivered tagged
	if got := len(sink.Messages()); got != 1 || q.holds.Load() != 1 {
		t.Fatalf("first message: %d delivered, %d holds tried; want 1 and 1", got, q.holds.Load())
	}
	for i := range 3 {
		if took := send(); took >= q.wait/2 {
			t.Errorf("message %d waited %v for the store that did not answer the last hold", i+2, took)
		}
	}
	srv.RecheckQuarantine(context.Background()) // the store still silent
	send()
	if got, holds := len(sink.Messages()), q.holds.Load(); got != 5 || holds != 1 {
		t.Errorf("store hung: %d delivered, %d holds tried; want 5 and 1", got, holds)
	}

	q.answering.Store(true)
	srv.RecheckQuarantine(context.Background())
	send()
	if got, holds := len(sink.Messages()), q.holds.Load(); got != 5 || holds != 2 {
		t.Errorf("store back: %d delivered, %d holds tried; want the message held: 5 and 2", got, holds)
	}
}
