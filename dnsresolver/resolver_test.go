package dnsresolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/dns/dnsmessage"
)

func newTest(t *testing.T, srv *dnstest.Server, mod func(*Config)) *Cached {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Server = srv.Addr
	cfg.Timeout = 500 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return New(cfg, prometheus.NewRegistry())
}

func dnsErr(t *testing.T, err error) *net.DNSError {
	t.Helper()
	derr, ok := err.(*net.DNSError)
	if !ok {
		t.Fatalf("error %v (%T) is not an unwrapped *net.DNSError", err, err)
	}
	return derr
}

func TestLookups(t *testing.T) {
	srv := dnstest.Start(t)
	longKey := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 700)
	srv.AddTXT("example.org", "v=spf1 -all")
	srv.AddTXT("long.example.org", longKey)
	srv.AddA("example.org", "192.0.2.1")
	srv.AddA("example.org", "2001:db8::1")
	srv.Add(t, "example.org. 300 IN MX 10 mx.example.org.")
	srv.Add(t, "1.2.0.192.in-addr.arpa. 300 IN PTR mail.example.org.")
	r := newTest(t, srv, nil)
	ctx := context.Background()

	txt, err := r.LookupTXT(ctx, "example.org")
	if err != nil || len(txt) != 1 || txt[0] != "v=spf1 -all" {
		t.Errorf("LookupTXT = %q, %v", txt, err)
	}
	// Longer than a UDP answer: needs the TCP retry and the string joining.
	txt, err = r.LookupTXT(ctx, "long.example.org")
	if err != nil || len(txt) != 1 || txt[0] != longKey {
		t.Errorf("LookupTXT(long) = %d records, %v", len(txt), err)
	}
	mx, err := r.LookupMX(ctx, "example.org")
	if err != nil || len(mx) != 1 || mx[0].Host != "mx.example.org." {
		t.Errorf("LookupMX = %v, %v", mx, err)
	}
	ips, err := r.LookupIPAddr(ctx, "example.org")
	if err != nil || len(ips) != 2 {
		t.Errorf("LookupIPAddr = %v, %v", ips, err)
	}
	v4, err := r.LookupNetIP(ctx, "ip4", "example.org")
	if err != nil || len(v4) != 1 || v4[0].String() != "192.0.2.1" {
		t.Errorf("LookupNetIP(ip4) = %v, %v", v4, err)
	}
	names, err := r.LookupAddr(ctx, "192.0.2.1")
	if err != nil || len(names) != 1 || names[0] != "mail.example.org." {
		t.Errorf("LookupAddr = %v, %v", names, err)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	srv := dnstest.Start(t)
	srv.AddA("nodata.example.org", "192.0.2.1")
	srv.ServFail("broken.example.org")
	srv.Silent("slow.example.org")
	srv.Refuse("refused.example.org")
	r := newTest(t, srv, func(c *Config) { c.Timeout = 200 * time.Millisecond })
	ctx := context.Background()

	tests := []struct {
		name                    string
		notFound, temp, timeout bool
	}{
		{"missing.example.org", true, false, false},
		{"nodata.example.org", true, false, false},
		{"broken.example.org", false, true, false},
		// No answer either (RFC 7208 4.4 and RFC 7489 6.6.3 say
		// temperror): the Go resolver calls it permanent, and SPF, DKIM
		// and DMARC read permerror, which DMARC does not excuse.
		{"refused.example.org", false, true, false},
		{"slow.example.org", false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.LookupTXT(ctx, tt.name)
			derr := dnsErr(t, err)
			if derr.IsNotFound != tt.notFound || derr.Temporary() != tt.temp || derr.IsTimeout != tt.timeout {
				t.Errorf("err = %+v, want notFound=%v temporary=%v timeout=%v", derr, tt.notFound, tt.temp, tt.timeout)
			}
		})
	}
}

func TestCallerDeadlineWins(t *testing.T) {
	srv := dnstest.Start(t)
	srv.Silent("slow.example.org")
	// The resolver would wait 10 s; the caller's deadline must end the wait.
	r := newTest(t, srv, func(c *Config) { c.Timeout = 10 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := r.LookupTXT(ctx, "slow.example.org")
	derr := dnsErr(t, err)
	if !derr.IsTimeout || !derr.Temporary() {
		t.Errorf("err = %+v, want a temporary timeout", derr)
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("lookup returned before the caller's deadline: %v", err)
	}
}

func TestCache(t *testing.T) {
	srv := dnstest.Start(t)
	for _, n := range []string{"a.example.org", "b.example.org", "c.example.org"} {
		srv.AddTXT(n, "x")
	}
	srv.ServFail("broken.example.org")
	now := time.Unix(1_000_000, 0)
	r := newTest(t, srv, func(c *Config) {
		c.CacheSize = 2
		c.CacheTTL = time.Minute
		c.NegativeTTL = 10 * time.Second
	})
	r.now = func() time.Time { return now }
	ctx := context.Background()
	look := func(name string) {
		t.Helper()
		_, _ = r.LookupTXT(ctx, name)
	}

	look("a.example.org")
	look("a.example.org")
	if n := srv.Queries("a.example.org"); n != 1 {
		t.Errorf("second lookup of a cached answer sent %d queries, want 1", n)
	}
	look("missing.example.org")
	look("missing.example.org")
	if n := srv.Queries("missing.example.org"); n != 1 {
		t.Errorf("negative answer not cached: %d queries", n)
	}
	look("broken.example.org")
	look("broken.example.org")
	if n := srv.Queries("broken.example.org"); n < 2 {
		t.Errorf("SERVFAIL was cached: %d queries", n)
	}

	// Capacity 2: a and missing are cached; b and c push both out.
	look("b.example.org")
	look("c.example.org")
	look("a.example.org")
	if n := srv.Queries("a.example.org"); n != 2 {
		t.Errorf("least recently used answer not evicted: %d queries", n)
	}

	// Expiry: the negative TTL is shorter than the positive one.
	look("missing.example.org") // refill after eviction
	q := srv.Queries("missing.example.org")
	now = now.Add(11 * time.Second)
	look("missing.example.org")
	look("a.example.org")
	if got := srv.Queries("missing.example.org"); got != q+1 {
		t.Errorf("negative answer outlived negative_ttl: %d queries, want %d", got, q+1)
	}
	if n := srv.Queries("a.example.org"); n != 2 {
		t.Errorf("positive answer expired before cache_ttl: %d queries", n)
	}
}

// TestExpiredAnswerServedWhenServerGivesNone: an answer past cache_ttl
// is served again while the server fails (SERVFAIL, silence, or known
// down so that lookups fail at once), up to maxStale past its expiry (RFC
// 8767). Without it, every message to a customer whose route is a name
// got 451 cache_ttl after DNS stopped.
func TestExpiredAnswerServedWhenServerGivesNone(t *testing.T) {
	tests := []struct {
		name      string
		fail      func(*dnstest.Server, string)
		down      bool          // the breaker has tripped
		age       time.Duration // past the answer's expiry
		wantStale bool
	}{
		{"SERVFAIL", (*dnstest.Server).ServFail, false, time.Minute, true},
		{"no answer", (*dnstest.Server).Silent, false, time.Minute, true},
		{"server known down", (*dnstest.Server).Silent, true, time.Minute, true},
		{"SERVFAIL, too old", (*dnstest.Server).ServFail, false, maxStale + time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := dnstest.Start(t)
			srv.AddA("mail.customer.example", "192.0.2.25")
			srv.AddTXT("customer.example", "v=spf1 -all")
			now := time.Unix(1_000_000, 0)
			r := newTest(t, srv, func(c *Config) { c.Timeout = 200 * time.Millisecond })
			r.now = func() time.Time { return now }
			ctx := context.Background()
			if _, err := r.LookupNetIP(ctx, "ip", "mail.customer.example"); err != nil {
				t.Fatal(err)
			}
			if _, err := r.LookupTXT(ctx, "customer.example"); err != nil {
				t.Fatal(err)
			}
			tt.fail(srv, "mail.customer.example.")
			tt.fail(srv, "customer.example.")
			if tt.down {
				srv.Silent(".") // the breaker's root probe
				for _, n := range []string{"t1.example", "t2.example", "t3.example"} {
					srv.Silent(n)
					_, _ = r.LookupTXT(ctx, n)
				}
				if r.reach.up() {
					t.Fatal("the breaker did not trip")
				}
			}
			now = now.Add(r.ttl + tt.age)

			ips, err := r.LookupNetIP(ctx, "ip", "mail.customer.example")
			if got := fmt.Sprint(ips); tt.wantStale && (err != nil || got != "[192.0.2.25]") {
				t.Errorf("LookupNetIP = %s, %v; want the expired answer", got, err)
			} else if !tt.wantStale && err == nil {
				t.Errorf("LookupNetIP = %s, want an error", got)
			}
			txts, err := r.LookupTXT(ctx, "customer.example")
			if got := fmt.Sprint(txts); tt.wantStale && (err != nil || got != "[v=spf1 -all]") {
				t.Errorf("LookupTXT = %s, %v; want the expired answer", got, err)
			} else if !tt.wantStale && err == nil {
				t.Errorf("LookupTXT = %s, want an error", got)
			}
		})
	}
}

func TestCachedAnswersAreCopies(t *testing.T) {
	srv := dnstest.Start(t)
	srv.AddTXT("example.org", "v=spf1 -all")
	r := newTest(t, srv, nil)
	txt, _ := r.LookupTXT(context.Background(), "example.org")
	txt[0] = "mutated"
	again, _ := r.LookupTXT(context.Background(), "example.org")
	if again[0] != "v=spf1 -all" {
		t.Errorf("a caller's change leaked into the cache: %q", again)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"server", func(c *Config) { c.Server = "127.0.0.1:53" }, ""},
		{"server ipv6", func(c *Config) { c.Server = "[::1]:53" }, ""},
		{"server without port", func(c *Config) { c.Server = "127.0.0.1" }, `server: "127.0.0.1" is not host:port`},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout: must be positive"},
		{"negative cache", func(c *Config) { c.CacheSize = -1 }, "cache_size: must not be negative"},
		{"cache without ttl", func(c *Config) { c.CacheTTL = 0 }, "cache_ttl: must be positive"},
		{"no cache, no ttl", func(c *Config) { c.CacheSize, c.CacheTTL = 0, 0 }, ""},
		{"negative negative ttl", func(c *Config) { c.NegativeTTL = -time.Second }, "negative_ttl: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// LookupIPAddr and LookupNetIP("ip") ask the same question but return
// different types: their cache entries must not be shared.
func TestCacheKeysByResultType(t *testing.T) {
	srv := dnstest.Start(t)
	srv.AddA("example.org", "192.0.2.1")
	r := newTest(t, srv, nil)
	ctx := context.Background()
	if _, err := r.LookupIPAddr(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	addrs, err := r.LookupNetIP(ctx, "ip", "example.org")
	if err != nil || len(addrs) != 1 || addrs[0].String() != "192.0.2.1" {
		t.Errorf("LookupNetIP after LookupIPAddr = %v, %v", addrs, err)
	}
}

// TestLargeAnswersAreNotCached: cache_size counts answers, so an attacker's
// wildcard with hundreds of records must not be kept, or random names under
// it fill memory; ordinary answers still are.
func TestLargeAnswersAreNotCached(t *testing.T) {
	for _, tc := range []struct {
		name       string
		records    int
		wantCached bool
	}{
		{"one record", 1, true},
		{"over 4 KiB", maxCachedAnswer/64 + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := dnstest.Start(t)
			for i := range tc.records {
				srv.AddTXT("*.evil.test", fmt.Sprintf("%064d", i))
			}
			c := newTest(t, srv, nil)
			var queries []int
			for range 2 {
				got, err := c.LookupTXT(context.Background(), "x.evil.test")
				if err != nil || len(got) != tc.records {
					t.Fatalf("got %d strings, %v; want %d", len(got), err, tc.records)
				}
				// Counted per lookup: a big answer takes UDP and then TCP.
				queries = append(queries, srv.Queries("x.evil.test"))
			}
			if cached := queries[1] == queries[0]; cached != tc.wantCached {
				t.Errorf("queries after each lookup %v: cached=%v, want %v", queries, cached, tc.wantCached)
			}
		})
	}
}

// TestManyAddressesAreCut: the Go resolver opens a UDP socket for each
// address of an answer to sort them (RFC 6724), so a name of the sender's
// with thousands of A records (SPF's a and mx terms look up ten or a
// hundred such names) cost thousands of sockets a lookup. Its first
// maxAddressRecords addresses of each type are kept, after a CNAME too.
func TestManyAddressesAreCut(t *testing.T) {
	srv := dnstest.Start(t)
	for i := range 2000 {
		srv.AddA("*.evil.test", fmt.Sprintf("10.%d.%d.1", i/250, i%250))
	}
	for i := range 40 {
		srv.AddA("*.evil.test", fmt.Sprintf("2001:db8::%x", i+1))
	}
	for i := range 40 {
		srv.AddA("udp.test", fmt.Sprintf("192.0.2.%d", i+1))
	}
	srv.AddA("few.test", "192.0.2.1")
	srv.AddA("few.test", "192.0.2.2")
	c := newTest(t, srv, nil)
	for _, tc := range []struct {
		name, host, network string
		want4, want6        int
	}{
		{"A and AAAA", "x.evil.test", "ip", maxAddressRecords, maxAddressRecords},
		{"A only", "y.evil.test", "ip4", maxAddressRecords, 0},
		{"an answer that fits UDP", "udp.test", "ip4", maxAddressRecords, 0},
		{"a few addresses", "few.test", "ip", 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.LookupNetIP(context.Background(), tc.network, tc.host)
			if err != nil {
				t.Fatal(err)
			}
			var v4, v6 int
			for _, a := range got {
				if a.Is4() {
					v4++
				} else {
					v6++
				}
			}
			if v4 != tc.want4 || v6 != tc.want6 {
				t.Errorf("%d IPv4 and %d IPv6 addresses, want %d and %d", v4, v6, tc.want4, tc.want6)
			}
		})
	}
	ips, err := c.LookupIPAddr(context.Background(), "z.evil.test")
	if err != nil || len(ips) != 2*maxAddressRecords {
		t.Errorf("LookupIPAddr: %d addresses, %v; want %d", len(ips), err, 2*maxAddressRecords)
	}

	// The CNAME chain before the addresses is kept.
	alias, target := dnsmessage.MustNewName("alias.test."), dnsmessage.MustNewName("x.evil.test.")
	msg := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 7, Response: true},
		Questions: []dnsmessage.Question{{Name: alias, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
		Answers: []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: alias, Type: dnsmessage.TypeCNAME, Class: dnsmessage.ClassINET, TTL: 60},
			Body:   &dnsmessage.CNAMEResource{CNAME: target},
		}},
	}
	for i := range 100 {
		msg.Answers = append(msg.Answers, dnsmessage.Resource{
			Header: dnsmessage.ResourceHeader{Name: target, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
			Body:   &dnsmessage.AResource{A: [4]byte{10, 0, 0, byte(i)}},
		})
	}
	packed, err := msg.Pack()
	if err != nil {
		t.Fatal(err)
	}
	out, err := capAnswer(packed)
	if err != nil {
		t.Fatal(err)
	}
	var cut dnsmessage.Message
	if err := cut.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if len(cut.Answers) != 1+maxAddressRecords || cut.Answers[0].Header.Type != dnsmessage.TypeCNAME || cut.ID != 7 {
		t.Errorf("cut answer: %d records, the first %v, ID %d; want the CNAME and %d addresses, ID 7",
			len(cut.Answers), cut.Answers[0].Header.Type, cut.ID, maxAddressRecords)
	}
}

// rooted ends names with a dot and leaves IP literals alone; names never
// go through ParseAddr, whose error for them was an allocation a lookup.
func TestRooted(t *testing.T) {
	// in, as an address lookup asks it (rooted), as a TXT or MX lookup
	// does (absolute): a name shaped like an address is a name there.
	for _, tt := range []struct{ in, host, name string }{
		{"example.org", "example.org.", "example.org."},
		{"example.org.", "example.org.", "example.org."},
		{"_dmarc.example.org", "_dmarc.example.org.", "_dmarc.example.org."},
		{"4.3.2.1.bl.test", "4.3.2.1.bl.test.", "4.3.2.1.bl.test."},
		{"192.0.2.1", "192.0.2.1", "192.0.2.1."},
		{"2001:db8::1", "2001:db8::1", "2001:db8::1."},
		{"fe80::1%eth0", "fe80::1%eth0", "fe80::1%eth0."},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.1", "::ffff:192.0.2.1."},
		{"1.2.3", "1.2.3.", "1.2.3."},
		{"123", "123.", "123."},
		{"a:b", "a:b.", "a:b."},
		{"", "", ""},
	} {
		if got := rooted(tt.in); got != tt.host {
			t.Errorf("rooted(%q) = %q, want %q", tt.in, got, tt.host)
		}
		if got := absolute(tt.in); got != tt.name {
			t.Errorf("absolute(%q) = %q, want %q", tt.in, got, tt.name)
		}
		for kind, want := range map[string]string{"ip": "ip\x00\x00" + tt.host, "txt": "txt\x00" + tt.name, "mx": "mx\x00" + tt.name} {
			if got := string(new(Cached).appendKey(nil, query{kind: kind, name: tt.in, root: true})); got != want {
				t.Errorf("the %s key of %q = %q, want %q", kind, tt.in, got, want)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = rooted("example.org.") }); n != 0 {
		t.Errorf("rooted of a rooted name allocated %.0f times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = rooted("example.org") }); n > 1 {
		t.Errorf("rooted of a name allocated %.0f times, want only its result", n)
	}
}

// TestCacheOnlyAsksNoServer: under CacheOnly a lookup is answered from the
// cache, an answer or a cached "not found", and one the cache lacks fails
// at once without a query and is recorded; an expired answer counts as
// lacking, as it would have been asked again.
func TestCacheOnlyAsksNoServer(t *testing.T) {
	srv := dnstest.Start(t)
	srv.AddTXT("known.example.org", "v=spf1 -all")
	now := time.Unix(1_000_000, 0)
	r := newTest(t, srv, func(c *Config) { c.CacheTTL = time.Minute })
	r.now = func() time.Time { return now }
	ctx := context.Background()

	var cold CacheProbe
	if _, err := r.LookupTXT(CacheOnly(ctx, &cold), "known.example.org"); err == nil || !dnsErr(t, err).IsTemporary || !cold.Missed() {
		t.Fatalf("cold cache: err %v, missed %v; want a temporary error, recorded", err, cold.Missed())
	}
	if n := srv.Queries("known.example.org"); n != 0 {
		t.Fatalf("a cache-only lookup sent %d queries", n)
	}

	if _, err := r.LookupTXT(ctx, "known.example.org"); err != nil {
		t.Fatal(err)
	}
	_, _ = r.LookupTXT(ctx, "absent.example.org")
	var warm CacheProbe
	txt, err := r.LookupTXT(CacheOnly(ctx, &warm), "known.example.org")
	if err != nil || len(txt) != 1 || txt[0] != "v=spf1 -all" {
		t.Fatalf("warm cache: %v, %v", txt, err)
	}
	if _, err := r.LookupTXT(CacheOnly(ctx, &warm), "absent.example.org"); err == nil || !dnsErr(t, err).IsNotFound {
		t.Fatalf("cached not-found: %v", err)
	}
	if warm.Missed() {
		t.Error("answers in the cache recorded as missed")
	}

	now = now.Add(2 * time.Minute)
	var expired CacheProbe
	if _, err := r.LookupTXT(CacheOnly(ctx, &expired), "known.example.org"); err == nil || !expired.Missed() {
		t.Errorf("expired answer: err %v, missed %v; want a miss", err, expired.Missed())
	}
	if n := srv.Queries("known.example.org"); n != 1 {
		t.Errorf("%d queries, want only the plain lookup's", n)
	}
}

// An answer from the cache costs its key, the lookup's closure and the
// caller's copy of the answer: not a string per step of building the key.
func TestCachedAnswerAllocations(t *testing.T) {
	srv := dnstest.Start(t)
	srv.AddTXT("example.org", "v=spf1 -all")
	r := newTest(t, srv, nil)
	ctx := context.Background()
	if _, err := r.LookupTXT(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	// The one allocation is the copy of the answer (see
	// TestCachedAnswersAreCopies).
	if n := testing.AllocsPerRun(100, func() { _, _ = r.LookupTXT(ctx, "example.org") }); n > 1 {
		t.Errorf("a cached LookupTXT allocated %.0f times, want 1", n)
	}
}

// TestRoutesKeepTheirOwnCache: answers for route names are kept apart
// from the checks' lookups, which senders choose: however many names
// those are, a route's last answer is still there to serve while the
// server gives none.
func TestRoutesKeepTheirOwnCache(t *testing.T) {
	srv := dnstest.Start(t)
	srv.AddA("mail.customer.example", "192.0.2.25")
	srv.AddTXT("*.flood.example", "v=spf1 -all")
	now := time.Unix(1_000_000, 0)
	r := newTest(t, srv, func(c *Config) { c.CacheSize = 4 })
	r.now = func() time.Time { return now }
	routes := r.Routes()
	routes.now = r.now
	ctx := context.Background()
	if _, err := routes.LookupNetIP(ctx, "ip", "mail.customer.example"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 * r.size {
		name := fmt.Sprintf("r%d.flood.example", i)
		_, _ = r.LookupTXT(ctx, name)
		_, _ = r.LookupNetIP(ctx, "ip", name) // the same kind of lookup as a route's
	}
	srv.ServFail("mail.customer.example")
	now = now.Add(r.ttl + time.Minute)
	if ips, err := routes.LookupNetIP(ctx, "ip", "mail.customer.example"); err != nil || fmt.Sprint(ips) != "[192.0.2.25]" {
		t.Errorf("route lookup after %d other names = %v, %v; want the last answer", 6*r.size, ips, err)
	}
	if routes.Routes() != routes || r.Routes() != routes {
		t.Error("Routes of the routes view is not itself")
	}
}

// TestPassingLookupsKeepNothing: under Passing, a lookup is answered from
// the cache when it can be, and what it looks up, found or not, takes
// no place there.
func TestPassingLookupsKeepNothing(t *testing.T) {
	srv := dnstest.Start(t)
	srv.AddA("mail.customer.example", "192.0.2.25")
	srv.AddA("set.example", "192.0.2.26")
	routes := newTest(t, srv, nil).Routes()
	ctx := context.Background()
	if _, err := routes.LookupNetIP(ctx, "ip", "mail.customer.example"); err != nil {
		t.Fatal(err)
	}
	passing := Passing(ctx)
	for range 2 {
		if ips, err := routes.LookupNetIP(passing, "ip", "mail.customer.example"); err != nil || fmt.Sprint(ips) != "[192.0.2.25]" {
			t.Fatalf("cached name in passing = %v, %v", ips, err)
		}
		if ips, err := routes.LookupNetIP(passing, "ip", "set.example"); err != nil || fmt.Sprint(ips) != "[192.0.2.26]" {
			t.Fatalf("new name in passing = %v, %v", ips, err)
		}
		_, _ = routes.LookupNetIP(passing, "ip", "missing.example")
	}
	if n := srv.Queries("mail.customer.example."); n != 2 { // A and AAAA, once
		t.Errorf("the cached name was asked %d times, want 2", n)
	}
	if n := srv.Queries("set.example."); n != 4 {
		t.Errorf("a name looked up in passing was asked %d times, want 4: it was kept", n)
	}
	if n := len(routes.items); n != 1 {
		t.Errorf("the cache holds %d answers, want 1", n)
	}
}

// askedNames records the names a Fresh resolver asks.
type askedNames []string

func (a *askedNames) LookupTXT(_ context.Context, name string) ([]string, error) {
	*a = append(*a, name)
	return nil, nil
}

func (a *askedNames) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	*a = append(*a, name)
	return nil, nil
}

// TestFreshAsksRootedNames: an ownership proof is looked up at the
// tenant's name itself, never first under resolv.conf's search domains
// (ndots:5 in Kubernetes tries "example.com.<search>" before
// "example.com"), where a wildcard record of the operator's could answer.
func TestFreshAsksRootedNames(t *testing.T) {
	var asked askedNames
	f := Fresh{res: &asked}
	ctx := context.Background()
	f.LookupTXT(ctx, "_mxgrid.example.com")
	f.LookupMX(ctx, "example.com")
	f.LookupMX(ctx, "example.com.")
	if want := []string{"_mxgrid.example.com.", "example.com.", "example.com."}; strings.Join(asked, " ") != strings.Join(want, " ") {
		t.Errorf("asked %q, want %q", asked, want)
	}
}

// TestAnswerWithAnInvalidNameKeepsTheValidRecords: the Go resolver drops
// the records of an answer whose names are not valid and returns the
// others beside an error. We took the error and dropped them all: one
// mistyped MX of a domain made SPF's mx mechanism a temperror and an MX
// ownership proof fail as if DNS had, cached or not; PTR likewise.
func TestAnswerWithAnInvalidNameKeepsTheValidRecords(t *testing.T) {
	srv := dnstest.Start(t)
	srv.Add(t, `mixed.example. 300 IN MX 10 mx1.mixed.example.`, `mixed.example. 300 IN MX 20 bad\ name.mixed.example.`,
		`25.2.0.192.in-addr.arpa. 300 IN PTR mail.mixed.example.`, `25.2.0.192.in-addr.arpa. 300 IN PTR bad\ name.mixed.example.`)
	ctx := context.Background()
	c := newTest(t, srv, nil)
	cfg := DefaultConfig()
	cfg.Server = srv.Addr
	fresh := Uncached(cfg)
	for name, lookup := range map[string]func() ([]*net.MX, error){
		"cached": func() ([]*net.MX, error) { return c.LookupMX(ctx, "mixed.example") },
		"fresh":  func() ([]*net.MX, error) { return fresh.LookupMX(ctx, "mixed.example") },
	} {
		mx, err := lookup()
		if err != nil || len(mx) != 1 || mx[0].Host != "mx1.mixed.example." {
			t.Errorf("%s LookupMX = %v, %v; want the valid mx1.mixed.example.", name, mx, err)
		}
	}
	if names, err := c.LookupAddr(ctx, "192.0.2.25"); err != nil || !slices.Equal(names, []string{"mail.mixed.example."}) {
		t.Errorf("LookupAddr = %q, %v; want the valid mail.mixed.example.", names, err)
	}
}

// BenchmarkCachedLookup is a lookup the cache answers, as most of a busy
// node's SPF, DKIM, DMARC and DNSBL lookups are.
func BenchmarkCachedLookup(b *testing.B) {
	srv := dnstest.Start(b)
	srv.AddTXT("_dmarc.example.org", "v=DMARC1; p=reject")
	srv.AddA("2.0.0.192.zen.example.net", "127.0.0.2")
	cfg := DefaultConfig()
	cfg.Server = srv.Addr
	r := New(cfg, prometheus.NewRegistry())
	ctx := context.Background()
	b.Run("txt", func(b *testing.B) {
		if _, err := r.LookupTXT(ctx, "_dmarc.example.org"); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			_, _ = r.LookupTXT(ctx, "_dmarc.example.org")
		}
	})
	b.Run("ip4", func(b *testing.B) {
		if _, err := r.LookupNetIP(ctx, "ip4", "2.0.0.192.zen.example.net"); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			_, _ = r.LookupNetIP(ctx, "ip4", "2.0.0.192.zen.example.net")
		}
	})
}
