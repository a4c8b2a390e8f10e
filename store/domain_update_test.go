package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestDomainUpdatesLoseNothing: a domain is written only on the version it
// was read at, so concurrent read-modify-writes (releases that each put a
// sender on the allow list) all land, on both dialects.
func TestDomainUpdatesLoseNothing(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ts := NewTenants(tc.open(t))
			svc := admin.NewService(ts, admin.ServiceOptions{})
			op := admin.Operator("test")
			r, err := svc.CreateReseller(ctx, op, tenant.Reseller{Name: "r"})
			if err != nil {
				t.Fatal(err)
			}
			c, err := svc.CreateCustomer(ctx, op, tenant.Customer{ResellerID: r.ID, Name: "c"})
			if err != nil {
				t.Fatal(err)
			}
			d, err := svc.CreateDomain(ctx, op, tenant.DomainRecord{CustomerID: c.ID, Name: "example.org", Route: "192.0.2.1:25"})
			if err != nil {
				t.Fatal(err)
			}

			first, second := d, d
			first.Route = "192.0.2.2:25"
			if _, err := ts.UpdateDomain(ctx, &first, admin.AuditEntry{Actor: "a", Action: "update", Object: "x"}); err != nil {
				t.Fatal(err)
			}
			second.Route = "192.0.2.3:25"
			if _, err := ts.UpdateDomain(ctx, &second, admin.AuditEntry{Actor: "b", Action: "update", Object: "x"}); !errors.Is(err, tenant.ErrStale) {
				t.Fatalf("write on a version read before another write: %v, want ErrStale", err)
			}
			if got, err := ts.GetDomain(ctx, d.ID); err != nil || got.Route != first.Route || !got.Updated.Equal(first.Updated) {
				t.Fatalf("after the stale write: route %q updated %v (%v); want %q, %v", got.Route, got.Updated, err, first.Route, first.Updated)
			}

			// A writer is refused only when another committed between its
			// read and its write, so with no more writers than the
			// service's tries (8) every one of them gets through.
			const writers = 8
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for i := range writers {
				wg.Go(func() {
					sender := fmt.Sprintf("sender%d@news.example", i)
					_, err := svc.UpdateDomain(ctx, op, d.ID, func(d *tenant.DomainRecord) {
						d.Policy.SenderAllow = append(slices.Clone(d.Policy.SenderAllow), sender)
					})
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("UpdateDomain: %v", err)
				}
			}
			got, err := ts.GetDomain(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Policy.SenderAllow) != writers {
				t.Errorf("allow list after %d concurrent additions: %d entries %v", writers, len(got.Policy.SenderAllow), got.Policy.SenderAllow)
			}
		})
	}
}
