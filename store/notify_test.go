package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestBrandOf: a digest goes out under the white label the panel shows,
// the reseller's display name, and its name when it has none.
func TestBrandOf(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := tc.open(t)
			ts := NewTenants(s)
			a := admin.AuditEntry{Actor: "t", Action: "create", Object: "x"}
			for _, r := range []tenant.Reseller{{Name: "acme-hosting", DisplayName: "ACME Mail Shield"}, {Name: "plain-it"}} {
				if _, err := ts.CreateReseller(ctx, &r, a); err != nil {
					t.Fatal(err)
				}
				c := tenant.Customer{ResellerID: r.ID, Name: "c"}
				if _, err := ts.CreateCustomer(ctx, &c, a); err != nil {
					t.Fatal(err)
				}
				want := r.DisplayName
				if want == "" {
					want = r.Name
				}
				if got, err := s.BrandOf(ctx, c.ID); err != nil || got != want {
					t.Errorf("BrandOf(customer of %s) = %q, %v; want %q", r.Name, got, err, want)
				}
			}
			if got, err := s.BrandOf(ctx, 0); err != nil || got != "" {
				t.Errorf("BrandOf(operator's) = %q, %v; want \"\"", got, err)
			}
		})
	}
}

// TestResellerOf: a held message's reseller, whose share of the node's
// open quarantine bytes it takes, is its customer's; the operator's own
// domains (customer 0) and a deleted customer's are reseller 0.
func TestResellerOf(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := tc.open(t)
			ts := NewTenants(s)
			r, c := resellerWithCustomer(t, ts, "acme")
			gone := tenant.Customer{ResellerID: r.ID, Name: "gone"}
			a := admin.AuditEntry{Actor: "t", Action: "x", Object: "x"}
			if _, err := ts.CreateCustomer(ctx, &gone, a); err != nil {
				t.Fatal(err)
			}
			if _, err := ts.DeleteCustomer(ctx, gone.ID, gone.ResellerID, a); err != nil {
				t.Fatal(err)
			}
			for customer, want := range map[int64]int64{c.ID: r.ID, 0: 0, gone.ID: 0} {
				if got, err := s.ResellerOf(ctx, customer); err != nil || got != want {
					t.Errorf("ResellerOf(%d) = %d, %v; want %d", customer, got, err, want)
				}
			}
		})
	}
}

// TestDigestRecords: a digest is recorded once per recipient and period,
// a period lists whom it sent to, a record can be forgotten, and pruning
// forgets only records older than its bound.
func TestDigestRecords(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openNotify(t, tc.open)
			t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			mark := func(rcpt, run string, at time.Time, want bool) {
				t.Helper()
				if first, err := s.MarkDigest(ctx, rcpt, run, at); err != nil || first != want {
					t.Fatalf("MarkDigest(%s, %s) = %v, %v; want %v", rcpt, run, first, err, want)
				}
			}
			mark("a@x.example", "day1", t0, true)
			mark("b@x.example", "day1", t0, true)
			mark("a@x.example", "day1", t0, false)
			mark("a@x.example", "day2", t0.Add(24*time.Hour), true)
			sent := func(run string, want ...string) {
				t.Helper()
				got, err := s.DigestsSent(ctx, run)
				slices.Sort(got)
				if err != nil || !slices.Equal(got, want) {
					t.Fatalf("DigestsSent(%s) = %q, %v; want %q", run, got, err, want)
				}
			}
			sent("day1", "a@x.example", "b@x.example")
			sent("day2", "a@x.example")
			// A digest the smarthost did not take is forgotten, in its
			// period only, and can be recorded again.
			if err := s.UnmarkDigest(ctx, "a@x.example", "day1"); err != nil {
				t.Fatal(err)
			}
			sent("day1", "b@x.example")
			sent("day2", "a@x.example")
			mark("a@x.example", "day1", t0, true)
			if n, err := s.PruneDigests(ctx, t0.Add(time.Hour)); err != nil || n != 2 {
				t.Fatalf("PruneDigests = %d, %v; want 2", n, err)
			}
			sent("day1")
			sent("day2", "a@x.example")
		})
	}
}

// TestDigestOptOuts: on both dialects, an opt-out is a recipient's of one
// domain as one customer holds it: the name's domain re-created (another
// id) or moved to another customer, and another mailbox, are not opted
// out. Recorded twice, it stays one.
func TestDigestOptOuts(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openNotify(t, tc.open)
			at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			for range 2 {
				if err := s.OptOut(ctx, 7, 3, "bob@a.example", at); err != nil {
					t.Fatal(err)
				}
			}
			for _, tt := range []struct {
				domain, customer int64
				rcpt             string
				want             bool
			}{
				{7, 3, "bob@a.example", true},
				{8, 3, "bob@a.example", false},
				{7, 4, "bob@a.example", false},
				{7, 3, "ann@a.example", false},
			} {
				if got, err := s.OptedOut(ctx, tt.domain, tt.customer, tt.rcpt); err != nil || got != tt.want {
					t.Errorf("OptedOut(%d, %d, %s) = %v, %v; want %v", tt.domain, tt.customer, tt.rcpt, got, err, tt.want)
				}
			}
		})
	}
}

// openNotify opens a store of one dialect with the notify schema.
func openNotify(t *testing.T, open func(testing.TB) *Store) *Store {
	t.Helper()
	s := open(t)
	if err := s.MigrateNotify(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}
