package store

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestDomainOwnershipMigration: on both dialects, domains that existed
// before migration 3 stay active (they already received mail), and status
// and token round-trip through create and update.
func TestDomainOwnershipMigration(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := tc.open(t)
			if err := st.Migrate(ctx, tenantsComponent, tenantMigrations[:2]); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				`INSERT INTO resellers (name, policy, created_us, updated_us, slug) VALUES ('r', '{}', 0, 0, 'r')`,
				`INSERT INTO customers (reseller_id, name, policy, created_us, updated_us, map_key) VALUES (1, 'c', '{}', 0, 0, 'k')`,
				`INSERT INTO domains (customer_id, name, route, tls, policy, created_us, updated_us) VALUES (1, 'old.example', '192.0.2.1:25', 'opportunistic', '{}', 0, 0)`,
			} {
				if _, err := st.DB.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			ts := NewTenants(st)
			old, err := ts.GetDomain(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if old.Status != tenant.StatusActive || old.VerifyToken != "" {
				t.Fatalf("pre-existing domain: status %q token %q, want active without token", old.Status, old.VerifyToken)
			}
			d := tenant.DomainRecord{CustomerID: 1, Name: "new.example", Route: "192.0.2.1:25", TLS: "opportunistic",
				Status: tenant.StatusPending, VerifyToken: "abc"}
			if _, err := ts.CreateDomain(ctx, &d, admin.AuditEntry{Actor: "t", Action: "create", Object: "x"}); err != nil {
				t.Fatal(err)
			}
			got, err := ts.GetDomain(ctx, d.ID)
			if err != nil || got.Status != tenant.StatusPending || got.VerifyToken != "abc" {
				t.Fatalf("created: %+v, %v", got, err)
			}
			got.Status = tenant.StatusActive
			if _, err := ts.UpdateDomain(ctx, &got, got.ResellerID, admin.AuditEntry{Actor: "t", Action: "update", Object: "x"}); err != nil {
				t.Fatal(err)
			}
			if got, _ = ts.GetDomain(ctx, d.ID); got.Status != tenant.StatusActive {
				t.Fatalf("updated: status %q", got.Status)
			}
		})
	}
}

// TestPendingSinceMigration: a domain pending before claims could lapse
// dates its claim from its last update; an active one has none.
func TestPendingSinceMigration(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := tc.open(t)
			if err := st.Migrate(ctx, tenantsComponent, tenantMigrations[:4]); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				`INSERT INTO resellers (name, policy, created_us, updated_us, slug) VALUES ('r', '{}', 0, 0, 'r')`,
				`INSERT INTO customers (reseller_id, name, policy, created_us, updated_us, map_key) VALUES (1, 'c', '{}', 0, 0, 'k')`,
				`INSERT INTO domains (customer_id, name, route, tls, policy, created_us, updated_us, status, verify_token)
					VALUES (1, 'waiting.example', '192.0.2.1:25', 'opportunistic', '{}', 5, 1764583200000000, 'pending', 't')`,
				`INSERT INTO domains (customer_id, name, route, tls, policy, created_us, updated_us, status)
					VALUES (1, 'proven.example', '192.0.2.1:25', 'opportunistic', '{}', 5, 1764583200000000, 'active')`,
			} {
				if _, err := st.DB.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			ts := NewTenants(st)
			for name, want := range map[string]time.Time{"waiting.example": time.UnixMicro(1764583200000000).UTC(), "proven.example": {}} {
				d, err := ts.DomainByName(ctx, name)
				if err != nil || !d.PendingSince.Equal(want) {
					t.Errorf("%s: pending since %v, %v; want %v", name, d.PendingSince, err, want)
				}
			}
		})
	}
}

// TestTakeoverMigration: names pending at migration 6 whose audit trail
// shows a lapse are taken over (TXT proof only); active names and names
// that only end alike are not.
func TestTakeoverMigration(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := tc.open(t)
			if err := st.Migrate(ctx, tenantsComponent, tenantMigrations[:5]); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				`INSERT INTO resellers (name, policy, created_us, updated_us, slug) VALUES ('r', '{}', 0, 0, 'r')`,
				`INSERT INTO customers (reseller_id, name, policy, created_us, updated_us, map_key) VALUES (1, 'c', '{}', 0, 0, 'k')`,
				`INSERT INTO domains (customer_id, name, route, tls, policy, created_us, updated_us, status, verify_token, pending_since_us)
					VALUES (1, 'wanted.example', '192.0.2.1:25', 'opportunistic', '{}', 5, 5, 'pending', 't', 5),
					(1, 'xwanted.example', '192.0.2.1:25', 'opportunistic', '{}', 5, 5, 'pending', 't', 5),
					(1, 'proven.example', '192.0.2.1:25', 'opportunistic', '{}', 5, 5, 'active', '', 0),
					(1, 'fresh.example', '192.0.2.1:25', 'opportunistic', '{}', 5, 5, 'pending', 't', 5)`,
				`INSERT INTO tenant_audit (at_us, actor, reseller_id, action, object, detail)
					VALUES (1, 'ownership', 1, 'lapse', 'domain 7 wanted.example', ''),
					(1, 'ownership', 1, 'lapse', 'domain 8 proven.example', ''),
					(1, 'r', 1, 'delete', 'domain 9 fresh.example', '')`,
			} {
				if _, err := st.DB.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			ts := NewTenants(st)
			if _, err := ts.db(ctx); err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct {
				name string
				want bool
			}{
				{"wanted.example", true},
				{"xwanted.example", false},
				{"proven.example", false},
				{"fresh.example", false},
			} {
				if got, err := takenOver(ctx, ts.st.DB, tt.name); err != nil || got != tt.want {
					t.Errorf("%s: TakenOver = %v, %v; want %v", tt.name, got, err, tt.want)
				}
			}
		})
	}
}

// TestOthersActiveBelow: on both dialects, a name has another reseller's
// active domain below it only when that domain's name ends in "." + name:
// the reseller's own domains, pending claims, the name itself and names
// that merely end alike do not count, and '_' or '%' in the name match
// only themselves.
func TestOthersActiveBelow(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ts := NewTenants(tc.open(t))
			a := admin.AuditEntry{Actor: "t", Action: "create", Object: "x"}
			var custs [2]tenant.Customer
			for i := range custs {
				r := tenant.Reseller{Name: "r" + strconv.Itoa(i)}
				if _, err := ts.CreateReseller(ctx, &r, a); err != nil {
					t.Fatal(err)
				}
				custs[i] = tenant.Customer{ResellerID: r.ID, Name: "c"}
				if _, err := ts.CreateCustomer(ctx, &custs[i], a); err != nil {
					t.Fatal(err)
				}
			}
			mine, others := custs[0], custs[1]
			for _, d := range []tenant.DomainRecord{
				{CustomerID: others.ID, Name: "eu.corp.example", Status: tenant.StatusActive},
				{CustomerID: others.ID, Name: "deep.eu.deep.example", Status: tenant.StatusActive},
				{CustomerID: others.ID, Name: "eu.claim.example", Status: tenant.StatusPending, VerifyToken: "t", PendingSince: time.Now()},
				{CustomerID: others.ID, Name: "solo.example", Status: tenant.StatusActive},
				{CustomerID: others.ID, Name: "eu.bzx.example", Status: tenant.StatusActive},
				{CustomerID: mine.ID, Name: "eu.own.example", Status: tenant.StatusActive},
			} {
				d.Route, d.TLS = "192.0.2.1:25", "none"
				if _, err := ts.CreateDomain(ctx, &d, a); err != nil {
					t.Fatal(err)
				}
			}
			for _, tt := range []struct {
				name string
				want bool
			}{
				{"corp.example", true},
				{"deep.example", true},
				{"eu.deep.example", true},
				{"claim.example", false},
				{"solo.example", false},
				{"own.example", false},
				{"orp.example", false},
				{"b_x.example", false},
				{"%.example", false},
				{"a-name-longer-than-any-domain-held.example", false},
			} {
				if got, err := othersActiveBelow(ctx, ts.st.DB, tt.name, mine.ResellerID); err != nil || got != tt.want {
					t.Errorf("OthersActiveBelow(%s) = %v, %v; want %v", tt.name, got, err, tt.want)
				}
			}
			if got, err := othersActiveBelow(ctx, ts.st.DB, "corp.example", others.ResellerID); err != nil || got {
				t.Errorf("OthersActiveBelow(corp.example) for its own reseller = %v, %v; want false", got, err)
			}
		})
	}
}
