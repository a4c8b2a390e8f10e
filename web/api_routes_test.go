package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
	"github.com/mxgrid/mxgrid/netguard"
)

// guardedFixture is the API with a route guard that resolves through a
// loopback DNS server where inward.test points at 127.0.0.1, and allows
// the networks given (relay.allowed_route_networks).
func guardedFixture(t *testing.T, allowed ...string) *apiFixture {
	t.Helper()
	dns := dnstest.Start(t)
	dns.AddA("inward.test.", "127.0.0.1")
	dns.AddA("outward.test.", "8.8.8.8")
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dns.Addr)
	}}
	prefixes, err := netguard.ParsePrefixes(allowed)
	if err != nil {
		t.Fatal(err)
	}
	// The guard starts after the fixture's own setup, whose domain routes
	// to loopback.
	var g *netguard.Guard
	f := newAPIFixture(t, func(o *admin.ServiceOptions) {
		o.CheckRoute = func(ctx context.Context, route string) error {
			if g == nil {
				return nil
			}
			return g.CheckRoute(ctx, route)
		}
	})
	g = netguard.New(res, prefixes)
	return f
}

var inwardRoutes = []string{"127.0.0.1:25", "10.1.2.3:25", "169.254.169.254:80", "[::1]:25", "localhost:25", "inward.test:25"}

// TestAPIRefusesRoutesInward: neither a reseller nor the operator can point
// a domain, or one of its route rules, into the node's own networks (400
// naming the field), until the operator allows the network.
func TestAPIRefusesRoutesInward(t *testing.T) {
	f := guardedFixture(t)
	for _, who := range []string{"own", "operator"} {
		for _, route := range inwardRoutes {
			t.Run(who+" "+route, func(t *testing.T) {
				wantField(t, f, who, "POST", "/api/v1/domains",
					map[string]any{"name": fmt.Sprintf("in%d.example", f.next()), "customer_id": f.custA.ID, "route": route}, "route")
				wantField(t, f, who, "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), map[string]any{"route": route}, "route")
				wantField(t, f, who, "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), map[string]any{"routes": []map[string]any{
					{"recipients": []string{"a"}, "route": "outward.test:25"}, {"recipients": []string{"b"}, "route": route}}}, "routes[1].route")
			})
		}
	}
	// Public destinations, and names that do not resolve yet (checked again
	// at connect time), are fine.
	for _, route := range []string{"outward.test:25", "8.8.4.4:25", "not-yet.test:25"} {
		if code, out := f.do("own", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), map[string]any{"route": route}); code != 200 {
			t.Errorf("route %s: %d %s", route, code, out)
		}
	}

	allowed := guardedFixture(t, "127.0.0.0/8", "10.0.0.0/8", "169.254.169.254/32", "::1/128")
	for _, route := range inwardRoutes {
		if code, out := allowed.do("own", "POST", "/api/v1/domains",
			map[string]any{"name": fmt.Sprintf("ok%d.example", allowed.next()), "customer_id": allowed.custA.ID, "route": route}); code != 201 {
			t.Errorf("allowed route %s: %d %s", route, code, out)
		}
	}
}

func wantField(t *testing.T, f *apiFixture, who, method, path string, body any, field string) {
	t.Helper()
	code, out := f.do(who, method, path, body)
	if code != 400 {
		t.Fatalf("%s %s: status %d, want 400: %s", method, path, code, out)
	}
	var e apiError
	if err := json.Unmarshal(out, &e); err != nil || e.Fields[field] == "" {
		t.Fatalf("%s %s: %s does not name %q", method, path, out, field)
	}
}

// TestAPIRouteChecksAreBoundedTogether: a domain's route checks run
// together under one deadline, each distinct route once. Each lookup is
// bounded, but a domain has up to 101 routes and a tenant may name hosts
// under a name server that never answers: checked one after another, the
// request took the sum (here 101 × 1 s; with netguard's 5 s bound, over 8
// minutes).
func TestAPIRouteChecksAreBoundedTogether(t *testing.T) {
	var calls atomic.Int32
	f := newAPIFixture(t, func(o *admin.ServiceOptions) {
		o.CheckRoute = func(ctx context.Context, route string) error {
			calls.Add(1)
			select { // a black-holed name server, as far as the caller lets it
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			return nil
		}
	})
	rules := make([]map[string]any, 100)
	for i := range rules {
		rules[i] = map[string]any{"recipients": []string{fmt.Sprintf("r%d", i)}, "route": fmt.Sprintf("mx%d.blackhole.example:25", i%50)}
	}
	calls.Store(0)
	start := time.Now()
	code, out := f.do("own", "PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), map[string]any{"route": "mx0.blackhole.example:25", "routes": rules})
	if took := time.Since(start); code != 200 || took > 15*time.Second {
		t.Fatalf("PATCH with 100 rules: %d in %v, want 200 within the checks' deadline: %.200s", code, took, out)
	}
	if n := calls.Load(); n != 50 {
		t.Errorf("%d route checks for 50 distinct routes", n)
	}
}
