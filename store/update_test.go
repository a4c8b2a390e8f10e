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

// TestUpdatesLoseNothing: resellers, customers and domains are written only
// on the version they were read at, so concurrent read-modify-writes
// (releases that each put a sender on a domain's allow list, a brand saved
// while the operator edits the reseller) all land, on both dialects.
func TestUpdatesLoseNothing(t *testing.T) {
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
			audit := admin.AuditEntry{Actor: "t", Action: "update", Object: "x"}

			// A write on a version read before another write is refused.
			first, second := d, d
			first.Route, second.Route = "192.0.2.2:25", "192.0.2.3:25"
			if _, err := ts.UpdateDomain(ctx, &first, first.ResellerID, audit); err != nil {
				t.Fatal(err)
			}
			if _, err := ts.UpdateDomain(ctx, &second, second.ResellerID, audit); !errors.Is(err, tenant.ErrStale) {
				t.Fatalf("domain written on a stale version: %v, want ErrStale", err)
			}
			if got, err := ts.GetDomain(ctx, d.ID); err != nil || got.Route != first.Route || !got.Updated.Equal(first.Updated) {
				t.Fatalf("after the stale write: route %q updated %v (%v); want %q, %v", got.Route, got.Updated, err, first.Route, first.Updated)
			}
			staleCustomer := c
			if _, err := ts.UpdateCustomer(ctx, &c, audit); err != nil {
				t.Fatal(err)
			}
			if _, err := ts.UpdateCustomer(ctx, &staleCustomer, audit); !errors.Is(err, tenant.ErrStale) {
				t.Fatalf("customer written on a stale version: %v, want ErrStale", err)
			}
			gone := tenant.Customer{ID: c.ID + 100, ResellerID: r.ID, Name: "gone"}
			if _, err := ts.UpdateCustomer(ctx, &gone, audit); !errors.Is(err, tenant.ErrNotFound) {
				t.Fatalf("customer that does not exist: %v, want ErrNotFound", err)
			}

			// Eight writers per object, as many as the service's tries: a
			// writer is refused only when another committed between its
			// read and its write, so every one of them gets through.
			const writers = 8
			appendSender := func(p *tenant.Policy, i int) {
				p.SenderAllow = append(slices.Clone(p.SenderAllow), fmt.Sprintf("sender%d@news.example", i))
			}
			for _, obj := range []struct {
				name   string
				want   int // entries on the list afterwards
				update func(i int) error
				list   func() ([]string, error)
			}{
				{"domain", writers, func(i int) error {
					_, err := svc.UpdateDomain(ctx, op, d.ID, func(d *tenant.DomainRecord) { appendSender(&d.Policy, i) })
					return err
				}, func() ([]string, error) { got, err := ts.GetDomain(ctx, d.ID); return got.Policy.SenderAllow, err }},
				{"customer", writers, func(i int) error {
					_, err := svc.UpdateCustomer(ctx, op, c.ID, func(c *tenant.Customer) { appendSender(&c.Policy, i) })
					return err
				}, func() ([]string, error) { got, err := ts.GetCustomer(ctx, c.ID); return got.Policy.SenderAllow, err }},
				{"reseller, beside brand edits", writers / 2, func(i int) error {
					if i%2 == 1 {
						_, err := svc.UpdateBrand(ctx, admin.Principal{ResellerID: r.ID, Actor: "reseller"}, r.ID, fmt.Sprint("Brand ", i), "")
						return err
					}
					_, err := svc.UpdateReseller(ctx, op, r.ID, func(r *tenant.Reseller) { appendSender(&r.Policy, i) })
					return err
				}, func() ([]string, error) { got, err := ts.GetReseller(ctx, r.ID); return got.Policy.SenderAllow, err }},
			} {
				var wg sync.WaitGroup
				errs := make(chan error, writers)
				for i := range writers {
					wg.Go(func() { errs <- obj.update(i) })
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Errorf("%s: update: %v", obj.name, err)
					}
				}
				if got, err := obj.list(); err != nil || len(got) != obj.want {
					t.Errorf("%s: allow list after concurrent updates: %v (%v), want %d entries", obj.name, got, err, obj.want)
				}
			}
		})
	}
}
