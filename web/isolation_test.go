package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

// TestAPICrossTenantIDsInBodiesAndQueries has reseller B name reseller A's
// objects where the authorization matrix does not: in request bodies
// (moving its own objects under A's), in list filters, and in paths whose
// answer must not tell A's ids from ids that do not exist.
func TestAPICrossTenantIDsInBodiesAndQueries(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	custB, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: f.resB.ID, Name: "customer B"})
	if err != nil {
		t.Fatal(err)
	}
	domB, err := f.svc.CreateDomain(ctx, f.op, tenant.DomainRecord{CustomerID: custB.ID, Name: "b.example", Route: "127.0.0.1:25"})
	if err != nil {
		t.Fatal(err)
	}
	const missing = 987654
	A, cA, dA := f.resA.ID, f.custA.ID, f.domA.ID

	// Writes naming A's ids: refused, with the answer an id that exists
	// nowhere gets. Ids in bodies are swapped for missing ones; ids in
	// paths are (nowhere names the same request with a missing id).
	dom := func(id int64, rest string) string { return fmt.Sprintf("/api/v1/domains/%d%s", id, rest) }
	writes := []struct {
		name                  string
		method, path, nowhere string
		theirs, missing       any
	}{
		{"domain created under A's customer", "POST", "/api/v1/domains", "/api/v1/domains",
			map[string]any{"name": "new-b.example", "customer_id": cA, "route": "192.0.2.1:25"},
			map[string]any{"name": "new-b.example", "customer_id": missing, "route": "192.0.2.1:25"}},
		{"domain moved to A's customer", "PATCH", dom(domB.ID, ""), dom(domB.ID, ""),
			map[string]any{"customer_id": cA}, map[string]any{"customer_id": missing}},
		{"customer moved to A", "PATCH", fmt.Sprintf("/api/v1/customers/%d", custB.ID), fmt.Sprintf("/api/v1/customers/%d", custB.ID),
			map[string]any{"reseller_id": A}, map[string]any{"reseller_id": missing}},
		{"customer created under A", "POST", "/api/v1/customers", "/api/v1/customers",
			map[string]any{"name": "x", "reseller_id": A}, map[string]any{"name": "x", "reseller_id": missing}},
		{"token created for A", "POST", "/api/v1/tokens", "/api/v1/tokens",
			map[string]any{"name": "x", "reseller_id": A}, map[string]any{"name": "x", "reseller_id": missing}},
		{"A's domain patched", "PATCH", dom(dA, ""), dom(missing, ""), map[string]any{"route": "192.0.2.9:25"}, nil},
		{"A's customer patched", "PATCH", fmt.Sprintf("/api/v1/customers/%d", cA), fmt.Sprintf("/api/v1/customers/%d", missing),
			map[string]any{"name": "mine"}, nil},
		{"recipient added to A's domain", "POST", dom(dA, "/recipients"), dom(missing, "/recipients"), map[string]any{"local": "mallory"}, nil},
		{"A's recipients replaced", "POST", dom(dA, "/recipients/import"), dom(missing, "/recipients/import"),
			map[string]any{"recipients": []string{}, "replace": true}, nil},
		{"A's recipient deleted", "DELETE", dom(dA, "/recipients/alice"), dom(missing, "/recipients/alice"), nil, nil},
		{"A's domain verified", "POST", dom(dA, "/verify"), dom(missing, "/verify"), nil, nil},
		{"A's token deleted", "DELETE", fmt.Sprintf("/api/v1/tokens/%d", f.tokA.ID), fmt.Sprintf("/api/v1/tokens/%d", missing), nil, nil},
		{"A's held message released", "POST", fmt.Sprintf("/api/v1/quarantine/%d/release", f.heldA),
			fmt.Sprintf("/api/v1/quarantine/%d/release", missing), nil, nil},
		{"A's held message released, its sender allowed", "POST", fmt.Sprintf("/api/v1/quarantine/%d/release", f.heldA),
			fmt.Sprintf("/api/v1/quarantine/%d/release", missing), map[string]any{"allow_sender": true}, nil},
		{"A's held message deleted", "DELETE", fmt.Sprintf("/api/v1/quarantine/%d", f.heldA), fmt.Sprintf("/api/v1/quarantine/%d", missing), nil, nil},
	}
	for _, tc := range writes {
		code, out := f.do("other", tc.method, tc.path, tc.theirs)
		if code < 400 {
			t.Errorf("%s: %d %s; want refused", tc.name, code, out)
			continue
		}
		body := tc.missing
		if body == nil {
			body = tc.theirs
		}
		if code2, out2 := f.do("other", tc.method, tc.nowhere, body); code != code2 || string(out) != string(out2) {
			t.Errorf("%s: A's id answers %d %s, a missing one %d %s: they must not differ", tc.name, code, out, code2, out2)
		}
	}
	// A's objects are as they were.
	if d, err := f.svc.GetDomain(ctx, f.op, dA); err != nil || d.CustomerID != cA || d.Route != "127.0.0.1:2525" {
		t.Errorf("A's domain changed: %+v %v", d, err)
	}
	if c, err := f.svc.GetCustomer(ctx, f.op, cA); err != nil || c.Name != "customer A" {
		t.Errorf("A's customer changed: %+v %v", c, err)
	}
	if _, err := f.svc.GetRecipient(ctx, f.op, dA, "alice"); err != nil {
		t.Errorf("A's recipient: %v", err)
	}
	if d, err := f.svc.GetDomain(ctx, f.op, domB.ID); err != nil || d.CustomerID != custB.ID {
		t.Errorf("B's domain moved: %+v %v", d, err)
	}

	// Filters naming A's ids find nothing of A's.
	for _, path := range []string{
		fmt.Sprintf("/api/v1/customers?reseller_id=%d", A), fmt.Sprintf("/api/v1/customers?customer_id=%d", cA),
		fmt.Sprintf("/api/v1/domains?reseller_id=%d", A), fmt.Sprintf("/api/v1/domains?customer_id=%d", cA),
		fmt.Sprintf("/api/v1/tokens?reseller_id=%d", A), fmt.Sprintf("/api/v1/audit?reseller_id=%d", A),
		fmt.Sprintf("/api/v1/resellers?reseller_id=%d", A), "/api/v1/domains?name=%25", "/api/v1/domains?name=_",
		"/api/v1/customers?name=%25", "/api/v1/tokens?name=%25", "/api/v1/domains?after=0&limit=500",
		fmt.Sprintf("/api/v1/deferrals?customer_id=%d", cA), fmt.Sprintf("/api/v1/deferrals?domain_id=%d", dA),
		"/api/v1/messages?recipient=alice@a.example", "/api/v1/messages?sender=X@SENDER.EXAMPLE",
		fmt.Sprintf("/api/v1/quarantine?domain_id=%d", dA), "/api/v1/quarantine?q=%25", "/api/v1/quarantine?q=invoice",
		"/api/v1/quarantine?state=released", "/api/v1/quarantine?state=deleted",
	} {
		code, out := f.do("other", "GET", path, nil)
		if code != 200 && code != 400 {
			t.Errorf("GET %s: %d %s", path, code, out)
			continue
		}
		var pg struct{ Items []map[string]any }
		json.Unmarshal(out, &pg)
		for _, it := range pg.Items {
			for _, k := range []string{"reseller_id", "customer_id"} {
				if v, ok := it[k]; ok && (v == float64(A) && k == "reseller_id" || v == float64(cA) && k == "customer_id") {
					t.Errorf("GET %s as B lists A's %v", path, it)
				}
			}
			if strings.Contains(fmt.Sprint(it), "a.example") {
				t.Errorf("GET %s as B lists A's %v", path, it)
			}
		}
	}
	// A list filtered by A's reseller id is empty: B's own objects are
	// not A's, and were listed in their place (the filter replaced by B's
	// id), as B has a customer, a domain, a token and audit entries.
	for _, list := range []string{"customers", "domains", "tokens", "audit"} {
		path := fmt.Sprintf("/api/v1/%s?reseller_id=%d", list, A)
		code, out := f.do("other", "GET", path, nil)
		var pg struct{ Items []json.RawMessage }
		if err := json.Unmarshal(out, &pg); code != 200 || err != nil || len(pg.Items) != 0 {
			t.Errorf("GET %s as B: %d %s; want 200 and no items", path, code, out)
		}
		if code, out := f.do("other", "GET", fmt.Sprintf("/api/v1/%s?reseller_id=%d", list, f.resB.ID), nil); code != 200 || !strings.Contains(string(out), `"id"`) {
			t.Errorf("GET /api/v1/%s?reseller_id=B as B: %d %s; want B's own", list, code, out)
		}
	}
	// Lists and reads of A's children by A's parent's id: 404 as for a
	// missing one.
	for _, pair := range [][2]string{
		{fmt.Sprintf("/api/v1/domains/%d/recipients", dA), fmt.Sprintf("/api/v1/domains/%d/recipients", missing)},
		{fmt.Sprintf("/api/v1/domains/%d/recipients/alice", dA), fmt.Sprintf("/api/v1/domains/%d/recipients/alice", missing)},
		{fmt.Sprintf("/api/v1/domains/%d/activity", dA), fmt.Sprintf("/api/v1/domains/%d/activity", missing)},
		{fmt.Sprintf("/api/v1/messages/%d", f.msgA), fmt.Sprintf("/api/v1/messages/%d", missing)},
		{fmt.Sprintf("/api/v1/quarantine/%d", f.heldA), fmt.Sprintf("/api/v1/quarantine/%d", missing)},
		{fmt.Sprintf("/api/v1/resellers/%d", A), fmt.Sprintf("/api/v1/resellers/%d", missing)},
		{fmt.Sprintf("/api/v1/tokens/%d", f.tokA.ID), fmt.Sprintf("/api/v1/tokens/%d", missing)},
	} {
		c1, o1 := f.do("other", "GET", pair[0], nil)
		c2, o2 := f.do("other", "GET", pair[1], nil)
		if c1 != 404 || c1 != c2 || string(o1) != string(o2) {
			t.Errorf("GET %s: %d %s; %s: %d %s; want the same 404", pair[0], c1, o1, pair[1], c2, o2)
		}
	}
	// A deleted token no longer works.
	tk, err := f.svc.CreateToken(ctx, f.op, admin.Token{Name: "short-lived", ResellerID: f.resB.ID})
	if err != nil {
		t.Fatal(err)
	}
	f.tokens["short"] = tk.Secret
	if code, _ := f.do("short", "GET", "/api/v1/domains", nil); code != 200 {
		t.Fatalf("fresh token: %d", code)
	}
	if code, out := f.do("short", "DELETE", fmt.Sprintf("/api/v1/tokens/%d", tk.ID), nil); code != 204 {
		t.Fatalf("deleting its own token: %d %s", code, out)
	}
	if code, _ := f.do("short", "GET", "/api/v1/domains", nil); code != http.StatusUnauthorized {
		t.Errorf("deleted token: %d, want 401", code)
	}
}

// TestAPIPathsAreNotCleanedIntoAnotherObject: a recipient named "." or
// ".." (stored before the API refused them, or by a tool below it) is a
// path segment the mux cleans away, redirecting with 307, which clients
// follow with the same method: deleting recipient ".." as the CLI sent it
// deleted its domain, and reading it answered the domain. Such a path is
// 404 now, and the escaped segment names the recipient.
func TestAPIPathsAreNotCleanedIntoAnotherObject(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	dA := f.domA.ID
	if _, _, err := store.NewTenants(f.st).AddRecipients(ctx, dA, f.domA.ResellerID, []string{"..", "."}, false, admin.AuditEntry{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	rcpt := func(local string) string { return fmt.Sprintf("/api/v1/domains/%d/recipients/%s", dA, local) }
	for _, tc := range []struct{ method, path string }{
		{"DELETE", rcpt("..")},
		{"GET", rcpt("..")},
		{"DELETE", rcpt(".")},
		{"DELETE", fmt.Sprintf("/api/v1/domains/%d/recipients/x/../..", dA)},
		{"POST", fmt.Sprintf("/api/v1/quarantine/%d/x/../release", f.heldA)},
		{"DELETE", fmt.Sprintf("/api/v1//domains/%d", dA)},
	} {
		if code, out := f.do("own", tc.method, tc.path, nil); code != http.StatusNotFound {
			t.Errorf("%s %s: %d %s, want 404", tc.method, tc.path, code, out)
		}
	}
	if d, err := f.svc.GetDomain(ctx, f.op, dA); err != nil || d.ID != dA {
		t.Fatalf("the domain after deleting its recipient \"..\": %v", err)
	}
	if it, err := f.q.Item(ctx, tracking.Scope{Operator: true}, f.heldA); err != nil || it.State != quarantine.StateHeld {
		t.Fatalf("the held message: %s %v, want still held", it.State, err)
	}
	for _, local := range []string{"%2E%2E", "%2E"} {
		if code, out := f.do("own", "DELETE", rcpt(local), nil); code != http.StatusNoContent {
			t.Errorf("DELETE %s: %d %s, want 204", rcpt(local), code, out)
		}
	}
	if rs, err := f.svc.ListRecipients(ctx, f.op, dA, admin.Filter{}); err != nil || len(rs) != 1 || rs[0].Local != "alice" {
		t.Errorf("recipients left: %+v %v, want alice's alone", rs, err)
	}
}
