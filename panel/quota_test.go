package panel

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestPanelQuota: a reseller's customers page shows its usage against its
// quota (the operator's does not), and a domain past the quota re-renders
// the form with the refusal.
func TestPanelQuota(t *testing.T) {
	f := newFixture(t)
	pr, customerID, _ := f.resellerWithDomain(t, tenant.Reseller{Name: "alpha", Quota: tenant.Quota{Domains: 1, Recipients: 2}},
		tenant.DomainRecord{Name: "one.example", Route: "192.0.2.1:25"})

	pages := []struct {
		who  admin.Principal
		want string // "" wants no usage line
	}{
		{pr, "Your quota: 1 of 1 domains (pending ones count), 0 of 2 recipients."},
		{f.op, ""},
	}
	for _, p := range pages {
		code, body := f.get(t, p.who, "/panel/customers")
		if code != http.StatusOK || strings.Contains(body, `id="usage"`) != (p.want != "") || !strings.Contains(body, p.want) {
			t.Fatalf("customers page as %s: %d, want usage %q in\n%s", p.who.Actor, code, p.want, body)
		}
	}

	form := url.Values{"csrf": {"tok"}, "name": {"two.example"}, "route": {"192.0.2.1:25"}}
	req := httptest.NewRequest("POST", "/panel/customers/"+itoa(customerID)+"/domains", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	code, body := f.serve(t, pr, req)
	if code != http.StatusBadRequest || !strings.Contains(body, "quota exceeded for domains: 1 of 1 in use") {
		t.Fatalf("domain past the quota: %d, want 400 with the refusal in\n%s", code, body)
	}
}
