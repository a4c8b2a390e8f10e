package panel

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/dnsresolver"
	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/mxgrid/mxgrid/tenant"
)

// smtpListener greets every connection and counts them.
func smtpListener(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n := new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			fmt.Fprintf(c, "220 inner.test ESMTP secret-banner\r\n")
			c.Close()
		}
	}()
	return l.Addr().String(), n
}

// domainRoutedTo creates a domain of reseller A with route (the service
// here checks syntax only, as for a route set before the guard existed).
func (uf *userFixture) domainRoutedTo(t *testing.T, route string) int64 {
	t.Helper()
	ctx := context.Background()
	c, err := uf.svc.CreateCustomer(ctx, uf.op, tenant.Customer{Name: "c", ResellerID: uf.a.ID})
	if err != nil {
		t.Fatal(err)
	}
	d, err := uf.svc.CreateDomain(ctx, uf.op, tenant.DomainRecord{CustomerID: c.ID, Name: fmt.Sprintf("d%d.example", c.ID), Route: route, TLS: "none"})
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func (uf *userFixture) withGuard(t *testing.T, g *netguard.Guard) {
	t.Helper()
	p, err := New(DefaultConfig(), Options{Service: uf.svc, DataDir: t.TempDir(), SMTPHostname: "mx.test", Guard: g})
	if err != nil {
		t.Fatal(err)
	}
	uf.p = p
}

// TestRouteTestObeysTheGuard: "Test route" to loopback, directly or by a
// name that resolves there, makes no connection and shows no banner,
// unless the operator allowed the network.
func TestRouteTestObeysTheGuard(t *testing.T) {
	addr, conns := smtpListener(t)
	_, port, _ := net.SplitHostPort(addr)
	dns := dnstest.Start(t)
	dns.AddA("inward.test.", "127.0.0.1")
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dns.Addr)
	}}
	uf := newUserFixture(t)
	uf.withGuard(t, netguard.New(res, nil))
	a := uf.client(t).as(uf.fixture, uf.aUser)
	for _, route := range []string{addr, "localhost:" + port, "inward.test:" + port} {
		id := uf.domainRoutedTo(t, route)
		rec := a.post(fmt.Sprintf("/panel/domains/%d/test-route", id))
		body := rec.Body.String()
		if rec.Code != 200 || !strings.Contains(body, "not tested") || !strings.Contains(body, "loopback") || strings.Contains(body, "secret-banner") {
			t.Errorf("test of %s: %d, body without the refusal or with the banner", route, rec.Code)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("refused route tests made %d connections", n)
	}

	uf.withGuard(t, netguard.New(res, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}))
	a = uf.client(t).as(uf.fixture, uf.aUser)
	rec := a.post(fmt.Sprintf("/panel/domains/%d/test-route", uf.domainRoutedTo(t, "inward.test:"+port)))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "220 inner.test") || conns.Load() != 1 {
		t.Errorf("allowed network: %d, %d connections", rec.Code, conns.Load())
	}
}

// TestRouteTestFindsTheCluster: a route to a server that greets, or
// answers EHLO, with this node's or a member's name (a member's address
// the cluster does not know, through NAT or a forwarder) is not called OK,
// since the relay refuses it with 554 5.4.6. Before, the test said "The
// server answers SMTP." for a route every message to would bounce.
func TestRouteTestFindsTheCluster(t *testing.T) {
	g := netguard.New(nil, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	g.SetMemberHostnames(func() []string { return []string{"mx.test", "mx2.test"} })
	uf := newUserFixture(t)
	uf.withGuard(t, g)
	a := uf.client(t).as(uf.fixture, uf.aUser)
	for _, tc := range []struct {
		name, greeting, ehlo string
		ok                   bool
	}{
		{"member's greeting", "220 mx2.test ESMTP\r\n", "250 mx2.test\r\n", false},
		{"own name in the EHLO reply", "220 nat.test ESMTP\r\n", "250-MX.test. hello\r\n250 8BITMIME\r\n", false},
		{"customer's server", "220 mail.customer.test ESMTP\r\n", "250-mail.customer.test\r\n250 8BITMIME\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				fmt.Fprint(c, tc.greeting)
				buf := make([]byte, 512)
				if _, err := c.Read(buf); err == nil {
					fmt.Fprint(c, tc.ehlo)
				}
				c.Read(buf)
				fmt.Fprint(c, "221 bye\r\n")
			}()
			body := a.post(fmt.Sprintf("/panel/domains/%d/test-route", uf.domainRoutedTo(t, l.Addr().String()))).Body.String()
			if ok := strings.Contains(body, "The server answers SMTP."); ok != tc.ok {
				t.Errorf("OK = %v, want %v:\n%s", ok, tc.ok, body)
			}
			if loop := strings.Contains(body, "mail would loop"); loop == tc.ok {
				t.Errorf("loop named = %v, want %v", loop, !tc.ok)
			}
		})
	}
}

// TestRouteTestRateLimited: route_test_burst tests at once, then one per
// route_test_interval, per reseller; beyond that 429 with Retry-After.
func TestRouteTestRateLimited(t *testing.T) {
	uf := newUserFixture(t)
	// The session store keeps its own clock: start from the real one.
	now := time.Now()
	uf.p.now = func() time.Time { return now }
	a := uf.client(t).as(uf.fixture, uf.aUser)
	path := fmt.Sprintf("/panel/domains/%d/test-route", uf.domainRoutedTo(t, "127.0.0.1:9"))
	cfg := DefaultConfig()
	for i := range cfg.RouteTestBurst {
		if rec := a.post(path); rec.Code != 200 {
			t.Fatalf("test %d: %d", i+1, rec.Code)
		}
	}
	rec := a.post(path)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "12" {
		t.Fatalf("test %d: %d, Retry-After %q; want 429, 12", cfg.RouteTestBurst+1, rec.Code, rec.Header().Get("Retry-After"))
	}
	// Another reseller has its own budget.
	ctx := context.Background()
	c, _ := uf.svc.CreateCustomer(ctx, uf.op, tenant.Customer{Name: "b", ResellerID: uf.b.ID})
	db, err := uf.svc.CreateDomain(ctx, uf.op, tenant.DomainRecord{CustomerID: c.ID, Name: "b.example", Route: "127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	b := uf.client(t).as(uf.fixture, admin.Principal{ResellerID: uf.b.ID, Actor: "b"})
	if rec := b.post(fmt.Sprintf("/panel/domains/%d/test-route", db.ID)); rec.Code != 200 {
		t.Errorf("reseller B: %d", rec.Code)
	}
	now = now.Add(cfg.RouteTestInterval)
	if rec := a.post(path); rec.Code != 200 {
		t.Errorf("after the interval: %d", rec.Code)
	}
	if rec := a.post(path); rec.Code != http.StatusTooManyRequests {
		t.Errorf("right after: %d, want 429", rec.Code)
	}
}

// TestRouteTestReadsABoundedReply: "Test route" reads at most
// maxProbeReply bytes of what the route's server says. A reseller's own
// server (any public address) could answer with one endless line or
// endless continuation lines, and the probe read it all into memory for up
// to 15 seconds, five tests at once per reseller.
func TestRouteTestReadsABoundedReply(t *testing.T) {
	const sent = 64 << 20
	for _, tt := range []struct{ name, greeting, filler string }{
		{"one endless line", "220 ", "a"},
		{"endless continuation lines", "", "220-filler filler filler filler filler filler filler filler\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			written := make(chan int64, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				chunk := []byte(strings.Repeat(tt.filler, 64<<10/len(tt.filler)))
				n, _ := c.Write([]byte(tt.greeting))
				total := int64(n)
				for total < sent {
					n, err := c.Write(chunk)
					total += int64(n)
					if err != nil {
						break
					}
				}
				written <- total
			}()
			uf := newUserFixture(t)
			uf.withGuard(t, netguard.New(nil, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			test := uf.p.smtpProbe(ctx, l.Addr().String())
			if got := <-written; got >= sent {
				t.Errorf("the probe read all %d bytes the server sent", got)
			}
			shown := 0
			for _, line := range test.Transcript {
				shown += len(line)
			}
			if test.OK || shown > 2*maxProbeReply || !strings.Contains(strings.Join(test.Transcript, "\n"), "longer than") {
				t.Errorf("OK %v, %d bytes of transcript, want a refusal saying the reply is too long:\n%.300s", test.OK, shown, strings.Join(test.Transcript, "\n"))
			}
		})
	}
}

// TestRouteTestCoversRecipientRules: "Test route" connects to the
// servers of the domain's recipient rules too, each once and at most
// maxTestedRoutes of them, and is OK only when every one answers. Before,
// it tested the domain's own route alone: a rule sending sales-* to a
// server that was down passed the test while that mail got 451.
func TestRouteTestCoversRecipientRules(t *testing.T) {
	g := netguard.New(nil, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	uf := newUserFixture(t)
	uf.withGuard(t, g)
	a := uf.client(t).as(uf.fixture, uf.aUser)
	good, other := smtptest.StartSink(t).Addr, smtptest.StartSink(t).Addr
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := dead.Addr().String()
	dead.Close()
	domain := func(rules ...string) int64 {
		t.Helper()
		ctx := context.Background()
		c, err := uf.svc.CreateCustomer(ctx, uf.op, tenant.Customer{Name: "c", ResellerID: uf.a.ID})
		if err != nil {
			t.Fatal(err)
		}
		d := tenant.DomainRecord{CustomerID: c.ID, Name: fmt.Sprintf("d%d.example", c.ID), Route: good, TLS: "none"}
		for i, r := range rules {
			d.Routes = append(d.Routes, tenant.RouteRule{Recipients: []string{fmt.Sprintf("team%d-*", i)}, Route: r})
		}
		if d, err = uf.svc.CreateDomain(ctx, uf.op, d); err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	test := func(id int64) string {
		return a.post(fmt.Sprintf("/panel/domains/%d/test-route", id)).Body.String()
	}

	body := test(domain(other, good, other))
	if !strings.Contains(body, "The server answers SMTP.") {
		t.Errorf("every server answers, not OK:\n%s", body)
	}
	if n := strings.Count(body, "connecting to "); n != 2 {
		t.Errorf("%d connections for two distinct servers:\n%s", n, body)
	}

	body = test(domain(down))
	if strings.Contains(body, "The server answers SMTP.") || !strings.Contains(body, "connecting to "+down) {
		t.Errorf("a rule's server down, still OK or untested:\n%s", body)
	}

	var many []string
	for range maxTestedRoutes + 2 {
		many = append(many, smtptest.StartSink(t).Addr)
	}
	body = test(domain(many...))
	if n := strings.Count(body, "connecting to "); n != maxTestedRoutes {
		t.Errorf("%d connections, want at most %d:\n%s", n, maxTestedRoutes, body)
	}
	if !strings.Contains(body, "3 more servers of recipient rules not tested") {
		t.Errorf("the servers left untested are not said:\n%s", body)
	}
}

// TestRouteTestHidesTheResolver: a route whose name does not resolve was
// shown as the DNS error reads, "lookup nx.test. on 10.0.0.2:53: no such
// host": the node's resolver's address, which nothing else shows a tenant
// (Authentication-Results drop it too). The panel names the host and
// what DNS said of it.
func TestRouteTestHidesTheResolver(t *testing.T) {
	dns := dnstest.Start(t)
	cfg := dnsresolver.DefaultConfig()
	cfg.Server = dns.Addr
	uf := newUserFixture(t)
	uf.withGuard(t, netguard.New(dnsresolver.New(cfg, prometheus.NewRegistry()).Routes(), nil))
	a := uf.client(t).as(uf.fixture, uf.aUser)
	rec := a.post(fmt.Sprintf("/panel/domains/%d/test-route", uf.domainRoutedTo(t, "nx.test:25")))
	host, _, _ := net.SplitHostPort(dns.Addr)
	if body := rec.Body.String(); rec.Code != 200 || !strings.Contains(body, "nx.test") || !strings.Contains(body, "no such host") || strings.Contains(body, host) {
		t.Errorf("test of an unresolvable route: %d\n%s", rec.Code, body)
	}
}
