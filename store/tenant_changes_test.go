package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/internal/metrictest"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// TestDeltasMatchFullLoads: on both dialects, a node applying the change
// log after each of a few hundred random writes (creates, renames, moves
// between customers, suspensions, policy changes at every level, pending
// domains, recipient imports and deletes, deletions) serves exactly what
// a node loading everything serves, and so does one started from its
// snapshot file and journal with the store down. Only its first load is
// full.
func TestDeltasMatchFullLoads(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ts := NewTenants(tc.open(t))
			ctx := context.Background()
			dir := t.TempDir()
			reg := prometheus.NewRegistry()
			live := newSyncer(t, ts, dir, reg)
			w := &randomWriter{t: t, ts: ts, rng: rand.New(rand.NewPCG(1, 2))}
			for step := range 300 {
				what := w.step(ctx)
				if step%3 != 0 {
					continue // several changes between reloads coalesce
				}
				if err := live.Reload(ctx); err != nil {
					t.Fatalf("step %d (%s): reload: %v", step, what, err)
				}
				if step%30 == 0 {
					full := newSyncer(t, ts, t.TempDir(), prometheus.NewRegistry())
					sameSnapshots(t, fmt.Sprintf("step %d (%s)", step, what), full.Directory().Snapshot(), live.Directory().Snapshot())
				}
			}
			if err := live.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			full := newSyncer(t, ts, t.TempDir(), prometheus.NewRegistry())
			sameSnapshots(t, "end", full.Directory().Snapshot(), live.Directory().Snapshot())
			if got := metrictest.Counter(t, reg, "mxgrid_tenant_loads_total", "full"); got != 1 {
				t.Errorf("%v full loads, want only the first", got)
			}
			if got := metrictest.Counter(t, reg, "mxgrid_tenant_loads_total", "delta"); got < 50 {
				t.Errorf("%v delta loads", got)
			}
			fromFile := newSyncer(t, downLoader{}, dir, prometheus.NewRegistry())
			sameSnapshots(t, "from the snapshot file and journal", full.Directory().Snapshot(), fromFile.Directory().Snapshot())
		})
	}
}

// TestChangeLogGaps: a node whose version the log no longer reaches, or
// which is ahead of the store (restored from a backup), is told to load
// everything.
func TestChangeLogGaps(t *testing.T) {
	st := openSQLite(t)
	ts := NewTenants(st)
	ctx := context.Background()
	w := &randomWriter{t: t, ts: ts, rng: rand.New(rand.NewPCG(3, 4))}
	for range 10 {
		w.step(ctx)
	}
	d, err := ts.LoadSince(ctx, 2)
	if err != nil || d.Version < 10 {
		t.Fatalf("LoadSince(2) = version %d, %v", d.Version, err)
	}
	if _, err := st.DB.ExecContext(ctx, `DELETE FROM tenant_changes WHERE version <= 5`); err != nil {
		t.Fatal(err)
	}
	for _, since := range []uint64{0, 2, 4, d.Version + 1} {
		if _, err := ts.LoadSince(ctx, since); !errors.Is(err, tenant.ErrChangesGone) {
			t.Errorf("LoadSince(%d) err %v, want ErrChangesGone", since, err)
		}
	}
	if _, err := ts.LoadSince(ctx, 5); err != nil {
		t.Errorf("LoadSince(5), the log's start: %v", err)
	}
}

// TestChangesOfANodeWithoutTheLog: during a rolling upgrade a node from
// before the change log (tenants schema 4) still writes tenants, bumping
// the version without a row in the log. A node applying deltas loads
// everything instead of serving the version without that change, whether
// the unlogged write comes after the logged ones or between them.
func TestChangesOfANodeWithoutTheLog(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.open(t)
			ts := NewTenants(st)
			ctx := context.Background()
			_, c := resellerWithCustomer(t, ts, "acme")
			d := activeDomain(t, ts, c.ID, "old.example")
			reg := prometheus.NewRegistry()
			live := newSyncer(t, ts, t.TempDir(), reg)
			oldNodeWrite := func(route string) {
				t.Helper()
				if _, err := st.DB.ExecContext(ctx, `UPDATE domains SET route = $1 WHERE id = $2`, route, d.ID); err != nil {
					t.Fatal(err)
				}
				if _, err := st.DB.ExecContext(ctx, `UPDATE tenant_version SET version = version + 1 WHERE id = 1`); err != nil {
					t.Fatal(err)
				}
			}
			for i, write := range []func(){
				func() { activeDomain(t, ts, c.ID, "new1.example"); oldNodeWrite("old1.test:25") },
				func() { oldNodeWrite("old2.test:25"); activeDomain(t, ts, c.ID, "new2.example") },
			} {
				write()
				if err := live.Reload(ctx); err != nil {
					t.Fatal(err)
				}
				full := newSyncer(t, ts, t.TempDir(), prometheus.NewRegistry())
				sameSnapshots(t, fmt.Sprintf("after writes %d", i), full.Directory().Snapshot(), live.Directory().Snapshot())
			}
			if got := metrictest.Counter(t, reg, "mxgrid_tenant_loads_total", "full"); got != 3 {
				t.Errorf("%v full loads, want 3: the first and one after each unlogged change", got)
			}
		})
	}
}

type downLoader struct{}

func (downLoader) Load(context.Context) (tenant.Data, error) {
	return tenant.Data{}, tenant.ErrUnavailable
}
func (downLoader) LoadSince(context.Context, uint64) (tenant.Delta, error) {
	return tenant.Delta{}, tenant.ErrUnavailable
}

func newSyncer(t *testing.T, l tenant.Loader, dir string, reg *prometheus.Registry) *tenant.Syncer {
	t.Helper()
	s, err := tenant.NewSyncer(context.Background(), tenant.DefaultSyncConfig(), tenant.SyncOptions{
		Loader: l, DataDir: dir, Timeout: 10 * time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sameSnapshots(t *testing.T, when string, want, got *tenant.Snapshot) {
	t.Helper()
	index := func(s *tenant.Snapshot) map[string]*tenant.Domain {
		m := map[string]*tenant.Domain{}
		for d := range s.All() {
			m[d.Name] = d
		}
		return m
	}
	w, g := index(want), index(got)
	if want.Version != got.Version {
		t.Fatalf("%s: version %d, want %d", when, got.Version, want.Version)
	}
	for name, wd := range w {
		if gd, ok := g[name]; !ok {
			t.Fatalf("%s: %s missing", when, name)
		} else if !reflect.DeepEqual(wd, gd) {
			t.Fatalf("%s: %s is\n%+v\nwant\n%+v", when, name, gd, wd)
		}
	}
	for name := range g {
		if _, ok := w[name]; !ok {
			t.Fatalf("%s: %s served but gone from the store", when, name)
		}
	}
}

// randomWriter makes random tenant writes through the admin store.
type randomWriter struct {
	t         *testing.T
	ts        *Tenants
	rng       *rand.Rand
	resellers []tenant.Reseller
	customers []tenant.Customer
	domains   []tenant.DomainRecord
	seq       int
}

// owner is the reseller holding domain id now: the customer moves it
// writes leave the domains it keeps naming the one before.
func (w *randomWriter) owner(ctx context.Context, id int64) int64 {
	w.t.Helper()
	d, err := w.ts.GetDomain(ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return d.ResellerID
}

func (w *randomWriter) step(ctx context.Context) string {
	w.t.Helper()
	a := admin.AuditEntry{Actor: "test", Action: "x", Object: "x"}
	score := func() *float64 { f := float64(w.rng.IntN(10)) + 0.5; return &f }
	w.seq++
	var (
		what string
		err  error
	)
	switch op := w.rng.IntN(12); {
	case len(w.resellers) == 0 || op == 0:
		what = "create reseller"
		r := tenant.Reseller{Name: fmt.Sprintf("r%d", w.seq), Policy: tenant.Policy{TagScore: score()}}
		_, err = w.ts.CreateReseller(ctx, &r, a)
		w.resellers = append(w.resellers, r)
	case len(w.customers) == 0 || op == 1:
		what = "create customer"
		c := tenant.Customer{ResellerID: w.resellers[w.rng.IntN(len(w.resellers))].ID, Name: fmt.Sprintf("c%d", w.seq)}
		_, err = w.ts.CreateCustomer(ctx, &c, a)
		w.customers = append(w.customers, c)
	case len(w.domains) < 3 || op == 2 || op == 3:
		what = "create domain"
		d := tenant.DomainRecord{CustomerID: w.customers[w.rng.IntN(len(w.customers))].ID, Name: fmt.Sprintf("d%d.example", w.seq),
			Route: "mx.test:25", TLS: "none", Status: tenant.StatusActive}
		if w.rng.IntN(5) == 0 {
			d.Status = tenant.StatusPending
		}
		_, err = w.ts.CreateDomain(ctx, &d, a)
		w.domains = append(w.domains, d)
	case op == 4:
		i := w.rng.IntN(len(w.resellers))
		what = "reseller policy"
		w.resellers[i].Policy.TagScore = score()
		_, err = w.ts.UpdateReseller(ctx, &w.resellers[i], a)
	case op == 5:
		i := w.rng.IntN(len(w.customers))
		what = "customer suspension, policy or reseller"
		c := &w.customers[i]
		c.Suspended = w.rng.IntN(2) == 0
		c.Policy.RejectScore = score()
		c.ResellerID = w.resellers[w.rng.IntN(len(w.resellers))].ID
		_, err = w.ts.UpdateCustomer(ctx, c, a)
	case op == 6:
		i := w.rng.IntN(len(w.domains))
		d := &w.domains[i]
		what = "domain rename, move, status, route or policy"
		switch w.rng.IntN(5) {
		case 0:
			d.Name = fmt.Sprintf("renamed%d.example", w.seq)
		case 1:
			d.CustomerID = w.customers[w.rng.IntN(len(w.customers))].ID
		case 2:
			d.Status = []string{tenant.StatusActive, tenant.StatusPending}[w.rng.IntN(2)]
		case 3:
			d.Routes = []tenant.RouteRule{{Recipients: []string{"sales-*"}, Route: "sales.test:25"}}
		default:
			d.Policy.SubjectTag = new(string)
			*d.Policy.SubjectTag = fmt.Sprintf("[S%d]", w.seq)
		}
		owner := w.owner(ctx, d.ID)
		c, cerr := w.ts.GetCustomer(ctx, d.CustomerID)
		if cerr != nil {
			w.t.Fatal(cerr)
		}
		d.ResellerID = c.ResellerID
		_, err = w.ts.UpdateDomain(ctx, d, owner, a)
	case op <= 9:
		d := w.domains[w.rng.IntN(len(w.domains))]
		what = "recipients"
		var locals []string
		for range w.rng.IntN(5) + 1 {
			locals = append(locals, fmt.Sprintf("u%d", w.rng.IntN(20)))
		}
		_, _, err = w.ts.AddRecipients(ctx, d.ID, w.owner(ctx, d.ID), locals, w.rng.IntN(3) == 0, a)
	case op == 10:
		d := w.domains[w.rng.IntN(len(w.domains))]
		what = "delete recipient"
		_, err = w.ts.DeleteRecipient(ctx, d.ID, w.owner(ctx, d.ID), fmt.Sprintf("u%d", w.rng.IntN(20)), a)
		if errors.Is(err, tenant.ErrNotFound) {
			err = nil
		}
	default:
		i := w.rng.IntN(len(w.domains))
		what = "delete domain"
		_, err = w.ts.DeleteDomain(ctx, w.domains[i].ID, w.owner(ctx, w.domains[i].ID), a)
		w.domains = append(w.domains[:i], w.domains[i+1:]...)
	}
	if err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
	return what
}

// TestDeltaBoundCountsTheDomainsItReads: a change to a reseller or a
// customer is one object in the log, but the delta reads every domain
// under it with their recipients. A large hosting reseller's policy
// change was applied as a delta reading as much as a full load, within
// the store's timeout (5 s) rather than a full load's (10 min): past it
// the delta failed, and failed again at every reload, the same changes
// and more each time, so every node stayed on its version until
// restarted. Past maxDeltaObjects domains or maxDeltaRecipients
// recipients the node loads everything instead.
func TestDeltaBoundCountsTheDomainsItReads(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.open(t)
			ts := NewTenants(st)
			ctx := context.Background()
			a := admin.AuditEntry{Actor: "test", Action: "x", Object: "x"}
			r, c := resellerWithCustomer(t, ts, "hoster")
			activeDomain(t, ts, c.ID, "big.example")
			// Only the count the bound reads: a million rows would take
			// the test minutes.
			if _, err := st.DB.ExecContext(ctx, `UPDATE domains SET recipient_count = $1`, maxDeltaRecipients+1); err != nil {
				t.Fatal(err)
			}
			changed := func(what string) {
				t.Helper()
				var before uint64
				if err := st.DB.QueryRowContext(ctx, `SELECT version FROM tenant_version`).Scan(&before); err != nil {
					t.Fatal(err)
				}
				score := float64(before)
				r.Policy.TagScore = &score
				if _, err := ts.UpdateReseller(ctx, &r, a); err != nil {
					t.Fatal(err)
				}
				if _, err := ts.LoadSince(ctx, before); !errors.Is(err, tenant.ErrChangesGone) {
					t.Errorf("%s: a reseller change is a delta (err %v), want a full load", what, err)
				}
			}
			changed("recipients past the bound")

			if _, err := st.DB.ExecContext(ctx, `UPDATE domains SET recipient_count = 0`); err != nil {
				t.Fatal(err)
			}
			if _, err := st.DB.ExecContext(ctx, `WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
				INSERT INTO domains (customer_id, name, route, tls, policy, created_us, updated_us)
				SELECT $2, 'd' || i || '.example', 'mx.test:25', 'none', '{}', 0, 0 FROM n`, maxDeltaObjects, c.ID); err != nil {
				t.Fatal(err)
			}
			changed("domains past the bound")
		})
	}
}

// TestDamagedDomainRowIsLeftOut: a domain row whose policy is not the
// JSON the store writes (edited by hand, a restore gone wrong) failed the
// whole read, so one row kept every node from loading at start and from
// applying any later change. It is read as damaged and left out (the
// syncer logs it), in a full load and in a delta, where its earlier
// version goes too.
func TestDamagedDomainRowIsLeftOut(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.open(t)
			ts := NewTenants(st)
			ctx := context.Background()
			a := admin.AuditEntry{Actor: "test", Action: "x", Object: "x"}
			_, c := resellerWithCustomer(t, ts, "r")
			domain := func(name string) tenant.DomainRecord { return activeDomain(t, ts, c.ID, name) }
			damage := func(d tenant.DomainRecord) {
				if _, err := st.DB.ExecContext(ctx, `UPDATE domains SET policy = '{"tag_score":' WHERE id = $1`, d.ID); err != nil {
					t.Fatal(err)
				}
			}
			served := func(s *tenant.Syncer, want map[string]bool) {
				t.Helper()
				for name, w := range want {
					if _, ok := s.Directory().Lookup(name); ok != w {
						t.Errorf("%s served = %v, want %v", name, ok, w)
					}
				}
			}
			good, bad := domain("good.example"), domain("bad.example")
			damage(bad)
			full := newSyncer(t, ts, t.TempDir(), prometheus.NewRegistry())
			served(full, map[string]bool{"good.example": true, "bad.example": false})

			later := domain("later.example")
			if _, err := ts.UpdateDomain(ctx, &later, later.ResellerID, a); err != nil {
				t.Fatal(err)
			}
			damage(later)
			domain("new.example")
			if _, err := ts.DeleteDomain(ctx, good.ID, good.ResellerID, a); err != nil {
				t.Fatal(err)
			}
			if err := full.Reload(ctx); err != nil {
				t.Fatalf("a delta with a damaged row: %v", err)
			}
			served(full, map[string]bool{"good.example": false, "later.example": false, "new.example": true})
		})
	}
}

// TestDamagedParentLeavesItsDomainsOut: a reseller or customer row whose
// policy does not decode failed the whole read as a domain's did. Its
// domains, whose effective policy cannot be known, are left out; every
// other domain loads.
func TestDamagedParentLeavesItsDomainsOut(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.open(t)
			ts := NewTenants(st)
			ctx := context.Background()
			tree := func(name string) (tenant.Reseller, tenant.Customer) {
				r, c := resellerWithCustomer(t, ts, name)
				activeDomain(t, ts, c.ID, name+".example")
				return r, c
			}
			tree("fine")
			_, c := tree("customer")
			r, _ := tree("reseller")
			for _, q := range []struct {
				sql string
				id  int64
			}{{`UPDATE customers SET policy = 'null x' WHERE id = $1`, c.ID}, {`UPDATE resellers SET policy = '[' WHERE id = $1`, r.ID}} {
				if _, err := st.DB.ExecContext(ctx, q.sql, q.id); err != nil {
					t.Fatal(err)
				}
			}
			s := newSyncer(t, ts, t.TempDir(), prometheus.NewRegistry())
			for name, want := range map[string]bool{"fine.example": true, "customer.example": false, "reseller.example": false} {
				if _, ok := s.Directory().Lookup(name); ok != want {
					t.Errorf("%s served = %v, want %v", name, ok, want)
				}
			}
		})
	}
}

// resellerWithCustomer creates a reseller and one customer of it, both
// named name.
func resellerWithCustomer(t *testing.T, ts *Tenants, name string) (tenant.Reseller, tenant.Customer) {
	t.Helper()
	ctx := context.Background()
	a := admin.AuditEntry{Actor: "test", Action: "x", Object: "x"}
	r := tenant.Reseller{Name: name}
	if _, err := ts.CreateReseller(ctx, &r, a); err != nil {
		t.Fatal(err)
	}
	c := tenant.Customer{ResellerID: r.ID, Name: name}
	if _, err := ts.CreateCustomer(ctx, &c, a); err != nil {
		t.Fatal(err)
	}
	return r, c
}

// activeDomain creates an active domain of customer customerID.
func activeDomain(t *testing.T, ts *Tenants, customerID int64, name string) tenant.DomainRecord {
	t.Helper()
	d := tenant.DomainRecord{CustomerID: customerID, Name: name, Route: "mx.test:25", TLS: "none", Status: tenant.StatusActive}
	if _, err := ts.CreateDomain(context.Background(), &d, admin.AuditEntry{Actor: "test", Action: "x", Object: "x"}); err != nil {
		t.Fatal(err)
	}
	return d
}
