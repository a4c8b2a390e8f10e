package store

import (
	"context"
	"errors"
	"testing"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// racedStore is the admin service's store with race run once, just
// before the first of its writes: what another node commits between the
// service's check and its write.
type racedStore struct {
	admin.Store
	race func()
}

func (s *racedStore) raced() {
	if s.race != nil {
		s.race()
		s.race = nil
	}
}

func (s *racedStore) UpdateDomain(ctx context.Context, d *tenant.DomainRecord, owner int64, a admin.AuditEntry) (uint64, error) {
	s.raced()
	return s.Store.UpdateDomain(ctx, d, owner, a)
}

func (s *racedStore) DeleteDomain(ctx context.Context, id, owner int64, a admin.AuditEntry) (uint64, error) {
	s.raced()
	return s.Store.DeleteDomain(ctx, id, owner, a)
}

func (s *racedStore) AddRecipients(ctx context.Context, domainID, owner int64, locals []string, replace bool, a admin.AuditEntry) (int, uint64, error) {
	s.raced()
	return s.Store.AddRecipients(ctx, domainID, owner, locals, replace, a)
}

func (s *racedStore) DeleteRecipient(ctx context.Context, domainID, owner int64, local string, a admin.AuditEntry) (uint64, error) {
	s.raced()
	return s.Store.DeleteRecipient(ctx, domainID, owner, local, a)
}

func (s *racedStore) DeleteCustomer(ctx context.Context, id, owner int64, a admin.AuditEntry) (uint64, error) {
	s.raced()
	return s.Store.DeleteCustomer(ctx, id, owner, a)
}

// raceFixture is two handles on one store (two nodes on PostgreSQL) with
// two resellers: r1's customer c1 holds domain d (recipient "a"), e1 is
// r1's customer without domains, c2 is r2's customer.
type raceFixture struct {
	node   [2]*Tenants
	r1, r2 tenant.Reseller
	c1, e1 tenant.Customer
	c2     tenant.Customer
	d      tenant.DomainRecord
}

// raceDialects open two handles on one fresh store of each dialect.
var raceDialects = []struct {
	name string
	open func(t *testing.T) [2]*Tenants
}{
	{"sqlite", func(t *testing.T) [2]*Tenants {
		st := openSQLite(t)
		return [2]*Tenants{NewTenants(st), NewTenants(st)}
	}},
	{"postgres", twoPostgresNodes},
}

func newRaceFixture(t *testing.T, open func(t *testing.T) [2]*Tenants) *raceFixture {
	t.Helper()
	ctx := context.Background()
	f := &raceFixture{node: open(t)}
	ts := f.node[1]
	for _, r := range []*tenant.Reseller{&f.r1, &f.r2} {
		r.Name = "r"
		if _, err := ts.CreateReseller(ctx, r, quotaAudit); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		c *tenant.Customer
		r int64
	}{{&f.c1, f.r1.ID}, {&f.e1, f.r1.ID}, {&f.c2, f.r2.ID}} {
		c.c.ResellerID, c.c.Name = c.r, "c"
		if _, err := ts.CreateCustomer(ctx, c.c, quotaAudit); err != nil {
			t.Fatal(err)
		}
	}
	f.d = tenant.DomainRecord{CustomerID: f.c1.ID, Name: "held.example", Route: "192.0.2.1:25", TLS: "opportunistic", Status: tenant.StatusActive}
	if _, err := ts.CreateDomain(ctx, &f.d, quotaAudit); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.AddRecipients(ctx, f.d.ID, f.r1.ID, []string{"a"}, false, quotaAudit); err != nil {
		t.Fatal(err)
	}
	return f
}

// moveDomain is the operator giving d to r2's customer.
func (f *raceFixture) moveDomain(t *testing.T) {
	ctx := context.Background()
	d, err := f.node[1].GetDomain(ctx, f.d.ID)
	if err != nil {
		t.Fatal(err)
	}
	d.CustomerID, d.ResellerID = f.c2.ID, f.r2.ID
	if _, err := f.node[1].UpdateDomain(ctx, &d, f.r1.ID, quotaAudit); err != nil {
		t.Fatal(err)
	}
}

// moveCustomer is the operator giving customer id to r2.
func (f *raceFixture) moveCustomer(t *testing.T, id int64) {
	ctx := context.Background()
	c, err := f.node[1].GetCustomer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	c.ResellerID = f.r2.ID
	if _, err := f.node[1].UpdateCustomer(ctx, &c, quotaAudit); err != nil {
		t.Fatal(err)
	}
}

// recipients are domain d's recipients as stored.
func (f *raceFixture) recipients(t *testing.T) []string {
	t.Helper()
	rs, err := f.node[1].ListRecipients(context.Background(), admin.Filter{DomainID: f.d.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var locals []string
	for _, r := range rs {
		locals = append(locals, r.Local)
	}
	return locals
}

// TestWritesStayWithTheOwnerChecked: a reseller's write of one of its
// objects, checked by the service as its own, finds the object given to
// another reseller (by the operator, on another node) just before the
// write. The write is refused as not found, as for any object the caller
// cannot see, and the other reseller's object is left as it was.
func TestWritesStayWithTheOwnerChecked(t *testing.T) {
	ctx := context.Background()
	for _, dia := range raceDialects {
		for _, tc := range []struct {
			name  string
			race  func(f *raceFixture, t *testing.T)
			write func(f *raceFixture, svc *admin.Service, p admin.Principal) error
			kept  func(f *raceFixture, t *testing.T)
		}{{
			name: "delete domain",
			race: (*raceFixture).moveDomain,
			write: func(f *raceFixture, svc *admin.Service, p admin.Principal) error {
				return svc.DeleteDomain(ctx, p, f.d.ID)
			},
			kept: func(f *raceFixture, t *testing.T) {
				if _, err := f.node[1].GetDomain(ctx, f.d.ID); err != nil {
					t.Errorf("r2's domain: %v", err)
				}
			},
		}, {
			name: "import recipients",
			race: (*raceFixture).moveDomain,
			write: func(f *raceFixture, svc *admin.Service, p admin.Principal) error {
				_, err := svc.AddRecipients(ctx, p, f.d.ID, []string{"x"}, false)
				return err
			},
			kept: (*raceFixture).keptRecipientA,
		}, {
			name: "replace recipients",
			race: (*raceFixture).moveDomain,
			write: func(f *raceFixture, svc *admin.Service, p admin.Principal) error {
				_, err := svc.AddRecipients(ctx, p, f.d.ID, nil, true)
				return err
			},
			kept: (*raceFixture).keptRecipientA,
		}, {
			name: "delete recipient",
			race: (*raceFixture).moveDomain,
			write: func(f *raceFixture, svc *admin.Service, p admin.Principal) error {
				return svc.DeleteRecipient(ctx, p, f.d.ID, "a")
			},
			kept: (*raceFixture).keptRecipientA,
		}, {
			// The domain's own row is not written by its customer's move:
			// the version it was read at still matches.
			name: "update domain of a moved customer",
			race: func(f *raceFixture, t *testing.T) { f.moveCustomer(t, f.c1.ID) },
			write: func(f *raceFixture, svc *admin.Service, p admin.Principal) error {
				_, err := svc.UpdateDomain(ctx, p, f.d.ID, func(d *tenant.DomainRecord) { d.Route = "192.0.2.66:25" })
				return err
			},
			kept: func(f *raceFixture, t *testing.T) {
				if d, err := f.node[1].GetDomain(ctx, f.d.ID); err != nil || d.Route != f.d.Route {
					t.Errorf("r2's domain: route %q, %v; want %q", d.Route, err, f.d.Route)
				}
			},
		}, {
			name: "delete customer",
			race: func(f *raceFixture, t *testing.T) { f.moveCustomer(t, f.e1.ID) },
			write: func(f *raceFixture, svc *admin.Service, p admin.Principal) error {
				return svc.DeleteCustomer(ctx, p, f.e1.ID)
			},
			kept: func(f *raceFixture, t *testing.T) {
				if c, err := f.node[1].GetCustomer(ctx, f.e1.ID); err != nil || c.ResellerID != f.r2.ID {
					t.Errorf("r2's customer: %+v, %v", c, err)
				}
			},
		}} {
			t.Run(dia.name+"/"+tc.name, func(t *testing.T) {
				f := newRaceFixture(t, dia.open)
				st := &racedStore{Store: f.node[0], race: func() { tc.race(f, t) }}
				svc := admin.NewService(st, admin.ServiceOptions{})
				err := tc.write(f, svc, admin.Principal{ResellerID: f.r1.ID, Actor: "reseller 1"})
				if !errors.Is(err, tenant.ErrNotFound) {
					t.Errorf("write after the move: %v, want not found", err)
				}
				tc.kept(f, t)
			})
		}
	}
}

// TestOperatorWritesFollowTheMove: the operator's write of an object
// another operator request gives to another reseller just before it is
// made as it would be a moment later: the operator sees every reseller's
// objects. The store refused it as held by another than the service had
// read, and the operator was told the object did not exist.
func TestOperatorWritesFollowTheMove(t *testing.T) {
	ctx := context.Background()
	for _, dia := range raceDialects {
		for _, tc := range []struct {
			name  string
			race  func(f *raceFixture, t *testing.T)
			write func(f *raceFixture, svc *admin.Service, p admin.Principal) error
			done  func(f *raceFixture, t *testing.T)
		}{{
			name: "delete domain",
			race: (*raceFixture).moveDomain,
			write: func(f *raceFixture, svc *admin.Service, p admin.Principal) error {
				return svc.DeleteDomain(ctx, p, f.d.ID)
			},
			done: func(f *raceFixture, t *testing.T) {
				if _, err := f.node[1].GetDomain(ctx, f.d.ID); !errors.Is(err, tenant.ErrNotFound) {
					t.Errorf("the domain: %v, want deleted", err)
				}
			},
		}, {
			name: "import recipients",
			race: (*raceFixture).moveDomain,
			write: func(f *raceFixture, svc *admin.Service, p admin.Principal) error {
				_, err := svc.AddRecipients(ctx, p, f.d.ID, []string{"x"}, false)
				return err
			},
			done: func(f *raceFixture, t *testing.T) {
				if got := f.recipients(t); len(got) != 2 {
					t.Errorf("recipients %q, want [a x]", got)
				}
			},
		}, {
			name: "delete recipient",
			race: (*raceFixture).moveDomain,
			write: func(f *raceFixture, svc *admin.Service, p admin.Principal) error {
				return svc.DeleteRecipient(ctx, p, f.d.ID, "a")
			},
			done: func(f *raceFixture, t *testing.T) {
				if got := f.recipients(t); len(got) != 0 {
					t.Errorf("recipients %q, want none", got)
				}
			},
		}, {
			name: "update domain of a moved customer",
			race: func(f *raceFixture, t *testing.T) { f.moveCustomer(t, f.c1.ID) },
			write: func(f *raceFixture, svc *admin.Service, p admin.Principal) error {
				_, err := svc.UpdateDomain(ctx, p, f.d.ID, func(d *tenant.DomainRecord) { d.Route = "192.0.2.66:25" })
				return err
			},
			done: func(f *raceFixture, t *testing.T) {
				if d, err := f.node[1].GetDomain(ctx, f.d.ID); err != nil || d.Route != "192.0.2.66:25" || d.ResellerID != f.r2.ID {
					t.Errorf("the domain: %+v, %v; want r2's, rerouted", d, err)
				}
			},
		}, {
			name: "create domain under a moved customer",
			race: func(f *raceFixture, t *testing.T) { f.moveCustomer(t, f.e1.ID) },
			write: func(f *raceFixture, svc *admin.Service, p admin.Principal) error {
				_, err := svc.CreateDomain(ctx, p, tenant.DomainRecord{CustomerID: f.e1.ID, Name: "new.example", Route: "192.0.2.1:25", TLS: "opportunistic"})
				return err
			},
			done: func(f *raceFixture, t *testing.T) {
				if d, err := f.node[1].DomainByName(ctx, "new.example"); err != nil || d.CustomerID != f.e1.ID || d.ResellerID != f.r2.ID {
					t.Errorf("the domain: %+v, %v; want r2's, under the customer", d, err)
				}
			},
		}, {
			name: "move domain to a moved customer",
			race: func(f *raceFixture, t *testing.T) { f.moveCustomer(t, f.e1.ID) },
			write: func(f *raceFixture, svc *admin.Service, p admin.Principal) error {
				_, err := svc.UpdateDomain(ctx, p, f.d.ID, func(d *tenant.DomainRecord) { d.CustomerID = f.e1.ID })
				return err
			},
			done: func(f *raceFixture, t *testing.T) {
				if d, err := f.node[1].GetDomain(ctx, f.d.ID); err != nil || d.CustomerID != f.e1.ID || d.ResellerID != f.r2.ID {
					t.Errorf("the domain: %+v, %v; want r2's, under the customer", d, err)
				}
			},
		}, {
			name: "delete customer",
			race: func(f *raceFixture, t *testing.T) { f.moveCustomer(t, f.e1.ID) },
			write: func(f *raceFixture, svc *admin.Service, p admin.Principal) error {
				return svc.DeleteCustomer(ctx, p, f.e1.ID)
			},
			done: func(f *raceFixture, t *testing.T) {
				if _, err := f.node[1].GetCustomer(ctx, f.e1.ID); !errors.Is(err, tenant.ErrNotFound) {
					t.Errorf("the customer: %v, want deleted", err)
				}
			},
		}} {
			t.Run(dia.name+"/"+tc.name, func(t *testing.T) {
				f := newRaceFixture(t, dia.open)
				st := &racedStore{Store: f.node[0], race: func() { tc.race(f, t) }}
				svc := admin.NewService(st, admin.ServiceOptions{})
				if err := tc.write(f, svc, admin.Principal{Operator: true, Actor: "operator"}); err != nil {
					t.Fatalf("the operator's write after the move: %v", err)
				}
				tc.done(f, t)
			})
		}
	}
}

// keptRecipientA checks that r2's domain still has its one recipient, a.
func (f *raceFixture) keptRecipientA(t *testing.T) {
	if got := f.recipients(t); len(got) != 1 || got[0] != "a" {
		t.Errorf("r2's recipients %q, want [a]", got)
	}
}
