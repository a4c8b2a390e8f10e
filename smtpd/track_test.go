package smtpd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
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

// await returns the records once there are n, or fails after 5 s: a
// session whose client went away records on its own time.
func (l *trackerLog) await(t *testing.T, n int) []tracking.Record {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		l.mu.Lock()
		got := len(l.recs)
		l.mu.Unlock()
		if got >= n {
			break
		}
	}
	return l.take()
}

// startTracked serves example.org (routed to a sink) with stages and a
// tracker; mutate, if given, adjusts the config.
func startTracked(t *testing.T, stages []scanner.Stage, mutate ...func(*config.Config)) (*testNode, *smtptest.Sink, *trackerLog) {
	t.Helper()
	sink := smtptest.StartSink(t)
	cfg := testConfig(t)
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr, "bob", "carol"))
	for _, m := range mutate {
		m(&cfg)
	}
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

	// The customer server's refusal is its reply too: the record kept
	// only ours, so a 421 (ours 451) read as a 451, and the panel's
	// "the customer's server answered us" was empty for every refusal.
	// Postfix logs "host X said: ..." for each.
	for _, tc := range []struct {
		name      string
		at        string
		reply     *smtp.SMTPError
		heard     int
		status    tracking.Status
		wantReply string
	}{
		{"421 at DATA", "DATA", &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "going down"}, 451, tracking.StatusDeferred, "421 4.3.2 going down"},
		{"550 at DATA", "DATA", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "content refused"}, 550, tracking.StatusRefused, "550 5.7.1 content refused"},
		{"550 at RCPT", "RCPT", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, 550, tracking.StatusRefused, "550 5.1.1 no such user"},
		{"450 without an enhanced code at RCPT", "RCPT", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.NoEnhancedCode, Message: "greylisted"}, 450, tracking.StatusDeferred, "450 greylisted"},
	} {
		t.Run("customer server's "+tc.name+": its reply kept", func(t *testing.T) {
			n, sink, log := startTracked(t, nil)
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			if tc.at == "RCPT" {
				sink.RejectRcpt("bob@example.org", tc.reply)
				c.cmd(tc.heard, "RCPT TO:<bob@example.org>")
			} else {
				sink.RejectData(tc.reply)
				c.cmd(250, "RCPT TO:<bob@example.org>")
				c.data(tc.heard, testMessage)
			}
			if r := one(t, log); r.Status != tc.status || r.ReplyCode != tc.heard || r.Downstream != tc.wantReply {
				t.Fatalf("record %+v, want %s with the customer's reply %q", r, tc.status, tc.wantReply)
			}
		})
	}

	// The customer's server read the whole message and was lost before
	// its reply: it may have taken it. Recorded as a plain timeout, the
	// log told an operator chasing a duplicate that nothing had arrived;
	// Postfix logs "message may be sent more than once".
	t.Run("customer server lost after the message: deferred, maybe delivered", func(t *testing.T) {
		n, sink, log := startTracked(t, nil, func(c *config.Config) { c.Relay.DataTimeout = 300 * time.Millisecond })
		gate := sink.GateData() // read, never answered
		go func() { <-gate.Entered }()
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.data(451, testMessage)
		if r := one(t, log); r.Status != tracking.StatusDeferred || r.DeferReason != tracking.DeferMaybeDelivered || r.ReplyCode != 451 {
			t.Fatalf("record %+v", r)
		}
	})

	t.Run("customer server lost before the message's end: deferred, timeout", func(t *testing.T) {
		n, sink, log := startTracked(t, nil, func(c *config.Config) { c.Relay.CommandTimeout = 300 * time.Millisecond })
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		sink.Stop() // the open session's DATA finds it gone
		c.data(451, testMessage)
		if r := one(t, log); r.Status != tracking.StatusDeferred || r.DeferReason != tracking.DeferTimeout {
			t.Fatalf("record %+v", r)
		}
	})

	// Refused by go-smtp before any of its bytes reached the session, the
	// first BDAT chunk past the size limit left no record: the sender got
	// a permanent 552, and the customer's message log knew nothing of it.
	type step struct {
		send string
		want int
	}
	big := strings.Repeat("x", 5000)
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"DATA", []step{{"DATA\r\n", 354}, {big + "\r\n.\r\n", 552}}},
		{"BDAT, in a later chunk", []step{{"BDAT 20\r\nSubject: too big\r\n\r\n", 250}, {"BDAT 5000 LAST\r\n" + big, 552}}},
		{"BDAT, in its first chunk", []step{{"BDAT 5000 LAST\r\n" + big, 552}}},
	} {
		t.Run("too large by "+tc.name+": refused", func(t *testing.T) {
			n, sink, log := startTracked(t, nil, func(c *config.Config) { c.SMTP.MaxMessageBytes = 4096 })
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			for _, s := range tc.steps {
				c.raw(s.want, s.send)
			}
			c.cmd(250, "NOOP") // the transaction is over
			if r := one(t, log); r.Status != tracking.StatusRefused || r.ReplyCode != 552 || r.Recipient != "bob@example.org" || r.Action != "" {
				t.Fatalf("record %+v", r)
			}
			if len(sink.Messages()) != 0 {
				t.Fatal("delivered")
			}
		})
	}

	// A client that breaks the transfer off hears nothing: recorded as
	// our "451 local error" and a busy node, it told the customer that we
	// had failed their mail.
	for _, tc := range []struct {
		name    string
		breakOf func(c *client)
	}{
		{"closes the connection mid-DATA", func(c *client) {
			c.raw(354, "DATA\r\n")
			c.write("Subject: x\r\n\r\nhalf a bo")
			c.c.Close()
		}},
		{"gives a BDAT transfer up", func(c *client) {
			c.raw(250, "BDAT 12\r\nSubject: x\r\n")
			c.cmd(250, "RSET")
		}},
	} {
		t.Run("the client "+tc.name+": deferred, nothing answered", func(t *testing.T) {
			n, sink, log := startTracked(t, nil)
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			tc.breakOf(c)
			recs := log.await(t, 1)
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1: %+v", len(recs), recs)
			}
			if r := recs[0]; r.Status != tracking.StatusDeferred || r.DeferReason != tracking.DeferClientGone || r.ReplyCode != 0 || r.Reply != "" || r.Reference != "" {
				t.Fatalf("record %+v", r)
			}
			if len(sink.Messages()) != 0 {
				t.Fatal("delivered")
			}
		})
	}

	t.Run("the client does not send its message within data_timeout: deferred, its own doing", func(t *testing.T) {
		n, _, log := startTracked(t, nil, func(c *config.Config) { c.SMTP.DataTimeout = 300 * time.Millisecond })
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.raw(354, "DATA\r\n")
		c.write("Subject: x\r\n")
		c.expect(421)
		if r := one(t, log); r.Status != tracking.StatusDeferred || r.DeferReason != tracking.DeferClientGone || r.ReplyCode != 421 {
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

// outcomeLog keeps what the session counts per domain.
type outcomeLog struct {
	mu     sync.Mutex
	counts map[int64]int
}

func (l *outcomeLog) Count(domainID int64, _ smtpd.Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[domainID]++
}

// refuseHold stands in for the quarantine where nothing reaches it.
type refuseHold struct{}

func (refuseHold) Hold(context.Context, quarantine.Item, io.Reader) ([]int64, error) {
	return nil, errors.New("nothing is held in this test")
}

func (refuseHold) Ready(context.Context) error { return errors.New("nothing is held in this test") }

// TestEachRecipientBooksToItsOwnDomain: two domains of one customer on
// one route and policy share a transaction, and each recipient's
// tracking record and outcome count belong to its own domain. Booked to
// the transaction's first domain, the second domain's history and
// statistics missed its mail; with quarantine on, a held message is one
// domain's, so the other domain's recipient goes in its own transaction.
func TestEachRecipientBooksToItsOwnDomain(t *testing.T) {
	for _, quarantine := range []bool{false, true} {
		sink := smtptest.StartSink(t)
		cfg := testConfig(t)
		cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr), smtptest.Domain("example.net", sink.Addr))
		if quarantine {
			for i := range cfg.Domains {
				cfg.Domains[i].TagAction = ptr(tenant.TagQuarantine)
			}
		}
		deps := configDeps(t, cfg, nil)
		domains, err := cfg.StaticDomains()
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range domains {
			d.ID, d.CustomerID = int64(11+i), 5
		}
		snap, err := tenant.NewSnapshot(1, domains)
		if err != nil {
			t.Fatal(err)
		}
		deps.Directory = tenant.NewDirectory(snap)
		log, outcomes := &trackerLog{}, &outcomeLog{counts: map[int64]int{}}
		deps.Tracker, deps.Outcomes = log, outcomes
		if quarantine {
			deps.Quarantine = refuseHold{} // the recipient is refused before any hold
		}
		n := startWith(t, cfg, deps)

		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		if quarantine {
			if msg := c.cmd(452, "RCPT TO:<carol@example.net>"); !strings.HasPrefix(msg, "4.5.3") {
				t.Errorf("quarantine: second domain's recipient %q, want 4.5.3", msg)
			}
			continue
		}
		c.cmd(250, "RCPT TO:<carol@example.net>")
		c.data(250, testMessage)
		recs := log.take()
		if len(recs) != 2 || recs[0].DomainID != 11 || recs[0].Domain != "example.org" || recs[1].DomainID != 12 || recs[1].Domain != "example.net" {
			t.Errorf("records booked to %+v, want bob to 11 (example.org), carol to 12 (example.net)", recs)
		}
		outcomes.mu.Lock()
		if outcomes.counts[11] != 1 || outcomes.counts[12] != 1 {
			t.Errorf("outcomes counted %v, want one for each domain", outcomes.counts)
		}
		outcomes.mu.Unlock()
	}
}

// holdAll is a quarantine that holds everything, numbering the items.
type holdAll struct{ next int64 }

func (h *holdAll) Hold(_ context.Context, it quarantine.Item, msg io.Reader) ([]int64, error) {
	io.Copy(io.Discard, msg)
	ids := make([]int64, len(it.Recipients))
	for i := range ids {
		h.next++
		ids[i] = h.next
	}
	return ids, nil
}

func (*holdAll) Ready(context.Context) error { return nil }

// failHold is a quarantine whose every hold fails with err.
type failHold struct{ err error }

func (f failHold) Hold(_ context.Context, _ quarantine.Item, msg io.Reader) ([]int64, error) {
	io.Copy(io.Discard, msg)
	return nil, f.err
}

func (failHold) Ready(context.Context) error { return nil }

// TestHoldOfUnknownOutcomeIsDeferred: a hold the store failed is tagged
// and delivered, but one whose commit the store may have made (its reply
// lost, the store silent as it would have said: quarantine.ErrHoldUnknown)
// is answered 451 and nothing is delivered. Delivered tagged, a message
// the quarantine held all the same was in the mailbox and releasable from
// the quarantine a second time.
func TestHoldOfUnknownOutcomeIsDeferred(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		code      int
		delivered int
	}{
		{"failed", fmt.Errorf("store: quarantine a message: %w", errors.New("disk full")), 250, 1},
		{"unknown", fmt.Errorf("%w: store: quarantine a message: commit: %w", quarantine.ErrHoldUnknown, context.DeadlineExceeded), 451, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := smtptest.StartSink(t)
			cfg := testConfig(t)
			d := smtptest.Domain("example.org", sink.Addr, "bob")
			d.TagAction = ptr(tenant.TagQuarantine)
			cfg.Domains = append(cfg.Domains, d)
			deps := configDeps(t, cfg, []scanner.Stage{{Check: scoreCheck{score: 8}}})
			log := &trackerLog{}
			deps.Tracker, deps.Quarantine = log, failHold{err: tc.err}
			n := startWith(t, cfg, deps)
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			reply := c.data(tc.code, testMessage)
			if got := len(sink.Messages()); got != tc.delivered {
				t.Errorf("the customer got %d messages, want %d (reply %q)", got, tc.delivered, reply)
			}
			if recs := log.take(); len(recs) != 1 || recs[0].ReplyCode != tc.code {
				t.Errorf("records %+v, want one with %d", recs, tc.code)
			}
		})
	}
}

// TestQuarantinedRecipientsAreTracked: each recipient of a held message
// is recorded once, quarantined, with the reply the sender heard and the
// reference that reply quotes ("[ref ...]"). The reference was left out,
// so a support desk given it by the sender found nothing by it, and the
// panel did not show it.
func TestQuarantinedRecipientsAreTracked(t *testing.T) {
	sink := smtptest.StartSink(t)
	cfg := testConfig(t)
	d := smtptest.Domain("example.org", sink.Addr, "bob", "carol")
	d.TagAction = ptr(tenant.TagQuarantine)
	cfg.Domains = append(cfg.Domains, d)
	deps := configDeps(t, cfg, []scanner.Stage{{Check: scoreCheck{score: 8}}})
	log := &trackerLog{}
	const heldID = 73411 // the first item's id
	deps.Tracker, deps.Quarantine = log, &holdAll{next: heldID - 1}
	n := startWith(t, cfg, deps)
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.cmd(250, "RCPT TO:<carol@example.org>")
	reply := c.data(250, testMessage)
	recs := log.take()
	if len(recs) != 2 || recs[0].Recipient != "bob@example.org" || recs[1].Recipient != "carol@example.org" {
		t.Fatalf("records %+v", recs)
	}
	// The items' ids count every tenant's held mail: not the sender's
	// to learn.
	if strings.Contains(reply, strconv.Itoa(heldID)) {
		t.Errorf("reply %q names the quarantine item %d", reply, heldID)
	}
	for _, r := range recs {
		if r.Status != tracking.StatusQuarantined || r.ReplyCode != 250 || r.Reference == "" || !strings.Contains(reply, "[ref "+r.Reference+"]") {
			t.Errorf("record %+v (reply %q)", r, reply)
		}
	}
	if len(sink.Messages()) != 0 {
		t.Error("a held message was delivered")
	}
}

// TestIDNSenderFoundInEverySpelling: a sender is tracked as its client
// wrote it, and a search adds its domain's other IDNA spellings (the
// A-label and the lower-case U-label), but the store compares case in
// ASCII only (SQLite's NOCASE; PostgreSQL's lower() under a C locale): a
// sender written INFO@BÜCHER.example was found by none of them, and a
// customer asking after the mail heard there was none. A domain that is
// not ASCII is tracked in its lower-case U-label form, the one every
// search spelling reaches; an ASCII one stays as written.
func TestIDNSenderFoundInEverySpelling(t *testing.T) {
	n, _, log := startTracked(t, nil)
	st, err := store.Open(store.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.MigrateTracking(ctx); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"INFO@BÜCHER.example", "Alice@Sender.TEST"} {
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<%s> SMTPUTF8", from)
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.data(250, "Subject: hello\r\n\r\nplain\r\n")
		c.cmd(221, "QUIT")
		if err := st.InsertTracking(ctx, log.await(t, 1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ search, want string }{
		{"info@bücher.example", "INFO@bücher.example"},
		{"info@xn--bcher-kva.example", "INFO@bücher.example"},
		{"INFO@BÜCHER.example", "INFO@bücher.example"},
		{"alice@sender.test", "Alice@Sender.TEST"},
	} {
		f, errs := tracking.ParseQuery(url.Values{"sender": {tc.search}}, time.Now())
		if errs != nil {
			t.Fatalf("sender=%s: %v", tc.search, errs)
		}
		f.Scope = tracking.Scope{Operator: true}
		recs, _, err := st.SearchTracking(ctx, f)
		if err != nil || len(recs) != 1 || recs[0].Sender != tc.want {
			t.Errorf("sender=%s: %+v, %v; want one record of %s", tc.search, recs, err, tc.want)
		}
	}
}
