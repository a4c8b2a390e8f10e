package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestAPIQuota: the operator sets a reseller's quota, the reseller cannot,
// and a create or import past it answers 403 naming the quota and the
// usage, whole imports included; replace counts the new list; another
// reseller is unaffected; raising the quota lets the create through.
func TestAPIQuota(t *testing.T) {
	f := newAPIFixture(t)
	custB, err := f.svc.CreateCustomer(context.Background(), f.op, tenant.Customer{ResellerID: f.resB.ID, Name: "customer B"})
	if err != nil {
		t.Fatal(err)
	}
	resA := fmt.Sprintf("/api/v1/resellers/%d", f.resA.ID)
	recips := fmt.Sprintf("/api/v1/domains/%d/recipients", f.domA.ID)
	domain := func(cust int64, name string) map[string]any {
		return map[string]any{"customer_id": cust, "name": name, "route": "127.0.0.1:25"}
	}
	// Reseller A starts with a.example and its recipient alice.
	steps := []struct {
		name, who, method, path string
		body                    any
		code                    int
		quota                   *tenant.QuotaError
	}{
		{"a reseller cannot raise its quota", "own", "PATCH", resA, map[string]any{"quota": map[string]int{"domains": 100}}, http.StatusForbidden, nil},
		{"the operator sets it", "operator", "PATCH", resA, map[string]any{"quota": map[string]int{"domains": 2, "recipients": 3}}, http.StatusOK, nil},
		{"negative", "operator", "PATCH", resA, map[string]any{"quota": map[string]int{"domains": -1}}, http.StatusBadRequest, nil},
		{"last domain place", "own", "POST", "/api/v1/domains", domain(f.custA.ID, "q1.example"), http.StatusCreated, nil},
		{"domain over quota", "own", "POST", "/api/v1/domains", domain(f.custA.ID, "q2.example"), http.StatusForbidden,
			&tenant.QuotaError{What: "domains", Quota: 2, Used: 2, After: 3}},
		{"another reseller unaffected", "other", "POST", "/api/v1/domains", domain(custB.ID, "b1.example"), http.StatusCreated, nil},
		{"recipient within", "own", "POST", recips, map[string]string{"local": "bob"}, http.StatusCreated, nil},
		{"import over quota", "own", "POST", recips + "/import", map[string]any{"recipients": []string{"c", "d"}}, http.StatusForbidden,
			&tenant.QuotaError{What: "recipients", Quota: 3, Used: 2, After: 4}},
		{"replace counts the new list", "own", "POST", recips + "/import", map[string]any{"recipients": []string{"x", "y", "z"}, "replace": true}, http.StatusOK, nil},
		{"recipient over quota", "own", "POST", recips, map[string]string{"local": "w"}, http.StatusForbidden,
			&tenant.QuotaError{What: "recipients", Quota: 3, Used: 3, After: 4}},
		{"the operator raises one field", "operator", "PATCH", resA, map[string]any{"quota": map[string]int{"domains": 3}}, http.StatusOK, nil},
		{"domain after the raise", "own", "POST", "/api/v1/domains", domain(f.custA.ID, "q2.example"), http.StatusCreated, nil},
	}
	for _, s := range steps {
		code, body := f.do(s.who, s.method, s.path, s.body)
		if code != s.code {
			t.Fatalf("%s: %d %s, want %d", s.name, code, body, s.code)
		}
		if code < 400 {
			continue
		}
		var e apiError
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if (s.quota == nil) != (e.Quota == nil) || (s.quota != nil && *s.quota != *e.Quota) {
			t.Fatalf("%s: %s, want quota %+v", s.name, body, s.quota)
		}
	}

	var got struct {
		Quota tenant.Quota `json:"quota"`
		Usage admin.Usage  `json:"usage"`
	}
	code, body := f.do("own", "GET", resA, nil)
	if err := json.Unmarshal(body, &got); code != http.StatusOK || err != nil {
		t.Fatalf("GET reseller: %d %s", code, body)
	}
	want := admin.Usage{Domains: admin.Use{Used: 3, Quota: 3}, Recipients: admin.Use{Used: 3, Quota: 3}}
	if got.Usage != want || got.Quota != (tenant.Quota{Domains: 3, Recipients: 3}) {
		t.Fatalf("GET reseller as itself: %s, want usage %+v and the recipients quota the PATCH left out kept", body, want)
	}
}
