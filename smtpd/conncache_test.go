package smtpd_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/internal/smtptest"
)

// TestConnectionCacheUnderDownstreamFailures sends from concurrent senders,
// each one inbound session after another's transactions, through the relay's
// connection cache to a customer server that misbehaves mid-stream. What
// the cache hides (idle connections closed by the server, RSET refused)
// must not reach a sender: every message gets 250. What it cannot hide (a
// stall, a restart) reaches a sender as 4xx. Either way no message is lost
// (250 and not delivered) or delivered twice.
func TestConnectionCacheUnderDownstreamFailures(t *testing.T) {
	const senders, each = 8, 15
	tests := []struct {
		name string
		opts []smtptest.Option
		// disturb runs once a third of the messages arrived.
		disturb func(t *testing.T, s *smtptest.Sink)
		// allOK: no sender may see anything but 250.
		allOK bool
		// pause between a sender's messages.
		pause time.Duration
	}{
		// The sink's timeout strikes mid-transaction too, which no cache
		// can hide: it is long enough that only a pause between messages
		// reaches it, even on a loaded machine (at 20 ms, a full-suite
		// run once saw it strike between RCPT and DATA).
		{"closes idle connections", []smtptest.Option{smtptest.CloseIdleAfter(150 * time.Millisecond)},
			func(*testing.T, *smtptest.Sink) {}, true, 300 * time.Millisecond},
		{"refuses RSET", nil,
			func(_ *testing.T, s *smtptest.Sink) { s.RefuseRset("500 5.5.1 what is RSET") }, true, 0},
		{"stalls", nil, func(_ *testing.T, s *smtptest.Sink) {
			s.Stall(2 * time.Second)
			time.Sleep(400 * time.Millisecond)
			s.Stall(0)
		}, false, 0},
		{"restarts mid-stream", nil, func(t *testing.T, s *smtptest.Sink) {
			s.Restart(t)
			time.Sleep(50 * time.Millisecond)
			s.Restart(t)
		}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := smtptest.StartSink(t, tt.opts...)
			cfg := testConfig(t)
			cfg.Relay.DataTimeout = 300 * time.Millisecond
			cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
			n := startConfigured(t, cfg, nil)

			disturbed := make(chan struct{})
			go func() {
				defer close(disturbed)
				deadline := time.Now().Add(10 * time.Second)
				for len(sink.Messages()) < senders*each/3 && time.Now().Before(deadline) {
					time.Sleep(2 * time.Millisecond)
				}
				tt.disturb(t, sink)
			}()
			replies := sendAll(t, n.SMTPAddr(), senders, each, tt.pause)
			<-disturbed

			delivered := make(map[string]int)
			for _, m := range sink.Messages() {
				delivered[messageID(m.Data)]++
			}
			var temp int
			for id, code := range replies {
				switch {
				case code == 250 && delivered[id] != 1:
					t.Errorf("%s: 250 but delivered %d times", id, delivered[id])
				case code == 250:
				case tt.allOK:
					t.Errorf("%s: %d, want 250: the cache should hide this failure", id, code)
				case code < 400 || code >= 500:
					t.Errorf("%s: %d, want 250 or a temporary error", id, code)
				case delivered[id] > 1:
					t.Errorf("%s: %d and delivered %d times", id, code, delivered[id])
				default:
					temp++
				}
			}
			for id, k := range delivered {
				if _, sent := replies[id]; !sent || k > 1 {
					t.Errorf("%s delivered %d times, sent: %v", id, k, sent)
				}
			}
			t.Logf("%d messages, %d temporary failures, %d connections", len(replies), temp, sink.Connections())
		})
	}
}

// sendAll runs senders concurrent sessions of each messages and returns
// each message's final reply code (RCPT's when it was refused, else DATA's).
func sendAll(t *testing.T, addr string, senders, each int, pause time.Duration) map[string]int {
	t.Helper()
	var mu sync.Mutex
	replies := make(map[string]int)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			c, err := smtp.Dial(addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if err := c.Hello("client.sender.test"); err != nil {
				t.Error(err)
				return
			}
			for i := range each {
				id := fmt.Sprintf("s%d-%d", s, i)
				code, err := sendOne(c, id)
				if err != nil {
					t.Errorf("%s: %v", id, err)
					return
				}
				mu.Lock()
				replies[id] = code
				mu.Unlock()
				time.Sleep(pause)
			}
		})
	}
	wg.Wait()
	return replies
}

// sendOne sends one message in the session and returns its reply code; an
// error is a broken inbound session, which no downstream failure may cause.
func sendOne(c *smtp.Client, id string) (int, error) {
	code := func(err error) (int, error) {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			return 0, err
		}
		return se.Code, c.Reset()
	}
	if err := c.Mail("alice@sender.test", nil); err != nil {
		return code(err)
	}
	if err := c.Rcpt("bob@example.org", nil); err != nil {
		return code(err)
	}
	w, err := c.Data()
	if err != nil {
		return code(err)
	}
	msg := strings.Replace(testMessage, "<1@sender.test>", "<"+id+"@sender.test>", 1)
	if _, err := w.Write([]byte(msg)); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return code(err)
	}
	return 250, nil
}

// messageID is the id sendOne put in a delivered message's Message-ID.
func messageID(data []byte) string {
	s := string(data)
	i := strings.Index(s, "Message-ID: <")
	if i < 0 {
		return ""
	}
	s = s[i+len("Message-ID: <"):]
	return s[:strings.Index(s, "@")]
}

// TestIdleSendersHoldNoDownstreamSessions: clients that have their
// recipients accepted and then idle (one address may open 50 sessions) do
// not each hold a connection on the customer's server, which may limit
// connections per client and refuse everyone else's mail meanwhile. When
// they go on, every message is delivered once.
func TestIdleSendersHoldNoDownstreamSessions(t *testing.T) {
	const senders = 8
	sink := smtptest.StartSink(t)
	cfg := testConfig(t)
	cfg.Relay.ReleaseAfterIdle = 50 * time.Millisecond
	cfg.Relay.Cache.MaxIdlePerRoute = 2
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
	n := startConfigured(t, cfg, nil)

	clients := make([]*smtp.Client, senders)
	for i := range clients {
		c, err := smtp.Dial(n.SMTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("client.sender.test"); err != nil {
			t.Fatal(err)
		}
		if err := c.Mail("alice@sender.test", nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("bob@example.org", nil); err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	deadline := time.Now().Add(10 * time.Second)
	for sink.Open() > cfg.Relay.Cache.MaxIdlePerRoute && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if open := sink.Open(); open > cfg.Relay.Cache.MaxIdlePerRoute {
		t.Fatalf("%d idle senders hold %d downstream connections, want at most the cache's %d", senders, open, cfg.Relay.Cache.MaxIdlePerRoute)
	}
	for i, c := range clients {
		w, err := c.Data()
		if err != nil {
			t.Fatalf("sender %d: DATA: %v", i, err)
		}
		msg := strings.Replace(testMessage, "<1@sender.test>", fmt.Sprintf("<idle%d@sender.test>", i), 1)
		if _, err := w.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("sender %d: end of data: %v", i, err)
		}
	}
	delivered := make(map[string]int)
	for _, m := range sink.Messages() {
		delivered[messageID(m.Data)]++
	}
	for i := range senders {
		if id := fmt.Sprintf("idle%d", i); delivered[id] != 1 {
			t.Errorf("%s delivered %d times, want once", id, delivered[id])
		}
	}
}
