package smtpd_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/tracking"
)

// trackerLog keeps what the session hands to message tracking.
type trackerLog struct {
	mu   sync.Mutex
	recs []tracking.Record
}

func (l *trackerLog) Record(r tracking.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
}

func (l *trackerLog) take() []tracking.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.recs
	l.recs = nil
	return out
}

// startTracked serves example.org (routed to a sink) with stages and a
// tracker.
func startTracked(t *testing.T, stages []scanner.Stage) (*testNode, *smtptest.Sink, *trackerLog) {
	t.Helper()
	sink := smtptest.StartSink(t)
	cfg := testConfig(t)
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr, "bob", "carol"))
	deps := configDeps(t, cfg, stages)
	log := &trackerLog{}
	deps.Tracker = log
	return startWith(t, cfg, deps), sink, log
}

// TestTrackingRecordsEveryRecipientOutcome: each recipient's outcome is
// recorded once with what the sender heard: delivered with the customer
// server's reply, refused with our reference, deferred with its reason
// (the customer's server down at RCPT, its 4xx at DATA, a failed scan).
func TestTrackingRecordsEveryRecipientOutcome(t *testing.T) {
	one := func(t *testing.T, log *trackerLog) tracking.Record {
		t.Helper()
		recs := log.take()
		if len(recs) != 1 {
			t.Fatalf("%d records, want 1: %+v", len(recs), recs)
		}
		return recs[0]
	}

	t.Run("delivered, two recipients", func(t *testing.T) {
		n, _, log := startTracked(t, nil)
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.cmd(250, "RCPT TO:<carol@example.org>")
		c.data(250, testMessage)
		recs := log.take()
		if len(recs) != 2 || recs[0].Recipient != "bob@example.org" || recs[1].Recipient != "carol@example.org" {
			t.Fatalf("records %+v", recs)
		}
		r := recs[0]
		if r.Status != tracking.StatusDelivered || r.ReplyCode != 250 || !strings.Contains(r.Downstream, "2.0.0") ||
			r.MessageID != "<1@sender.test>" || r.Subject != "quarterly report" || r.Sender != "alice@sender.test" ||
			r.HELO != "client.sender.test" || r.QueueID == "" || r.Size == 0 || r.Reference != "" || r.Action != "deliver" {
			t.Fatalf("delivered record %+v", r)
		}
	})

	t.Run("an encoded subject is kept decoded", func(t *testing.T) {
		n, _, log := startTracked(t, nil)
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.data(250, strings.Replace(testMessage, "Subject: quarterly report", "Subject: =?UTF-8?B?RmFjdHVyYSBuwrogMjAyNg==?=", 1))
		if r := one(t, log); r.Subject != "Factura nº 2026" {
			t.Fatalf("subject %q", r.Subject)
		}
	})

	t.Run("spam refused with a reference", func(t *testing.T) {
		n, _, log := startTracked(t, []scanner.Stage{{Check: scoreCheck{score: 30}}})
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<spammer@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		msg := c.data(550, testMessage)
		r := one(t, log)
		if r.Status != tracking.StatusRefused || r.ReplyCode != 550 || r.Reference == "" || !strings.Contains(msg, "[ref "+r.Reference+"]") ||
			r.Action != "reject" || len(r.Symbols) != 1 || r.Symbols[0] != "FIXED" || r.Score != 30 {
			t.Fatalf("refused record %+v (reply %q)", r, msg)
		}
	})

	t.Run("unknown user refused at RCPT", func(t *testing.T) {
		n, _, log := startTracked(t, nil)
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(550, "RCPT TO:<mallory@example.org>")
		if r := one(t, log); r.Status != tracking.StatusRefused || r.Recipient != "mallory@example.org" || r.ReplyCode != 550 {
			t.Fatalf("record %+v", r)
		}
	})

	t.Run("customer server down: deferred, unreachable", func(t *testing.T) {
		n, sink, log := startTracked(t, nil)
		sink.Stop()
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(451, "RCPT TO:<bob@example.org>")
		if r := one(t, log); r.Status != tracking.StatusDeferred || r.DeferReason != tracking.DeferUnreachable || r.ReplyCode != 451 {
			t.Fatalf("record %+v", r)
		}
	})

	t.Run("customer server 4xx at DATA: deferred with its text", func(t *testing.T) {
		n, sink, log := startTracked(t, nil)
		sink.RejectData(&smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox over quota"})
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.data(452, testMessage)
		r := one(t, log)
		if r.Status != tracking.StatusDeferred || r.DeferReason != tracking.DeferCustomerTempfail || !strings.Contains(r.Reply, "mailbox over quota") {
			t.Fatalf("record %+v", r)
		}
	})

	t.Run("scan failed under tempfail", func(t *testing.T) {
		n, _, log := startTracked(t, []scanner.Stage{{Check: failingCheck{}, OnError: scanner.OnErrorTempfail}})
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.data(451, testMessage)
		if r := one(t, log); r.Status != tracking.StatusDeferred || r.DeferReason != tracking.DeferScan {
			t.Fatalf("record %+v", r)
		}
	})
}

// failingCheck cannot run.
type failingCheck struct{}

func (failingCheck) Name() string { return "failing" }
func (failingCheck) Check(context.Context, *scanner.Envelope, *scanner.Message) (scanner.Result, error) {
	return scanner.Result{}, errors.New("engine down")
}
