package store

import (
	"context"
	"reflect"
	"testing"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// testRouteRules is the route rules' part of the admin.Store contract:
// they are written with the domain, read by Get, List and Load, replaced
// whole, removed by an empty list, and leave with their domain.
func testRouteRules(t *testing.T, ts *Tenants, d tenant.DomainRecord, a admin.AuditEntry) {
	t.Helper()
	ctx := context.Background()
	if got, err := ts.GetDomain(ctx, d.ID); err != nil || got.Routes == nil || len(got.Routes) != 0 {
		t.Fatalf("a domain without rules reads routes %#v (%v), want an empty list", got.Routes, err)
	}
	rules := []tenant.RouteRule{
		{Recipients: []string{"alice", "sales-*"}, Route: "suite.test:25", TLS: "required"},
		{Recipients: []string{`o'brien`}, Route: "onprem.test:2525"},
	}
	check := func(want []tenant.RouteRule) {
		t.Helper()
		got, err := ts.GetDomain(ctx, d.ID)
		if err != nil || !reflect.DeepEqual(got.Routes, want) {
			t.Fatalf("GetDomain routes = %#v, %v; want %#v", got.Routes, err, want)
		}
		list, err := ts.ListDomains(ctx, admin.Filter{Name: d.Name})
		if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0].Routes, want) {
			t.Fatalf("ListDomains = %+v, %v", list, err)
		}
		data, err := ts.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, dr := range data.Domains {
			if dr.ID == d.ID && !reflect.DeepEqual(dr.Routes, want) {
				t.Fatalf("Load routes = %#v, want %#v", dr.Routes, want)
			}
		}
	}
	d.Routes = rules
	if _, err := ts.UpdateDomain(ctx, &d, d.ResellerID, a); err != nil {
		t.Fatal(err)
	}
	check(rules)
	d.Routes = rules[1:]
	if _, err := ts.UpdateDomain(ctx, &d, d.ResellerID, a); err != nil {
		t.Fatal(err)
	}
	check(rules[1:])
	d.Routes = []tenant.RouteRule{}
	if _, err := ts.UpdateDomain(ctx, &d, d.ResellerID, a); err != nil {
		t.Fatal(err)
	}
	check([]tenant.RouteRule{})

	// Created with rules, deleted with them.
	other := tenant.DomainRecord{CustomerID: d.CustomerID, Name: "split.example.org", Route: "127.0.0.1:25", TLS: "none", Routes: rules}
	if _, err := ts.CreateDomain(ctx, &other, a); err != nil {
		t.Fatal(err)
	}
	got, err := ts.GetDomain(ctx, other.ID)
	if err != nil || !reflect.DeepEqual(got.Routes, rules) {
		t.Fatalf("created domain's routes = %#v, %v", got.Routes, err)
	}
	if _, err := ts.DeleteDomain(ctx, other.ID, other.ResellerID, a); err != nil {
		t.Fatal(err)
	}
	st, err := ts.db(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := st.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM domain_routes WHERE domain_id = $1`, other.ID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rules of a deleted domain: %d rows, %v", n, err)
	}
}
