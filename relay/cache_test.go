package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func cachedRelay(mutate func(*Config)) *Relay {
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	return New(cfg, "mx1.mxgrid.test", smtptest.Guard(), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
}

// deliver relays one message whose body names id, as smtpd drives a
// transaction: Begin, Rcpt, Data, Close.
func deliver(r *Relay, route Route, id string) error {
	tx, err := r.Begin(context.Background(), route, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
	if err != nil {
		return err
	}
	defer tx.Close()
	if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); err != nil {
		return err
	}
	_, err = tx.Data(message("Subject: " + id + "\r\n\r\nbody\r\n"))
	return err
}

// abandon opens a transaction and ends it after its recipient, as smtpd
// does with a message it refuses.
func abandon(t *testing.T, r *Relay, route Route) {
	t.Helper()
	tx, err := r.Begin(context.Background(), route, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); err != nil {
		t.Fatal(err)
	}
	tx.Close()
}

func deliverAll(t *testing.T, r *Relay, route Route, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := deliver(r, route, id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func gauge(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// subjects counts the delivered messages by the id in their Subject.
func subjects(msgs []smtptest.Received) map[string]int {
	n := make(map[string]int)
	for _, m := range msgs {
		s := string(m.Data)
		s = s[len("Subject: "):strings.Index(s, "\r\n")]
		n[s]++
	}
	return n
}

func TestCacheReuse(t *testing.T) {
	tests := []struct {
		name      string
		sinkOpts  []smtptest.Option
		tls       TLSMode
		mutate    func(*Config)
		messages  int
		wantConns int
		wantTLS   bool
	}{
		{"one connection for many transactions", nil, TLSNone, nil, 20, 1, false},
		{"TLS kept across transactions", []smtptest.Option{smtptest.WithTLS()}, TLSRequired, nil, 5, 1, true},
		{"max_reuse closes a session after its quota", nil, TLSNone, func(c *Config) { c.Cache.MaxReuse = 3 }, 7, 3, false},
		{"cache off: one connection each", nil, TLSNone, func(c *Config) { c.Cache.Enabled = false }, 4, 4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := smtptest.StartSink(t, tt.sinkOpts...)
			r := cachedRelay(tt.mutate)
			deliverAll(t, r, Route{Addr: sink.Addr, TLS: tt.tls}, ids("m", tt.messages)...)
			msgs := sink.Messages()
			if len(msgs) != tt.messages || sink.Connections() != tt.wantConns {
				t.Fatalf("%d messages over %d connections, want %d over %d", len(msgs), sink.Connections(), tt.messages, tt.wantConns)
			}
			for _, m := range msgs {
				if m.TLS != tt.wantTLS {
					t.Fatalf("message on connection %d: TLS %v, want %v", m.Conn, m.TLS, tt.wantTLS)
				}
			}
			reused := float64(tt.messages - tt.wantConns)
			if h, m := value(t, r.cacheM.hits), value(t, r.cacheM.misses); h != reused || m != float64(tt.wantConns) {
				t.Errorf("hits %v misses %v, want %v and %d", h, m, reused, tt.wantConns)
			}
			// Message tracking asks the transaction, reused or not.
			tx, err := r.Begin(context.Background(), Route{Addr: sink.Addr, TLS: tt.tls}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			if tx.TLS() != tt.wantTLS {
				t.Errorf("Transaction.TLS() = %v, want %v", tx.TLS(), tt.wantTLS)
			}
		})
	}
}

// A reused session costs only the transaction's own commands: no EHLO
// again, MAIL pipelined with the first RCPT, and RSET, in the same write,
// only when the previous transaction was left open (its recipients given,
// its message never sent). A message the server refused
// at the end of DATA ended its transaction like a delivered one.
func TestCacheRoundTrips(t *testing.T) {
	sink := smtptest.StartSink(t)
	r := cachedRelay(nil)
	route := Route{Addr: sink.Addr, TLS: TLSNone}
	deliverAll(t, r, route, ids("a", 5)...)
	abandon(t, r, route)
	deliverAll(t, r, route, "b")
	abandon(t, r, route)
	abandon(t, r, route)
	sink.RejectData(&smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "no"})
	if err := deliver(r, route, "refused"); err == nil {
		t.Fatal("refused message reported delivered")
	}
	sink.RejectData(nil)
	deliverAll(t, r, route, "c")
	// The connection's one EHLO (the loop check's, which the client goes on from).
	want := map[string]int{"EHLO": 1, "MAIL": 11, "RCPT": 11, "RSET": 3, "DATA": 8}
	for verb, n := range want {
		if got := sink.Commands(verb); got != n {
			t.Errorf("%s sent %d times, want %d", verb, got, n)
		}
	}
	// MAIL and its RCPT share a write (the sink offers PIPELINING), and
	// so does the RSET that ends an abandoned transaction: the EHLO, then
	// two writes a message and one a transaction abandoned.
	if got, want := sink.CommandWrites(), 1+2*8+3; got != want {
		t.Errorf("%d command writes, want %d", got, want)
	}
	if c := sink.Connections(); c != 1 {
		t.Errorf("%d connections, want 1", c)
	}
	if got := subjects(sink.Messages()); len(got) != 7 || got["refused"] != 0 {
		t.Errorf("delivered %v, want a-0..a-4, b and c", got)
	}
}

// Sessions are shared only where interchangeable: a route reached with
// another TLS mode or trust gets its own.
func TestCacheKeyedByRouteTLSAndTrust(t *testing.T) {
	sink := smtptest.StartSink(t, smtptest.WithTLS())
	r := cachedRelay(nil)
	routes := []Route{
		{Addr: sink.Addr, TLS: TLSNone},
		{Addr: sink.Addr, TLS: TLSOpportunistic},
		{Addr: sink.Addr, TLS: TLSOpportunistic, Trusted: true},
	}
	for round := range 3 {
		for i, route := range routes {
			deliverAll(t, r, route, fmt.Sprintf("r%d-%d", round, i))
		}
	}
	if got := sink.Connections(); got != len(routes) {
		t.Fatalf("%d connections, want one per key (%d)", got, len(routes))
	}
	for _, m := range sink.Messages() {
		if wantTLS := m.Conn != 1; m.TLS != wantTLS {
			t.Errorf("connection %d: TLS %v", m.Conn, m.TLS)
		}
	}
}

func TestCacheIdleLimits(t *testing.T) {
	t.Run("max_idle_per_route", func(t *testing.T) {
		sink := smtptest.StartSink(t)
		r := cachedRelay(func(c *Config) { c.Cache.MaxIdlePerRoute = 2 })
		route := Route{Addr: sink.Addr, TLS: TLSNone}
		var txs []*Transaction
		for range 4 {
			tx, err := r.Begin(context.Background(), route, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
			if err != nil {
				t.Fatal(err)
			}
			txs = append(txs, tx)
		}
		for _, tx := range txs {
			tx.Close()
		}
		if got := gauge(t, r.cacheM.idle); got != 2 {
			t.Fatalf("%v idle sessions, want 2", got)
		}
	})
	t.Run("idle_timeout", func(t *testing.T) {
		sink := smtptest.StartSink(t)
		r := cachedRelay(func(c *Config) { c.Cache.IdleTimeout = 50 * time.Millisecond })
		route := Route{Addr: sink.Addr, TLS: TLSNone}
		deliverAll(t, r, route, "before")
		if got := gauge(t, r.cacheM.idle); got != 1 {
			t.Fatalf("%v idle sessions, want 1", got)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()
		deadline := time.Now().Add(5 * time.Second)
		for gauge(t, r.cacheM.idle) != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := gauge(t, r.cacheM.idle); got != 0 {
			t.Fatalf("%v idle sessions after the idle timeout, want 0", got)
		}
		deliverAll(t, r, route, "after")
		if got := sink.Connections(); got != 2 {
			t.Errorf("%d connections, want a new one after the idle timeout", got)
		}
		// Stopping the node closes the cache: no session kept, and one
		// handed back afterwards is closed, not kept.
		cancel()
		<-done
		if got := gauge(t, r.cacheM.idle); got != 0 {
			t.Errorf("%v idle sessions after Run ended", got)
		}
		deliverAll(t, r, route, "late")
		if got := gauge(t, r.cacheM.idle); got != 0 {
			t.Errorf("%v idle sessions after a transaction on a closed cache", got)
		}
	})
}

// TestCacheFailureModes: a downstream that misbehaves between or during
// cached transactions costs at most a reconnection; every message is
// delivered exactly once or refused with a temporary error and not
// delivered.
func TestCacheFailureModes(t *testing.T) {
	tests := []struct {
		name string
		opts []smtptest.Option
		// between runs after the first message, before the second.
		between   func(t *testing.T, s *smtptest.Sink)
		wantConns int
		wantStale float64
	}{
		{"server closes idle connections", []smtptest.Option{smtptest.CloseIdleAfter(100 * time.Millisecond)},
			func(*testing.T, *smtptest.Sink) { time.Sleep(300 * time.Millisecond) }, 2, 1},
		{"server restarts", nil, func(t *testing.T, s *smtptest.Sink) { s.Restart(t) }, 2, 1},
		// RSET follows only a transaction left open, here the first; the
		// refusal fails the pipelined MAIL, so the session counts as stale.
		{"server refuses RSET", nil, nil, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := smtptest.StartSink(t, tt.opts...)
			if tt.between == nil {
				sink.RefuseRset("502 5.5.1 RSET not implemented")
			}
			r := cachedRelay(nil)
			route := Route{Addr: sink.Addr, TLS: TLSNone}
			if tt.between == nil {
				abandon(t, r, route)
			}
			deliverAll(t, r, route, "first")
			if tt.between != nil {
				tt.between(t, sink)
			}
			deliverAll(t, r, route, "second")
			got := subjects(sink.Messages())
			if got["first"] != 1 || got["second"] != 1 || len(got) != 2 {
				t.Fatalf("delivered %v, want each message once", got)
			}
			if c := sink.Connections(); c != tt.wantConns {
				t.Errorf("%d connections, want %d", c, tt.wantConns)
			}
			if s := value(t, r.cacheM.stale); s != tt.wantStale {
				t.Errorf("stale %v, want %v", s, tt.wantStale)
			}
		})
	}
}

// A downstream that stalls after the message: the sender gets a temporary
// error in bounded time, nothing is delivered or retried, and the stalled
// session is not reused.
func TestCacheStalledDownstream(t *testing.T) {
	sink := smtptest.StartSink(t)
	r := cachedRelay(func(c *Config) { c.DataTimeout = 200 * time.Millisecond })
	route := Route{Addr: sink.Addr, TLS: TLSNone}
	deliverAll(t, r, route, "before")
	sink.Stall(5 * time.Second)
	start := time.Now()
	err := deliver(r, route, "stalled")
	var re *Error
	if !errors.As(err, &re) || !re.Temporary() {
		t.Fatalf("stalled: %v, want a temporary error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stalled delivery took %v", d)
	}
	sink.Stall(0)
	deliverAll(t, r, route, "after")
	got := subjects(sink.Messages())
	if got["before"] != 1 || got["after"] != 1 || got["stalled"] != 0 {
		t.Fatalf("delivered %v, want before and after once, stalled never", got)
	}
	if c := sink.Connections(); c != 2 {
		t.Errorf("%d connections, want the stalled one replaced", c)
	}
}

// Concurrent transactions on one route share the cache without a session
// ever carrying two transactions at once (the sink would see a protocol
// error and the message would be refused).
func TestCacheConcurrent(t *testing.T) {
	sink := smtptest.StartSink(t)
	r := cachedRelay(nil)
	route := Route{Addr: sink.Addr, TLS: TLSNone}
	const senders, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for s := range senders {
		wg.Go(func() {
			for _, id := range ids(fmt.Sprint("s", s), each) {
				if err := deliver(r, route, id); err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := subjects(sink.Messages())
	if len(got) != senders*each {
		t.Fatalf("%d distinct messages delivered, want %d", len(got), senders*each)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	// A connection is opened only when every other one is busy.
	if c := sink.Connections(); c > senders {
		t.Errorf("%d connections for %d senders", c, senders)
	}
}

// MAIL refused while pipelined with the first RCPT: the sender hears the
// refusal, marked as saying nothing about the recipient; the session stays
// in step, so the next recipient on the same transaction begins again and
// is delivered.
func TestRefusedMailPipelined(t *testing.T) {
	sink := smtptest.StartSink(t)
	r := cachedRelay(nil)
	route := Route{Addr: sink.Addr, TLS: TLSNone}
	for _, reused := range []bool{false, true} {
		if reused {
			deliverAll(t, r, route, "warm")
		}
		sink.RejectMail(&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "sender blocked"})
		tx, err := r.Begin(context.Background(), route, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bob := mailaddr.Address{Local: "bob", Domain: "customer.test"}
		var re *Error
		if err := tx.Rcpt(bob); !errors.As(err, &re) || re.Code != 550 || !re.BeforeRcpt || re.Message != "sender blocked" {
			t.Fatalf("reused=%v: Rcpt = %v, want the MAIL refusal marked BeforeRcpt", reused, err)
		}
		sink.RejectMail(nil)
		if err := tx.Rcpt(bob); err != nil {
			t.Fatalf("reused=%v: Rcpt after MAIL accepted again: %v", reused, err)
		}
		if _, err := tx.Data(message("Subject: after\r\n\r\nbody\r\n")); err != nil {
			t.Fatalf("reused=%v: %v", reused, err)
		}
		tx.Close()
	}
	if got := subjects(sink.Messages()); got["after"] != 2 || got["warm"] != 1 || len(got) != 2 {
		t.Errorf("delivered %v", got)
	}
}

// TestCacheBoundedAcrossRoutes: idle sessions were bounded per route
// alone, and routes are a tenant's to make (a domain each, a rule each,
// names or ports of its own server: a key each), so a tenant whose
// senders wrote to many of its routes had the node keep max_idle_per_route
// sessions for each, a file descriptor and ~35 KB apiece, for idle_timeout
// (up to 5 minutes). relay.cache.max_idle bounds them together: a session
// that finds the cache full is closed (QUIT), and the next transaction on
// its route connects, as without the cache.
func TestCacheBoundedAcrossRoutes(t *testing.T) {
	r := cachedRelay(func(c *Config) { c.Cache.MaxIdle = 2 })
	var sinks []*smtptest.Sink
	for i := range 4 {
		s := smtptest.StartSink(t)
		sinks = append(sinks, s)
		deliverAll(t, r, Route{Addr: s.Addr, TLS: TLSNone}, fmt.Sprintf("route-%d", i))
	}
	if n := gauge(t, r.cacheM.idle); n != 2 {
		t.Errorf("%v idle sessions over 4 routes, want max_idle's 2", n)
	}
	// The sessions not kept were closed: only the kept ones stay open
	// at the servers.
	deadline := time.Now().Add(5 * time.Second)
	open := func() (n int) {
		for _, s := range sinks {
			n += s.Open()
		}
		return n
	}
	for open() != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := open(); n != 2 {
		t.Errorf("%d connections open at the servers, want the 2 kept", n)
	}
	// A kept session is reused; a route whose session was not kept
	// connects again, and its message goes.
	for i, s := range sinks {
		deliverAll(t, r, Route{Addr: s.Addr, TLS: TLSNone}, fmt.Sprintf("again-%d", i))
	}
	conns := 0
	for _, s := range sinks {
		conns += s.Connections()
	}
	if conns != 6 {
		t.Errorf("%d connections for 8 messages over 4 routes with 2 sessions kept, want 6", conns)
	}
}
