package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/mailaddr"
)

// idleRelay parks a transaction after idle and keeps at most two idle
// sessions per route.
func idleRelay(idle time.Duration) *Relay {
	return cachedRelay(func(c *Config) {
		c.ReleaseAfterIdle = idle
		c.Cache.MaxIdlePerRoute = 2
	})
}

func bob() mailaddr.Address { return mailaddr.Address{Local: "bob", Domain: "customer.test"} }

// begunFor opens a transaction whose recipients the downstream accepted.
func begunFor(t *testing.T, r *Relay, route Route, rcpts ...mailaddr.Address) *Transaction {
	t.Helper()
	tx, err := r.Begin(context.Background(), route, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tx.Close)
	for _, to := range rcpts {
		if err := tx.Rcpt(to); err != nil {
			t.Fatal(err)
		}
	}
	return tx
}

// waitFor polls cond for up to 10 s: the idle clock is the mechanism under
// test, so only its outcome is asserted, never how soon it came.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
	}
}

// TestIdleSenderReleasesItsSession: a client that has recipients accepted
// and then idles (50 such sessions are allowed from one address) does not
// hold a connection on the customer's server for each; when it goes on,
// the transaction is sent again and delivered once.
func TestIdleSenderReleasesItsSession(t *testing.T) {
	sink := smtptest.StartSink(t)
	r := idleRelay(20 * time.Millisecond)
	route := Route{Addr: sink.Addr, TLS: TLSNone}
	const senders = 6
	txs := make([]*Transaction, senders)
	for i := range txs {
		txs[i] = begunFor(t, r, route, bob())
	}
	if got := sink.Connections(); got != senders {
		t.Fatalf("%d connections for %d open transactions", got, senders)
	}
	// Two are kept idle by the cache (max_idle_per_route), the rest quit.
	waitFor(t, "the idle senders' sessions to be released", func() bool { return value(t, r.idleReleases) == senders })
	waitFor(t, "the sessions beyond the cache's room to close", func() bool { return sink.Open() == 2 })

	// One sender adds a recipient: MAIL and bob go again first.
	carol := mailaddr.Address{Local: "carol", Domain: "customer.test"}
	if err := txs[0].Rcpt(carol); err != nil {
		t.Fatalf("recipient after the idle release: %v", err)
	}
	for i, tx := range txs {
		if _, err := tx.Data(message(fmt.Sprintf("Subject: m-%d\r\n\r\nbody\r\n", i))); err != nil {
			t.Fatalf("message %d after the idle release: %v", i, err)
		}
		tx.Close()
	}
	msgs := sink.Messages()
	got := subjects(msgs)
	if len(msgs) != senders || len(got) != senders {
		t.Fatalf("delivered %v, want each of %d messages once", got, senders)
	}
	for _, m := range msgs {
		want := []string{"bob@customer.test"}
		if string(m.Data[:len("Subject: m-0")]) == "Subject: m-0" {
			want = append(want, "carol@customer.test")
		}
		if fmt.Sprint(m.Rcpts) != fmt.Sprint(want) || m.From != "a@sender.test" {
			t.Errorf("message %.12q from %s to %v, want to %v", m.Data, m.From, m.Rcpts, want)
		}
	}
}

// A recipient the customer's server refuses when the transaction is sent
// again was accepted before: the sender hears 4xx and tries again (and then
// hears the refusal at RCPT), and nothing is delivered.
func TestIdleSenderRecipientRefusedOnResume(t *testing.T) {
	sink := smtptest.StartSink(t)
	r := idleRelay(20 * time.Millisecond)
	route := Route{Addr: sink.Addr, TLS: TLSNone}
	tx := begunFor(t, r, route, bob())
	waitFor(t, "the idle release", func() bool { return value(t, r.idleReleases) == 1 })
	sink.RejectRcpt("bob@customer.test", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	_, err := tx.Data(message("Subject: refused\r\n\r\nbody\r\n"))
	var e *Error
	if !errors.As(err, &e) || e.Code != 451 || e.Enhanced != [3]int{4, 1, 1} {
		t.Fatalf("Data after the recipient was refused on resume: %v, want 451 4.1.1", err)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("%d messages delivered", n)
	}
	// The transaction stays failed: no later step reopens it.
	var later *Error
	if err := tx.Rcpt(mailaddr.Address{Local: "carol", Domain: "customer.test"}); !errors.As(err, &later) || later.Code != e.Code || !later.BeforeRcpt {
		t.Errorf("Rcpt after the failed resume: %v, want the same failure, marked as not about carol", err)
	}
}

// After a RCPT that left the downstream out of step (a 421), later
// recipients are not sent: their answer says nothing about them
// (BeforeRcpt), so the sender's session is not charged a refused mailbox
// for each.
func TestRecipientsAfterABrokenRcptAreNotAnswered(t *testing.T) {
	sink := smtptest.StartSink(t)
	r := cachedRelay(nil)
	tx := begunFor(t, r, Route{Addr: sink.Addr, TLS: TLSNone}, bob())
	sink.RejectRcpt("carol@customer.test", &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "closing"})
	var first, later *Error
	if err := tx.Rcpt(mailaddr.Address{Local: "carol", Domain: "customer.test"}); !errors.As(err, &first) || first.BeforeRcpt {
		t.Fatalf("the recipient the server answered 421: %v, want its refusal", err)
	}
	if err := tx.Rcpt(mailaddr.Address{Local: "dave", Domain: "customer.test"}); !errors.As(err, &later) || later.Code != first.Code || !later.BeforeRcpt {
		t.Fatalf("a recipient after it: %v, want the same failure marked BeforeRcpt", err)
	}
	if first.BeforeRcpt {
		t.Error("the failure kept for later recipients changed the first one's")
	}
}

// Steps racing the idle clock (1 ms, so parks fall between and around every
// step) deliver the message once to every recipient; run with -race.
func TestIdleReleaseRacesTheSteps(t *testing.T) {
	sink := smtptest.StartSink(t)
	r := idleRelay(time.Millisecond)
	route := Route{Addr: sink.Addr, TLS: TLSNone}
	var rcpts []mailaddr.Address
	for i := range 30 {
		rcpts = append(rcpts, mailaddr.Address{Local: fmt.Sprintf("u%d", i), Domain: "customer.test"})
	}
	for round := range 5 {
		tx := begunFor(t, r, route, rcpts...)
		time.Sleep(2 * time.Millisecond)
		if _, err := tx.Data(message(fmt.Sprintf("Subject: r-%d\r\n\r\nbody\r\n", round))); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		tx.Close()
	}
	msgs := sink.Messages()
	if len(msgs) != 5 {
		t.Fatalf("%d messages, want 5", len(msgs))
	}
	for _, m := range msgs {
		if len(m.Rcpts) != len(rcpts) {
			t.Errorf("message %.10q to %d recipients, want %d", m.Data, len(m.Rcpts), len(rcpts))
		}
	}
	if value(t, r.idleReleases) == 0 {
		t.Error("no session was released: the test raced nothing")
	}
}

// A message the customer's server cannot take (8-bit without 8BITMIME, an
// 8-bit header field sent with SMTPUTF8 without SMTPUTF8) is refused for
// good after an idle release as without one: a slow body and the scan are
// idle time, so a large message was parked before its Data nearly always,
// and heard 451 4.4.2 "connection lost" at every try until its sender gave
// up days later, where a prompt one heard 554 5.6.3 at once.
func TestIdleReleaseKeepsTheEightBitRefusals(t *testing.T) {
	tests := []struct {
		name, ehlo string
		utf8       bool
		code       int
		enhanced   [3]int
	}{
		{"8-bit, no 8BITMIME", "250 customer.test\r\n", false, 554, [3]int{5, 6, 3}},
		{"8-bit header, no SMTPUTF8", "250-customer.test\r\n250 8BITMIME\r\n", true, 550, [3]int{5, 6, 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startHostile(t, tc.ehlo, func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
				if strings.EqualFold(line, "DATA") {
					return h.accept(c, r)
				}
				io.WriteString(c, "250 ok\r\n")
				return true
			})
			r := hostileRelay(func(c *Config) { c.ReleaseAfterIdle = 20 * time.Millisecond })
			tx, err := r.Begin(context.Background(), Route{Addr: h.addr, TLS: TLSNone}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{UTF8: tc.utf8})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			if err := tx.Rcpt(bob()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the idle release", func() bool { return value(t, r.idleReleases) == 1 })
			_, err = tx.Data(message("Subject: caf\u00e9\r\n\r\nbody\r\n"))
			wantReply(t, err, tc.code, tc.enhanced)
			if v := value(t, r.results.WithLabelValues("data", "refused_8bit")); v != 1 {
				t.Errorf("data results refused_8bit = %v, want 1", v)
			}
			if n := h.delivered.Load(); n != 0 {
				t.Errorf("the server took %d messages", n)
			}
		})
	}
}

// A parked session is the cache's freshest, so the transaction's next step
// takes it back, RSET first; a server that refuses RSET fails that MAIL,
// which on a cached session is no answer about this transaction: as at a
// transaction's first MAIL, it goes again on a new connection. It was
// answered 451 at every try of a sender slow enough to be parked.
func TestIdleReleaseResumesPastARefusedRset(t *testing.T) {
	sink := smtptest.StartSink(t)
	sink.RefuseRset("502 5.5.1 RSET not implemented")
	r := idleRelay(20 * time.Millisecond)
	tx := begunFor(t, r, Route{Addr: sink.Addr, TLS: TLSNone}, bob())
	waitFor(t, "the idle release", func() bool { return value(t, r.idleReleases) == 1 })
	if _, err := tx.Data(message("Subject: resumed\r\n\r\nbody\r\n")); err != nil {
		t.Fatalf("Data after the idle release: %v", err)
	}
	if got := subjects(sink.Messages()); got["resumed"] != 1 || len(got) != 1 {
		t.Fatalf("delivered %v, want the message once", got)
	}
	if s := value(t, r.cacheM.stale); s != 1 {
		t.Errorf("stale %v, want 1", s)
	}
}

// A transaction that cannot be sent again fails the sender's next RCPT
// before the customer's server heard of that recipient: the failure is
// marked BeforeRcpt, so smtpd does not take bob's "no such user" for
// carol's (counted against the client as a harvest guess, and logged as
// carol's refusal).
func TestIdleResumeFailureSaysNothingOfTheNewRecipient(t *testing.T) {
	sink := smtptest.StartSink(t)
	r := idleRelay(20 * time.Millisecond)
	tx := begunFor(t, r, Route{Addr: sink.Addr, TLS: TLSNone}, bob())
	waitFor(t, "the idle release", func() bool { return value(t, r.idleReleases) == 1 })
	sink.RejectRcpt("bob@customer.test", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	err := tx.Rcpt(mailaddr.Address{Local: "carol", Domain: "customer.test"})
	var e *Error
	if !errors.As(err, &e) || e.Code != 451 || !e.BeforeRcpt {
		t.Fatalf("Rcpt after a failed resume: %v (BeforeRcpt %v), want 451 before the recipient", err, e != nil && e.BeforeRcpt)
	}
	if n := sink.Commands("RCPT"); n != 2 {
		t.Errorf("%d RCPT commands, want bob's two and not carol's", n)
	}
}
