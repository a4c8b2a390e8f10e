package web

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
)

// A reseller's writes are rate limited on a node; its reads, other
// resellers and the operator are not.
func TestAPIChangesAreRateLimited(t *testing.T) {
	var (
		mu    sync.Mutex
		clock = time.Now()
	)
	f := newAPIFixture(t, func(o *admin.ServiceOptions) {
		o.Ownership.Now = func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return clock
		}
	})
	// Writes that find nothing to change spend a change all the same.
	write := func(who string) int {
		code, _ := f.do(who, "DELETE", "/api/v1/domains/999999", nil)
		return code
	}
	for i := range admin.ChangeBurst {
		if code := write("own"); code != http.StatusNotFound {
			t.Fatalf("write %d: %d, want 404", i+1, code)
		}
	}
	if code, retry := f.retryAfter("own", "DELETE", "/api/v1/domains/999999"); code != http.StatusTooManyRequests || retry == "" {
		t.Fatalf("write past the burst: %d, Retry-After %q; want 429 with Retry-After", code, retry)
	}
	if code, _ := f.do("own", "GET", "/api/v1/customers", nil); code != http.StatusOK {
		t.Errorf("read after the burst: %d, want 200", code)
	}
	for _, who := range []string{"other", "operator"} {
		if code := write(who); code != http.StatusNotFound {
			t.Errorf("%s writes after own's burst: %d, want 404", who, code)
		}
	}
	mu.Lock()
	clock = clock.Add(admin.ChangeInterval)
	mu.Unlock()
	if code := write("own"); code != http.StatusNotFound {
		t.Errorf("write one interval later: %d, want 404", code)
	}
	if code := write("own"); code != http.StatusTooManyRequests {
		t.Errorf("second write one interval later: %d, want 429", code)
	}
}
