package dnsresolver

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
	"github.com/prometheus/client_golang/prometheus"
)

// TestUnansweredServerFailsFast: a server that stops answering costs the
// node three lookup timeouts, not one per message; the failures are
// temporary (temperror, not "no record"); the server is probed after the
// backoff and used again once it answers.
func TestUnansweredServerFailsFast(t *testing.T) {
	srv := dnstest.Start(t)
	srv.AddTXT("ok.test", "v=spf1 -all")
	const timeout = 100 * time.Millisecond
	c := newTest(t, srv, func(c *Config) { c.Timeout = timeout; c.CacheSize = 0 })
	now := time.Now()
	var mu sync.Mutex
	c.reach.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var changes []bool
	c.OnReachabilityChange(func(up bool) { changes = append(changes, up) })
	ctx := context.Background()

	srv.Silent(".") // the breaker's root probe
	for _, name := range []string{"a.test", "b.test", "c.test"} {
		srv.Silent(name)
		if _, err := c.LookupTXT(ctx, name); !dnsErr(t, err).IsTimeout {
			t.Fatalf("%s: %v, want a timeout", name, err)
		}
	}
	if c.reach.up() || len(changes) != 1 || changes[0] {
		t.Fatalf("after 3 timeouts: up=%v changes=%v, want down", c.reach.up(), changes)
	}
	start := time.Now()
	_, err := c.LookupTXT(ctx, "ok.test")
	// One that waited would take the whole timeout; the bound leaves a
	// loaded machine all the rest.
	if took := time.Since(start); took >= timeout {
		t.Errorf("lookup while down took %v, want immediate", took)
	}
	if derr := dnsErr(t, err); !derr.IsTemporary || derr.IsNotFound {
		t.Errorf("lookup while down: %+v, want a temporary error", derr)
	}
	if n := srv.Queries("ok.test"); n != 0 {
		t.Errorf("%d queries reached the server while it was known down", n)
	}

	mu.Lock()
	now = now.Add(minBackoff)
	mu.Unlock()
	if got, err := c.LookupTXT(ctx, "ok.test"); err != nil || len(got) != 1 {
		t.Fatalf("probe after the backoff: %v %v", got, err)
	}
	if !c.reach.up() || len(changes) != 2 || !changes[1] {
		t.Errorf("after a good probe: up=%v changes=%v, want up again", c.reach.up(), changes)
	}
}

// TestSilentNamesDoNotTripWhileRootAnswers: names whose authoritative
// servers never answer (an attacker's) time out, but the server still
// answers the root probe, so other senders' lookups go on.
func TestSilentNamesDoNotTripWhileRootAnswers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rootSilent bool
		wantUp     bool
	}{
		{"root answers", false, true},
		{"nothing answers", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := dnstest.Start(t)
			srv.AddTXT("ok.test", "v=spf1 -all")
			if tc.rootSilent {
				srv.Silent(".")
			}
			// The timeout also bounds the root probe's answer: 100 ms was
			// missed on a machine busy with the whole suite, and the
			// breaker tripped with the root answering.
			c := newTest(t, srv, func(c *Config) { c.Timeout = time.Second; c.CacheSize = 0 })
			var wg sync.WaitGroup
			for _, name := range []string{"spf.evil.test", "helo.evil.test", "key._domainkey.evil.test", "_dmarc.evil.test", "more.evil.test"} {
				srv.Silent(name)
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.LookupTXT(context.Background(), name)
				}()
			}
			wg.Wait()
			if c.reach.up() != tc.wantUp {
				t.Fatalf("up=%v, want %v", c.reach.up(), tc.wantUp)
			}
			_, err := c.LookupTXT(context.Background(), "ok.test")
			if (err == nil) != tc.wantUp {
				t.Errorf("lookup of an answered name: %v", err)
			}
		})
	}
}

// TestNotFoundAndServfailAreAnswers: the server answering "no record" or
// SERVFAIL works; only silence trips the breaker.
func TestNotFoundAndServfailAreAnswers(t *testing.T) {
	srv := dnstest.Start(t)
	srv.ServFail("sf.test")
	c := newTest(t, srv, func(c *Config) { c.CacheSize = 0 })
	for range 5 {
		c.LookupTXT(context.Background(), "missing.test")
		c.LookupTXT(context.Background(), "sf.test")
	}
	if !c.reach.up() {
		t.Fatal("NXDOMAIN and SERVFAIL answers marked the server unreachable")
	}
}

// TestRefusingServerFailsFast: a port nobody listens on (ICMP refused).
func TestRefusingServerFailsFast(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	cfg := DefaultConfig()
	cfg.Server = addr
	c := New(cfg, prometheus.NewRegistry())
	for range failuresToTrip {
		c.LookupTXT(context.Background(), "x.test")
	}
	if c.reach.up() {
		t.Fatal("a refusing server is still considered reachable")
	}
}

// TestRefusingResolverIsDown: a resolver that answers REFUSED does not
// serve us (its access control leaves the node out, as unbound's default
// does for any other host): after three refusals and a refused root
// probe, the server is down for /readyz and lookups fail fast. Refusals
// of a few names while the root is answered are not enough.
func TestRefusingResolverIsDown(t *testing.T) {
	for _, tc := range []struct {
		name        string
		rootRefused bool
		wantUp      bool
	}{
		{"root answered", false, true},
		{"everything refused", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := dnstest.Start(t)
			if tc.rootRefused {
				srv.Refuse(".")
			}
			c := newTest(t, srv, func(c *Config) { c.CacheSize = 0 })
			var changes []bool
			c.OnReachabilityChange(func(up bool) { changes = append(changes, up) })
			for _, name := range []string{"a.test", "b.test", "c.test", "d.test"} {
				srv.Refuse(name)
				if _, err := c.LookupTXT(context.Background(), name); !dnsErr(t, err).Temporary() {
					t.Fatalf("%s: %v, want a temporary error", name, err)
				}
			}
			if c.reach.up() != tc.wantUp || len(changes) != map[bool]int{true: 0, false: 1}[tc.wantUp] {
				t.Errorf("up=%v changes=%v, want up=%v", c.reach.up(), changes, tc.wantUp)
			}
		})
	}
}

// TestReachabilityReportedAsItIs: two changes close together (the breaker
// trips, and a lookup sent before it answers at once) are reported in
// their order, so readiness ends up saying what the breaker does. Each
// was reported after the lock was let go, so the trip's report, arriving
// last, left /readyz saying "dns degraded" of a server that answers (or
// the reverse) until the next change, which might not come for hours.
func TestReachabilityReportedAsItIs(t *testing.T) {
	r := &reach{now: time.Now, serverAnswers: func() bool { return false }}
	var mu sync.Mutex
	var reports []bool
	slow := make(chan struct{}) // holds up the first report
	r.onChange = func(up bool) {
		mu.Lock()
		first := len(reports) == 0 && !up
		mu.Unlock()
		if first {
			<-slow
		}
		mu.Lock()
		reports = append(reports, up)
		mu.Unlock()
	}
	timeout := &net.DNSError{Err: "i/o timeout", IsTimeout: true}
	for range failuresToTrip - 1 {
		r.done(timeout)
	}
	tripped := make(chan struct{})
	go func() { defer close(tripped); r.done(timeout) }()
	for r.up() {
		time.Sleep(time.Millisecond)
	}
	answered := make(chan struct{})
	go func() { defer close(answered); r.done(nil) }()
	select {
	case <-answered:
	case <-time.After(100 * time.Millisecond):
	}
	close(slow)
	<-tripped
	<-answered
	mu.Lock()
	defer mu.Unlock()
	if !r.up() || len(reports) == 0 || !reports[len(reports)-1] {
		t.Errorf("breaker up=%v, reported %v: the last report must say what the breaker does", r.up(), reports)
	}
}

// TestDownServerIsProbedWithoutMail: only lookups probed a server known
// down, so a node no mail reached (a backup MX, a quiet night) said DNS
// was down in /readyz for as long as it stayed idle after the server was
// back (80 s and counting on a node, until a message came). Run probes it
// by itself.
func TestDownServerIsProbedWithoutMail(t *testing.T) {
	srv := dnstest.Start(t)
	c := newTest(t, srv, func(c *Config) { c.Timeout = 100 * time.Millisecond; c.CacheSize = 0 })
	up := make(chan bool, 4)
	c.OnReachabilityChange(func(u bool) { up <- u })
	ctx := context.Background()
	srv.Silent(".")
	for _, name := range []string{"a.test", "b.test", "c.test"} {
		srv.Silent(name)
		c.LookupTXT(ctx, name)
	}
	if c.reach.up() || <-up {
		t.Fatal("the breaker did not trip")
	}

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- c.Run(rctx) }()
	defer func() { cancel(); <-done }()
	srv.Answer(".")
	select {
	case u := <-up:
		if !u {
			t.Errorf("reported down again, want up")
		}
	case <-time.After(10 * minBackoff):
		t.Fatalf("the server answers again, and without lookups it is still down after %v", 10*minBackoff)
	}
}
