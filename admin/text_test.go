package admin_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestServiceRefusesTextTheStoreCannotHold: a NUL or invalid UTF-8 (a
// panel form or a query string carries any byte) in a name, an email or a
// list's search is refused naming the field, and a public logo URL's slug
// finds nothing. PostgreSQL refuses such a parameter (SQLSTATE 22021),
// which the API and the panel answered with 500, the login form with 503
// and /panel/logo/ with a warning in the log, before.
func TestServiceRefusesTextTheStoreCannotHold(t *testing.T) {
	dsn := testenv.PostgresDB(t)
	if dsn == "" {
		t.Skip("no PostgreSQL (run through scripts/test.sh)")
	}
	ctx := context.Background()
	st, err := store.Open(store.Config{Driver: store.Postgres, DSN: dsn, Timeout: 5 * time.Second}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrateQuarantine(ctx); err != nil {
		t.Fatal(err)
	}
	ts := store.NewTenants(st)
	q := quarantine.New(quarantine.DefaultConfig(), st, nil, nil)
	svc := admin.NewService(ts, admin.ServiceOptions{Panel: ts, Quarantine: q})
	op := admin.Operator("test")
	r, err := svc.CreateReseller(ctx, op, tenant.Reseller{Name: "R"})
	if err != nil {
		t.Fatal(err)
	}
	me := admin.Principal{ResellerID: r.ID, Actor: "r"}

	for _, bad := range []string{"\x00", "a\xff", "\xc3"} {
		tests := []struct {
			name, field string
			call        func() error
		}{
			{"reseller list", "name", func() error { _, err := svc.ListResellers(ctx, op, admin.Filter{Name: bad}); return err }},
			{"customer list", "name", func() error { _, err := svc.ListCustomers(ctx, me, admin.Filter{Name: bad}); return err }},
			{"domain list", "name", func() error { _, err := svc.ListDomains(ctx, me, admin.Filter{Name: bad}); return err }},
			{"token list", "name", func() error { _, err := svc.ListTokens(ctx, me, admin.Filter{Name: bad}); return err }},
			{"quarantine search", "q", func() error {
				_, err := svc.ListQuarantine(ctx, me, quarantine.Filter{Search: bad, Limit: 10})
				return err
			}},
			{"reseller name", "name", func() error { _, err := svc.CreateReseller(ctx, op, tenant.Reseller{Name: "R" + bad}); return err }},
			{"customer name", "name", func() error { _, err := svc.CreateCustomer(ctx, me, tenant.Customer{Name: "C" + bad}); return err }},
			{"token name", "name", func() error { _, err := svc.CreateToken(ctx, me, admin.Token{Name: "T" + bad}); return err }},
			{"display name", "display_name", func() error { _, err := svc.UpdateBrand(ctx, me, r.ID, "D"+bad, ""); return err }},
			{"user email", "email", func() error {
				_, err := svc.CreateUser(ctx, me, r.ID, "u"+bad+"@r.example", "correct horse battery")
				return err
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var fe tenant.FieldErrors
				if err := tt.call(); !errors.As(err, &fe) || fe[tt.field] == "" {
					t.Errorf("%q: %v, want a field error on %q", bad, err, tt.field)
				}
			})
		}
		if _, err := svc.AuthenticatePassword(ctx, "u"+bad+"@r.example", "correct horse battery"); !errors.Is(err, admin.ErrUnauthenticated) {
			t.Errorf("login as %q: %v, want ErrUnauthenticated", "u"+bad+"@r.example", err)
		}
		// The public logo URL names a slug: anyone may send any bytes.
		if _, err := svc.LogoBySlug(ctx, "r"+bad); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("logo of slug %q: %v, want ErrNotFound", "r"+bad, err)
		}
	}
}
