package store

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

func (s *racedStore) CreateDomain(ctx context.Context, d *tenant.DomainRecord, a admin.AuditEntry) (uint64, error) {
	s.raced()
	return s.Store.CreateDomain(ctx, d, a)
}

func (s *racedStore) CreateCustomer(ctx context.Context, c *tenant.Customer, a admin.AuditEntry) (uint64, error) {
	s.raced()
	return s.Store.CreateCustomer(ctx, c, a)
}

func (s *racedStore) UpdateCustomer(ctx context.Context, c *tenant.Customer, a admin.AuditEntry) (uint64, error) {
	s.raced()
	return s.Store.UpdateCustomer(ctx, c, a)
}

func (s *racedStore) CreateToken(ctx context.Context, tk *admin.Token, a admin.AuditEntry) error {
	s.raced()
	return s.Store.CreateToken(ctx, tk, a)
}

// racedPanel is racedStore's panel store, raced by the same writes.
type racedPanel struct {
	admin.PanelStore
	st *racedStore
}

func (p racedPanel) CreateUser(ctx context.Context, u *admin.User, a admin.AuditEntry) error {
	p.st.raced()
	return p.PanelStore.CreateUser(ctx, u, a)
}

func (p racedPanel) PutLogo(ctx context.Context, resellerID int64, l admin.Logo, a admin.AuditEntry) error {
	p.st.raced()
	return p.PanelStore.PutLogo(ctx, resellerID, l, a)
}

// png is the smallest image SetLogo takes.
var png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

// TestWritesUnderAParentJustGone: a create, a move or a logo whose parent
// (a customer, a reseller) the service found, then deleted (or given to
// another reseller) on another node just before the write, is answered
// as the same request a moment later is, not as a conflict with
// dependent objects, and writes nothing.
func TestWritesUnderAParentJustGone(t *testing.T) {
	ctx := context.Background()
	noCustomer := tenant.FieldErrors{"customer_id": "no such customer"}
	noReseller := tenant.FieldErrors{"reseller_id": "no such reseller"}
	deleteReseller3 := func(f *raceFixture, r3 int64, t *testing.T) {
		if _, err := f.node[1].DeleteReseller(ctx, r3, quotaAudit); err != nil {
			t.Fatal(err)
		}
	}
	newDomain := tenant.DomainRecord{Name: "new.example", Route: "192.0.2.1:25", TLS: "opportunistic"}
	for _, dia := range raceDialects {
		for _, tc := range []struct {
			name string
			// race runs on node 1; r3 is a reseller of nothing but the
			// token whose id it returns.
			race  func(f *raceFixture, r3 int64, t *testing.T)
			write func(f *raceFixture, svc *admin.Service, r3, token int64) error
			want  error
		}{{
			name: "domain under a deleted customer",
			race: func(f *raceFixture, _ int64, t *testing.T) {
				if _, err := f.node[1].DeleteCustomer(ctx, f.e1.ID, f.r1.ID, quotaAudit); err != nil {
					t.Fatal(err)
				}
			},
			write: func(f *raceFixture, svc *admin.Service, _, _ int64) error {
				d := newDomain
				d.CustomerID = f.e1.ID
				_, err := svc.CreateDomain(ctx, admin.Principal{ResellerID: f.r1.ID, Actor: "reseller 1"}, d)
				return err
			},
			want: noCustomer,
		}, {
			name: "domain under a customer given to another reseller",
			race: func(f *raceFixture, _ int64, t *testing.T) { f.moveCustomer(t, f.e1.ID) },
			write: func(f *raceFixture, svc *admin.Service, _, _ int64) error {
				d := newDomain
				d.CustomerID = f.e1.ID
				_, err := svc.CreateDomain(ctx, admin.Principal{ResellerID: f.r1.ID, Actor: "reseller 1"}, d)
				return err
			},
			want: noCustomer,
		}, {
			name: "domain moved to a deleted customer",
			race: func(f *raceFixture, _ int64, t *testing.T) {
				if _, err := f.node[1].DeleteCustomer(ctx, f.e1.ID, f.r1.ID, quotaAudit); err != nil {
					t.Fatal(err)
				}
			},
			write: func(f *raceFixture, svc *admin.Service, _, _ int64) error {
				_, err := svc.UpdateDomain(ctx, admin.Principal{ResellerID: f.r1.ID, Actor: "reseller 1"}, f.d.ID,
					func(d *tenant.DomainRecord) { d.CustomerID = f.e1.ID })
				return err
			},
			want: noCustomer,
		}, {
			name: "customer under a deleted reseller",
			race: deleteReseller3,
			write: func(f *raceFixture, svc *admin.Service, r3, _ int64) error {
				_, err := svc.CreateCustomer(ctx, admin.Operator("operator"), tenant.Customer{ResellerID: r3, Name: "c"})
				return err
			},
			want: noReseller,
		}, {
			name: "customer by a deleted reseller's own token",
			race: deleteReseller3,
			write: func(f *raceFixture, svc *admin.Service, r3, token int64) error {
				_, err := svc.CreateCustomer(ctx, admin.Principal{ResellerID: r3, TokenID: token, Actor: "token"}, tenant.Customer{Name: "c"})
				return err
			},
			want: admin.ErrUnauthenticated,
		}, {
			name: "customer moved to a deleted reseller",
			race: deleteReseller3,
			write: func(f *raceFixture, svc *admin.Service, r3, _ int64) error {
				_, err := svc.UpdateCustomer(ctx, admin.Operator("operator"), f.e1.ID, func(c *tenant.Customer) { c.ResellerID = r3 })
				return err
			},
			want: noReseller,
		}, {
			name: "operator's token for a deleted reseller",
			race: deleteReseller3,
			write: func(f *raceFixture, svc *admin.Service, r3, _ int64) error {
				_, err := svc.CreateToken(ctx, admin.Operator("operator"), admin.Token{ResellerID: r3, Name: "late"})
				return err
			},
			want: noReseller,
		}, {
			// Its own token went with the reseller: a moment later the
			// request is not authenticated.
			name: "token of a deleted reseller's own",
			race: deleteReseller3,
			write: func(f *raceFixture, svc *admin.Service, r3, token int64) error {
				_, err := svc.CreateToken(ctx, admin.Principal{ResellerID: r3, TokenID: token, Actor: "token"}, admin.Token{Name: "late"})
				return err
			},
			want: admin.ErrUnauthenticated,
		}, {
			name: "operator's panel user for a deleted reseller",
			race: deleteReseller3,
			write: func(f *raceFixture, svc *admin.Service, r3, _ int64) error {
				_, err := svc.CreateUser(ctx, admin.Operator("operator"), r3, "late@example.com", "correct horse battery staple")
				return err
			},
			want: noReseller,
		}, {
			name: "panel user by a deleted reseller's own token",
			race: deleteReseller3,
			write: func(f *raceFixture, svc *admin.Service, r3, token int64) error {
				_, err := svc.CreateUser(ctx, admin.Principal{ResellerID: r3, TokenID: token, Actor: "token"}, 0,
					"late@example.com", "correct horse battery staple")
				return err
			},
			want: admin.ErrUnauthenticated,
		}, {
			name: "logo of a deleted reseller's own login",
			race: deleteReseller3,
			write: func(f *raceFixture, svc *admin.Service, r3, token int64) error {
				return svc.SetLogo(ctx, admin.Principal{ResellerID: r3, TokenID: token, Actor: "token"}, r3, png)
			},
			want: admin.ErrUnauthenticated,
		}, {
			name: "operator's logo of a deleted reseller",
			race: deleteReseller3,
			write: func(f *raceFixture, svc *admin.Service, r3, _ int64) error {
				return svc.SetLogo(ctx, admin.Operator("operator"), r3, png)
			},
			want: tenant.ErrNotFound,
		}} {
			t.Run(dia.name+"/"+tc.name, func(t *testing.T) {
				f := newRaceFixture(t, dia.open)
				r3 := tenant.Reseller{Name: "r3"}
				if _, err := f.node[1].CreateReseller(ctx, &r3, quotaAudit); err != nil {
					t.Fatal(err)
				}
				own := admin.Token{ResellerID: r3.ID, Name: "own", Hash: "own"}
				if err := f.node[1].CreateToken(ctx, &own, quotaAudit); err != nil {
					t.Fatal(err)
				}
				before, err := f.node[1].Load(ctx)
				if err != nil {
					t.Fatal(err)
				}
				st := &racedStore{Store: f.node[0], race: func() { tc.race(f, r3.ID, t) }}
				svc := admin.NewService(st, admin.ServiceOptions{Panel: racedPanel{PanelStore: f.node[0], st: st}})
				err = tc.write(f, svc, r3.ID, own.ID)
				var fe tenant.FieldErrors
				if want, ok := tc.want.(tenant.FieldErrors); ok {
					if !errors.As(err, &fe) || !reflect.DeepEqual(fe, want) {
						t.Fatalf("write: %v, want %v", err, want)
					}
				} else if !errors.Is(err, tc.want) {
					t.Fatalf("write: %v, want %v", err, tc.want)
				}
				after, err := f.node[1].Load(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(after.Domains) != len(before.Domains) || len(after.Customers) > len(before.Customers) {
					t.Errorf("created something: %d domains, %d customers; %d and %d before",
						len(after.Domains), len(after.Customers), len(before.Domains), len(before.Customers))
				}
				if toks, err := f.node[1].ListTokens(ctx, admin.Filter{Limit: 10}); err != nil || len(toks) > 1 {
					t.Errorf("tokens %+v, %v; want at most r3's own", toks, err)
				}
			})
		}
	}
}
