package panel

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

// A reseller's forms spend the changes its API calls do: past them a form
// answers 429, while pages and the logout still work.
func TestFormsSpendTheResellersChanges(t *testing.T) {
	frozen := time.Now()
	f := newFixture(t, func(_ *store.Store, so *admin.ServiceOptions) {
		so.Ownership.Now = func() time.Time { return frozen }
	})
	pr, _, _ := f.resellerWithDomain(t, tenant.Reseller{Name: "Alpha"}, tenant.DomainRecord{Name: "alpha.example", Route: "192.0.2.1:25"})
	for range admin.ChangeBurst {
		if err := f.svc.AllowChange(pr); err != nil {
			t.Fatal(err)
		}
	}
	if code, body := f.post(t, pr, "/panel/customers"); code != http.StatusTooManyRequests || !strings.Contains(body, "too many changes") {
		t.Errorf("form past the changes: %d, want 429 saying why\n%s", code, body)
	}
	if code, _ := f.get(t, pr, "/panel/customers"); code != http.StatusOK {
		t.Errorf("page past the changes: %d, want 200", code)
	}
	if code, _ := f.post(t, pr, "/panel/logout"); code == http.StatusTooManyRequests {
		t.Errorf("logout past the changes: 429")
	}
}
