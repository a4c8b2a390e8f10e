package panel

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestPanelOtherResellersObjects has reseller A post every form of the
// panel at reseller B's customer, domain and recipient, and read B's
// pages: each answers "Not found" as for an id that exists nowhere, and
// B's objects stay as they were.
func TestPanelOtherResellersObjects(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pa, _, _ := f.resellerWithDomain(t, tenant.Reseller{Name: "Alpha", Slug: "alpha"},
		tenant.DomainRecord{Name: "alpha.example", Route: "192.0.2.1:25"})
	_, cB, dB := f.resellerWithDomain(t, tenant.Reseller{Name: "Beta", Slug: "beta"},
		tenant.DomainRecord{Name: "beta.example", Route: "192.0.2.2:25"})
	if _, err := f.svc.AddRecipients(ctx, f.op, dB.ID, []string{"bob"}, false); err != nil {
		t.Fatal(err)
	}
	a := f.client(t).as(f, pa)
	const missing = "987654"
	cust, dom := "/panel/customers/"+itoa(cB), "/panel/domains/"+itoa(dB.ID)
	for _, tc := range []struct {
		method, path string
		form         []string
	}{
		{"GET", cust, nil},
		{"POST", cust, []string{"name", "Mine now"}},
		{"POST", cust + "/suspend", []string{"suspend", "1"}},
		{"POST", cust + "/delete", nil},
		{"POST", cust + "/domains", []string{"name", "stolen.example", "route", "192.0.2.3:25"}},
		{"GET", dom, nil},
		{"POST", dom, []string{"name", "beta.example", "route", "192.0.2.3:25", "tls", "none"}},
		{"POST", dom + "/delete", nil},
		{"POST", dom + "/verify", nil},
		{"POST", dom + "/test-route", nil},
		{"POST", dom + "/recipients", []string{"local", "mallory"}},
		{"POST", dom + "/import", nil},
		{"POST", dom + "/recipients/rm", []string{"local", "bob"}},
		{"GET", dom + "/stats", nil},
	} {
		send := func(path string) *httptest.ResponseRecorder {
			if tc.method == "POST" {
				return a.post(path, tc.form...)
			}
			return a.get(path)
		}
		theirs := send(tc.path)
		other := send(strings.NewReplacer("/"+itoa(cB), "/"+missing, "/"+itoa(dB.ID), "/"+missing).Replace(tc.path))
		body := theirs.Body.String()
		if theirs.Code != http.StatusNotFound || strings.Contains(body, "Beta") || strings.Contains(body, "beta.example") {
			t.Errorf("%s %s as A: %d, want 404 revealing nothing\n%s", tc.method, tc.path, theirs.Code, body)
		}
		if other.Code != theirs.Code || other.Body.String() != body {
			t.Errorf("%s %s as A: B's id answers %d, a missing one %d", tc.method, tc.path, theirs.Code, other.Code)
		}
	}
	c, err := f.svc.GetCustomer(ctx, f.op, cB)
	if err != nil || c.Name != "c" || c.Suspended {
		t.Errorf("B's customer after A's forms: %+v %v", c, err)
	}
	d, err := f.svc.GetDomain(ctx, f.op, dB.ID)
	if err != nil || d.Route != "192.0.2.2:25" || d.CustomerID != cB {
		t.Errorf("B's domain after A's forms: %+v %v", d, err)
	}
	if r, err := f.svc.ListRecipients(ctx, f.op, dB.ID, admin.Filter{Limit: admin.MaxPageSize}); err != nil || len(r) != 1 || r[0].Local != "bob" {
		t.Errorf("B's recipients after A's forms: %+v %v", r, err)
	}
	if l, err := f.svc.ListDomains(ctx, f.op, admin.Filter{Limit: admin.MaxPageSize}); err != nil || len(l) != 2 {
		t.Errorf("domains after A's forms: %+v %v", l, err)
	}
}
