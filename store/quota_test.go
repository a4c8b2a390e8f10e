package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/tenant"
)

var quotaAudit = admin.AuditEntry{Actor: "test", Action: "create", Object: "x"}

// quotaFixture is a store whose default quota is 3 domains and 5
// recipients, with two resellers of one customer each.
type quotaFixture struct {
	ts     *Tenants
	r1, r2 tenant.Reseller
	// cust are r1's and r2's customers.
	cust [2]int64
}

func newQuotaFixture(t *testing.T, st *Store) *quotaFixture {
	t.Helper()
	ctx := context.Background()
	f := &quotaFixture{ts: NewTenants(st)}
	f.ts.DefaultQuota = tenant.Quota{Domains: 3, Recipients: 5}
	for i, r := range []*tenant.Reseller{&f.r1, &f.r2} {
		r.Name = fmt.Sprintf("r%d", i+1)
		r.Slug = r.Name
		if _, err := f.ts.CreateReseller(ctx, r, quotaAudit); err != nil {
			t.Fatal(err)
		}
		c := tenant.Customer{ResellerID: r.ID, Name: "c", MapKey: r.Name}
		if _, err := f.ts.CreateCustomer(ctx, &c, quotaAudit); err != nil {
			t.Fatal(err)
		}
		f.cust[i] = c.ID
	}
	return f
}

func (f *quotaFixture) domain(ctx context.Context, customerID int64, name string) (tenant.DomainRecord, error) {
	// Pending like a reseller's unproven claim: those count too.
	d := tenant.DomainRecord{CustomerID: customerID, Name: name, Route: "192.0.2.1:25", TLS: "opportunistic",
		Status: tenant.StatusPending, VerifyToken: "t"}
	_, err := f.ts.CreateDomain(ctx, &d, quotaAudit)
	return d, err
}

// wantQuotaError checks err is a quota refusal with these numbers.
func wantQuotaError(t *testing.T, err error, want tenant.QuotaError) {
	t.Helper()
	var qe *tenant.QuotaError
	if !errors.As(err, &qe) || !errors.Is(err, tenant.ErrQuotaExceeded) || *qe != want {
		t.Fatalf("err = %v, want %+v", err, want)
	}
}

// TestResellerQuota: a write that would leave a reseller over its quota
// fails whole; other resellers, re-imports and replaced lists are counted
// as stored; the operator's override raises the default.
func TestResellerQuota(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newQuotaFixture(t, tc.open(t))
			var doms []tenant.DomainRecord
			for i := range 3 {
				d, err := f.domain(ctx, f.cust[0], fmt.Sprintf("d%d.example", i))
				if err != nil {
					t.Fatalf("domain %d within the quota: %v", i, err)
				}
				doms = append(doms, d)
			}
			_, err := f.domain(ctx, f.cust[0], "over.example")
			wantQuotaError(t, err, tenant.QuotaError{What: "domains", Quota: 3, Used: 3, After: 4})
			if _, err := f.ts.DomainByName(ctx, "over.example"); !errors.Is(err, tenant.ErrNotFound) {
				t.Fatalf("refused domain stored anyway: %v", err)
			}
			if _, err := f.domain(ctx, f.cust[1], "other.example"); err != nil {
				t.Fatalf("another reseller's domain: %v", err)
			}

			steps := []struct {
				name    string
				domain  int
				locals  []string
				replace bool
				want    *tenant.QuotaError
				added   int
			}{
				{name: "within", domain: 0, locals: []string{"a", "b", "c", "d"}, added: 4},
				{name: "over, across domains", domain: 1, locals: []string{"e", "f"},
					want: &tenant.QuotaError{What: "recipients", Quota: 5, Used: 4, After: 6}},
				{name: "re-import adds nothing", domain: 0, locals: []string{"a", "b", "c", "d"}},
				{name: "replace counts the new list", domain: 0, locals: []string{"v", "w", "x", "y", "z"}, replace: true, added: 5},
				{name: "replace over", domain: 0, locals: []string{"1", "2", "3", "4", "5", "6"}, replace: true,
					want: &tenant.QuotaError{What: "recipients", Quota: 5, Used: 5, After: 6}},
			}
			for _, s := range steps {
				added, _, err := f.ts.AddRecipients(ctx, doms[s.domain].ID, doms[s.domain].ResellerID, s.locals, s.replace, quotaAudit)
				if s.want != nil {
					wantQuotaError(t, err, *s.want)
					continue
				}
				if err != nil || added != s.added {
					t.Fatalf("%s: added %d, %v; want %d", s.name, added, err, s.added)
				}
			}
			u, err := f.ts.ResellerUsage(ctx, f.r1.ID)
			want := admin.Usage{Domains: admin.Use{Used: 3, Quota: 3}, Recipients: admin.Use{Used: 5, Quota: 5}}
			if err != nil || u != want {
				t.Fatalf("usage %+v, %v; want %+v (refused writes rolled back)", u, err, want)
			}
			checkRecipientCounts(t, f.ts.st)
			if _, err := f.ts.DeleteRecipient(ctx, doms[0].ID, doms[0].ResellerID, "v", quotaAudit); err != nil {
				t.Fatal(err)
			}
			if _, _, err := f.ts.AddRecipients(ctx, doms[1].ID, doms[1].ResellerID, []string{"e"}, false, quotaAudit); err != nil {
				t.Fatalf("the place a deletion freed: %v", err)
			}
			checkRecipientCounts(t, f.ts.st)

			f.r1.Quota = tenant.Quota{Domains: 4}
			if _, err := f.ts.UpdateReseller(ctx, &f.r1, quotaAudit); err != nil {
				t.Fatal(err)
			}
			if _, err := f.domain(ctx, f.cust[0], "over.example"); err != nil {
				t.Fatalf("after the operator raised the quota: %v", err)
			}
			got, err := f.ts.GetReseller(ctx, f.r1.ID)
			if err != nil || got.Quota != f.r1.Quota {
				t.Fatalf("stored quota %+v, %v; want %+v", got.Quota, err, f.r1.Quota)
			}
			u, err = f.ts.ResellerUsage(ctx, f.r1.ID)
			want = admin.Usage{Domains: admin.Use{Used: 4, Quota: 4}, Recipients: admin.Use{Used: 5, Quota: 5}}
			if err != nil || u != want {
				t.Fatalf("usage %+v, %v; want %+v (the override's zero recipients field keeps the default)", u, err, want)
			}
		})
	}
}

// TestResellerQuotaConcurrent: creates racing for the last places of a
// quota cannot all pass.
func TestResellerQuotaConcurrent(t *testing.T) {
	const tries = 16
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newQuotaFixture(t, tc.open(t))
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				created int
			)
			for i := range tries {
				wg.Go(func() {
					_, err := f.domain(ctx, f.cust[0], fmt.Sprintf("race%d.example", i))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						created++
					case !errors.Is(err, tenant.ErrQuotaExceeded):
						t.Errorf("create %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			u, err := f.ts.ResellerUsage(ctx, f.r1.ID)
			if err != nil || created != 3 || u.Domains.Used != 3 {
				t.Fatalf("%d of %d concurrent creates passed, %d stored (%v); want the quota's 3", created, tries, u.Domains.Used, err)
			}
		})
	}
}

// checkRecipientCounts fails t unless every domain's recipient_count is
// its number of recipients.
func checkRecipientCounts(t *testing.T, st *Store) {
	t.Helper()
	rows, err := st.DB.QueryContext(context.Background(), `SELECT d.name, d.recipient_count,
		(SELECT COUNT(*) FROM recipients r WHERE r.domain_id = d.id) FROM domains d`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var kept, counted int64
		if err := rows.Scan(&name, &kept, &counted); err != nil {
			t.Fatal(err)
		}
		if kept != counted {
			t.Errorf("%s: recipient_count %d, %d recipients stored", name, kept, counted)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestRecipientCountMigration: recipients stored before the count was
// kept are counted by the migration, so quotas see them.
func TestRecipientCountMigration(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := tc.open(t)
			if err := st.Migrate(ctx, tenantsComponent, tenantMigrations[:7]); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				`INSERT INTO resellers (name, policy, created_us, updated_us, slug) VALUES ('r', '{}', 0, 0, 'r')`,
				`INSERT INTO customers (reseller_id, name, policy, created_us, updated_us, map_key) VALUES (1, 'c', '{}', 0, 0, 'k')`,
				`INSERT INTO domains (customer_id, name, route, tls, policy, created_us, updated_us)
					VALUES (1, 'a.example', '192.0.2.1:25', 'opportunistic', '{}', 5, 5),
					(1, 'b.example', '192.0.2.1:25', 'opportunistic', '{}', 5, 5),
					(1, 'empty.example', '192.0.2.1:25', 'opportunistic', '{}', 5, 5)`,
				`INSERT INTO recipients (domain_id, local, created_us) VALUES (1, 'x', 0), (1, 'y', 0), (2, 'z', 0)`,
			} {
				if _, err := st.DB.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			ts := NewTenants(st)
			ts.DefaultQuota = tenant.Quota{Recipients: 4}
			u, err := ts.ResellerUsage(ctx, 1)
			if want := (admin.Use{Used: 3, Quota: 4}); err != nil || u.Recipients != want {
				t.Fatalf("recipients %+v, %v; want %+v", u.Recipients, err, want)
			}
			checkRecipientCounts(t, st)
			_, _, err = ts.AddRecipients(ctx, 3, 1, []string{"p", "q"}, false, quotaAudit)
			wantQuotaError(t, err, tenant.QuotaError{What: "recipients", Quota: 4, Used: 3, After: 5})
		})
	}
}

// TestQuotaMigration: resellers from before quotas take the default.
func TestQuotaMigration(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := tc.open(t)
			if err := st.Migrate(ctx, tenantsComponent, tenantMigrations[:6]); err != nil {
				t.Fatal(err)
			}
			if _, err := st.DB.ExecContext(ctx, `INSERT INTO resellers (name, policy, created_us, updated_us, slug) VALUES ('r', '{}', 0, 0, 'r')`); err != nil {
				t.Fatal(err)
			}
			ts := NewTenants(st)
			ts.DefaultQuota = tenant.Quota{Domains: 7, Recipients: 9}
			r, err := ts.GetReseller(ctx, 1)
			if err != nil || r.Quota != (tenant.Quota{}) {
				t.Fatalf("migrated reseller quota %+v, %v; want no override", r.Quota, err)
			}
			u, err := ts.ResellerUsage(ctx, 1)
			if want := (admin.Usage{Domains: admin.Use{Quota: 7}, Recipients: admin.Use{Quota: 9}}); err != nil || u != want {
				t.Fatalf("usage %+v, %v; want %+v", u, err, want)
			}
		})
	}
}

// TestResellerQuotaMoves: the operator moving a domain or a customer to
// another reseller is a create for that reseller, checked against its
// quota; a move within its quota passes.
func TestResellerQuotaMoves(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newQuotaFixture(t, tc.open(t))
			// r1 holds 2 domains and 5 recipients of its quota's 3 and 5.
			for i := range 2 {
				d, err := f.domain(ctx, f.cust[0], fmt.Sprintf("r1-%d.example", i))
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := f.ts.AddRecipients(ctx, d.ID, d.ResellerID, []string{"a", "b", "c"}[i:], false, quotaAudit); err != nil {
					t.Fatal(err)
				}
			}
			empty, err := f.domain(ctx, f.cust[1], "empty.example")
			if err != nil {
				t.Fatal(err)
			}
			full, err := f.domain(ctx, f.cust[1], "full.example")
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := f.ts.AddRecipients(ctx, full.ID, full.ResellerID, []string{"x"}, false, quotaAudit); err != nil {
				t.Fatal(err)
			}
			moveDomain := func(d tenant.DomainRecord) error {
				owner := d.ResellerID
				d.CustomerID, d.ResellerID = f.cust[0], f.r1.ID
				_, err := f.ts.UpdateDomain(ctx, &d, owner, quotaAudit)
				return err
			}
			wantQuotaError(t, moveDomain(full), tenant.QuotaError{What: "recipients", Quota: 5, Used: 5, After: 6})
			if err := moveDomain(empty); err != nil {
				t.Fatalf("moving an empty domain into the last place: %v", err)
			}
			c2, err := f.ts.GetCustomer(ctx, f.cust[1])
			if err != nil {
				t.Fatal(err)
			}
			c2.ResellerID = f.r1.ID
			_, err = f.ts.UpdateCustomer(ctx, &c2, quotaAudit)
			wantQuotaError(t, err, tenant.QuotaError{What: "domains", Quota: 3, Used: 3, After: 4})
			if got, err := f.ts.GetDomain(ctx, full.ID); err != nil || got.ResellerID != f.r2.ID {
				t.Fatalf("refused moves changed the domain: %+v, %v", got, err)
			}
			checkRecipientCounts(t, f.ts.st)
		})
	}
}

// BenchmarkAddRecipientUnderQuota is one recipient added by a reseller
// holding a million (4,000 domains of 250) under a recipient quota: the
// quota check sums the domains' kept counts instead of counting rows.
func BenchmarkAddRecipientUnderQuota(b *testing.B) {
	const domains, perDomain = 4000, 250
	for _, tc := range dialects {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			st := tc.open(b)
			ts := NewTenants(st)
			r := tenant.Reseller{Name: "big", Slug: "big", Quota: tenant.Quota{Recipients: 2 * domains * perDomain}}
			if _, err := ts.CreateReseller(ctx, &r, quotaAudit); err != nil {
				b.Fatal(err)
			}
			c := tenant.Customer{ResellerID: r.ID, Name: "c", MapKey: "k"}
			if _, err := ts.CreateCustomer(ctx, &c, quotaAudit); err != nil {
				b.Fatal(err)
			}
			for _, q := range []string{
				fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
					INSERT INTO domains (customer_id, name, route, tls, policy, created_us, updated_us)
					SELECT %d, 'd' || i || '.example', '192.0.2.1:25', 'opportunistic', '{}', 0, 0 FROM n`, domains, c.ID),
				fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
					INSERT INTO recipients (domain_id, local, created_us) SELECT d.id, 'u' || n.i, 0 FROM domains d, n`, perDomain),
				`UPDATE domains SET recipient_count = (SELECT COUNT(*) FROM recipients r WHERE r.domain_id = domains.id)`,
			} {
				if _, err := st.DB.ExecContext(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			d, err := ts.DomainByName(ctx, "d1.example")
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, _, err := ts.AddRecipients(ctx, d.ID, d.ResellerID, []string{fmt.Sprintf("new%d", i)}, false, quotaAudit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCustomersCappedByTheDomainQuota: a reseller holds at most as many
// customers as its domain quota allows domains; a customer costs every
// node memory (its policy included) like a domain does, and without the
// cap a reseller at its domain quota could still create them without end.
// The refused create stores nothing; another reseller is not affected.
func TestCustomersCappedByTheDomainQuota(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newQuotaFixture(t, tc.open(t)) // one customer each, 3 domains
			create := func(resellerID int64, name string) error {
				c := tenant.Customer{ResellerID: resellerID, Name: name}
				_, err := f.ts.CreateCustomer(ctx, &c, quotaAudit)
				return err
			}
			for _, name := range []string{"c2", "c3"} {
				if err := create(f.r1.ID, name); err != nil {
					t.Fatalf("customer %s within the quota: %v", name, err)
				}
			}
			wantQuotaError(t, create(f.r1.ID, "c4"), tenant.QuotaError{What: "customers", Quota: 3, Used: 3, After: 4})
			var n int
			if err := f.ts.st.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM customers WHERE reseller_id = $1`, f.r1.ID).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 3 {
				t.Errorf("reseller 1 holds %d customers after the refused create, want 3", n)
			}
			if err := create(f.r2.ID, "c2"); err != nil {
				t.Errorf("another reseller's customer: %v", err)
			}
		})
	}
}

// TestTokensAndUsersCappedPerReseller: a reseller holds at most
// MaxPerReseller API tokens and as many panel users; the create past it
// is refused with a quota error and stores nothing, another reseller and
// the operator's own tokens are not affected.
func TestTokensAndUsersCappedPerReseller(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := tc.open(t)
			f := newQuotaFixture(t, st)
			// The first MaxPerReseller rows straight in, in one
			// transaction: what is tested is the next create.
			tx, err := st.DB.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range MaxPerReseller {
				if _, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (reseller_id, name, hash, created_us) VALUES ($1, $2, $3, 0)`,
					f.r1.ID, "t", fmt.Sprintf("hash-%d", i)); err != nil {
					t.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO panel_users (reseller_id, email, password, created_us) VALUES ($1, $2, 'x', 0)`,
					f.r1.ID, fmt.Sprintf("u%d@r1.example", i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			want := func(what string) tenant.QuotaError {
				return tenant.QuotaError{What: what, Quota: MaxPerReseller, Used: MaxPerReseller, After: MaxPerReseller + 1}
			}
			wantQuotaError(t, f.ts.CreateToken(ctx, &admin.Token{ResellerID: f.r1.ID, Name: "one more", Hash: "over"}, quotaAudit), want("tokens"))
			wantQuotaError(t, f.ts.CreateUser(ctx, &admin.User{ResellerID: f.r1.ID, Email: "over@r1.example", Hash: "x"}, quotaAudit), want("users"))
			if _, err := f.ts.TokenByHash(ctx, "over"); !errors.Is(err, tenant.ErrNotFound) {
				t.Errorf("the refused token was stored: %v", err)
			}
			if _, err := f.ts.UserByEmail(ctx, "over@r1.example"); !errors.Is(err, tenant.ErrNotFound) {
				t.Errorf("the refused user was stored: %v", err)
			}
			if err := f.ts.CreateToken(ctx, &admin.Token{ResellerID: f.r2.ID, Name: "other", Hash: "other"}, quotaAudit); err != nil {
				t.Errorf("another reseller's token: %v", err)
			}
			if err := f.ts.CreateUser(ctx, &admin.User{ResellerID: f.r2.ID, Email: "a@r2.example", Hash: "x"}, quotaAudit); err != nil {
				t.Errorf("another reseller's user: %v", err)
			}
			if err := f.ts.CreateToken(ctx, &admin.Token{Name: "operator", Hash: "op"}, quotaAudit); err != nil {
				t.Errorf("the operator's token: %v", err)
			}
		})
	}
}

// TestConcurrentReplacesKeepOneList: two nodes replacing one domain's
// recipient list at the same moment on PostgreSQL leave one of the two
// lists, counted right. Each replace's DELETE ran on the rows committed
// when it began, so the second left the first's new rows in place: the
// domain kept both lists, and the addresses a customer had just removed
// were accepted again.
func TestConcurrentReplacesKeepOneList(t *testing.T) {
	ctx := context.Background()
	nodes, f := twoUnquotedNodes(t)
	d, err := f.domain(ctx, f.cust[0], "a.example")
	if err != nil {
		t.Fatal(err)
	}
	var lists [2][]string
	for i := range lists {
		for j := range 20 {
			lists[i] = append(lists[i], fmt.Sprintf("l%d-%02d", i, j))
		}
	}
	for round := range 20 {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, node := range nodes {
			wg.Go(func() {
				<-start
				if _, _, err := node.AddRecipients(ctx, d.ID, d.ResellerID, lists[i], true, quotaAudit); err != nil {
					t.Errorf("round %d: replace %d: %v", round, i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		got, err := f.ts.ListRecipients(ctx, admin.Filter{DomainID: d.ID, Limit: admin.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		locals := make([]string, len(got))
		for i, r := range got {
			locals[i] = r.Local
		}
		slices.Sort(locals)
		if !slices.Equal(locals, lists[0]) && !slices.Equal(locals, lists[1]) {
			t.Fatalf("round %d: after two replaces at once the domain holds %d recipients %q, want one of the lists", round, len(locals), locals)
		}
		checkRecipientCounts(t, f.ts.st)
	}
}

// twoUnquotedNodes are twoPostgresNodes with a quota fixture on the first,
// its quotas off: the races under test are not the quotas'.
func twoUnquotedNodes(t *testing.T) ([2]*Tenants, *quotaFixture) {
	t.Helper()
	nodes := twoPostgresNodes(t)
	f := newQuotaFixture(t, nodes[0].st)
	f.ts.DefaultQuota = tenant.Quota{}
	return nodes, f
}

// twoPostgresNodes are two handles on one new PostgreSQL database, as two
// nodes of a cluster have.
func twoPostgresNodes(t *testing.T) [2]*Tenants {
	t.Helper()
	dsn := testenv.PostgresDB(t)
	return [2]*Tenants{NewTenants(openPostgresAt(t, dsn)), NewTenants(openPostgresAt(t, dsn))}
}

// TestConcurrentRecipientWritesAllCommit: on PostgreSQL, imports of one
// domain's recipients in different orders, a replace of its list and
// single deletes, made at the same moment on two nodes, each commit (a
// delete may find its recipient already replaced away), counted right.
// Each locked the rows it touched in its own order and the domain's row
// (its count) last, so they deadlocked: PostgreSQL aborted one, and its
// caller got 503, the database unavailable, for a change that was only
// refused.
func TestConcurrentRecipientWritesAllCommit(t *testing.T) {
	ctx := context.Background()
	nodes, f := twoUnquotedNodes(t)
	d, err := f.domain(ctx, f.cust[0], "a.example")
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	for i := range 100 {
		list = append(list, fmt.Sprintf("u%03d", i))
	}
	reversed := slices.Clone(list)
	slices.Reverse(reversed)
	for round := range 20 {
		if _, _, err := f.ts.AddRecipients(ctx, d.ID, d.ResellerID, list[:50], true, quotaAudit); err != nil {
			t.Fatal(err)
		}
		writes := []func(*Tenants) error{
			func(ts *Tenants) error {
				_, _, err := ts.AddRecipients(ctx, d.ID, d.ResellerID, list, false, quotaAudit)
				return err
			},
			func(ts *Tenants) error {
				_, _, err := ts.AddRecipients(ctx, d.ID, d.ResellerID, reversed, false, quotaAudit)
				return err
			},
			func(ts *Tenants) error {
				_, _, err := ts.AddRecipients(ctx, d.ID, d.ResellerID, list[25:], true, quotaAudit)
				return err
			},
			func(ts *Tenants) error {
				if _, err := ts.DeleteRecipient(ctx, d.ID, d.ResellerID, "u010", quotaAudit); !errors.Is(err, tenant.ErrNotFound) {
					return err
				}
				return nil
			},
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, write := range writes {
			wg.Go(func() {
				<-start
				if err := write(nodes[i%2]); err != nil {
					t.Errorf("round %d: write %d: %v", round, i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		checkRecipientCounts(t, f.ts.st)
		if t.Failed() {
			return
		}
	}
}

// TestConcurrentNameSwapsConflict: on PostgreSQL, two pending domains
// renamed into each other's names at the same moment on two nodes are
// both refused as taken (409), as they are one after the other. Each
// rename held its domain's old name in the unique index and waited for
// the other's, so they deadlocked: PostgreSQL aborted one, and its
// caller got 503, the database unavailable.
func TestConcurrentNameSwapsConflict(t *testing.T) {
	ctx := context.Background()
	nodes, f := twoUnquotedNodes(t)
	var doms [2]tenant.DomainRecord
	for i, name := range []string{"x.example", "y.example"} {
		d, err := f.domain(ctx, f.cust[0], name)
		if err != nil {
			t.Fatal(err)
		}
		doms[i] = d
	}
	for round := range 500 {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, node := range nodes {
			wg.Go(func() {
				d := doms[i]
				d.Name = doms[1-i].Name
				<-start
				if _, err := node.UpdateDomain(ctx, &d, d.ResellerID, quotaAudit); !errors.Is(err, tenant.ErrConflict) {
					t.Errorf("round %d: renaming %s to %s: %v, want a conflict", round, doms[i].Name, d.Name, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
	}
}

// TestTakeOverDomain: on both dialects, a create in place of a lapsed
// claim removes the claim, marks the name taken over and logs both
// changes in one transaction: refused past the reseller's quota, or with
// the claim proven or younger than asked meanwhile, it leaves the claim,
// its mark and the audit trail as they were, and creates nothing. A node
// applying the change log sees the claim gone and the new domain there.
func TestTakeOverDomain(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newQuotaFixture(t, tc.open(t))
			f.ts.DefaultQuota = tenant.Quota{Domains: 1}
			since := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			claim := tenant.DomainRecord{CustomerID: f.cust[0], Name: "wanted.example", Route: "192.0.2.1:25", TLS: "opportunistic",
				Status: tenant.StatusPending, VerifyToken: "t", PendingSince: since}
			if _, err := f.ts.CreateDomain(ctx, &claim, quotaAudit); err != nil {
				t.Fatal(err)
			}
			full, err := f.ts.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			lapse := admin.AuditEntry{Actor: "ownership", ResellerID: f.r1.ID, Action: "lapse", Object: "claim"}
			takeOver := func() (tenant.DomainRecord, error) {
				d := tenant.DomainRecord{CustomerID: f.cust[1], Name: "wanted.example", Route: "192.0.2.2:25", TLS: "opportunistic",
					Status: tenant.StatusPending, VerifyToken: "u", PendingSince: since.Add(96 * time.Hour)}
				_, err := f.ts.TakeOverDomain(ctx, &d, claim.ID, since.Add(time.Hour), lapse, quotaAudit)
				return d, err
			}
			unchanged := func(when string) {
				t.Helper()
				if d, err := f.ts.DomainByName(ctx, "wanted.example"); err != nil || d.ID != claim.ID {
					t.Fatalf("%s: the name is %+v, %v; want the claim", when, d, err)
				}
				if taken, err := takenOver(ctx, f.ts.st.DB, "wanted.example"); err != nil || taken {
					t.Fatalf("%s: taken over %v, %v", when, taken, err)
				}
				audit, err := f.ts.ListAudit(ctx, admin.Filter{ResellerID: f.r1.ID})
				if err != nil || slices.ContainsFunc(audit, func(e admin.AuditEntry) bool { return e.Action == "lapse" }) {
					t.Fatalf("%s: the holder's trail %v, %v shows a lapse", when, audit, err)
				}
			}
			if _, err := f.domain(ctx, f.cust[1], "own.example"); err != nil {
				t.Fatal(err)
			}
			_, err = takeOver()
			wantQuotaError(t, err, tenant.QuotaError{What: "domains", Quota: 1, Used: 1, After: 2})
			unchanged("past the quota")

			f.ts.DefaultQuota = tenant.Quota{}
			if _, err := f.ts.TakeOverDomain(ctx, &tenant.DomainRecord{CustomerID: f.cust[1], Name: "wanted.example", Route: "192.0.2.2:25",
				TLS: "opportunistic", Status: tenant.StatusPending, VerifyToken: "u"}, claim.ID, since, lapse, quotaAudit); !errors.Is(err, tenant.ErrNotFound) {
				t.Fatalf("a claim not older than asked: %v, want ErrNotFound", err)
			}
			unchanged("a claim not lapsed")

			d, err := takeOver()
			if err != nil {
				t.Fatal(err)
			}
			if got, err := f.ts.DomainByName(ctx, "wanted.example"); err != nil || got.ID != d.ID || got.ResellerID != f.r2.ID {
				t.Fatalf("the name is %+v, %v; want the new claim %d", got, err, d.ID)
			}
			if taken, err := takenOver(ctx, f.ts.st.DB, "wanted.example"); err != nil || !taken {
				t.Fatalf("taken over %v, %v; want marked", taken, err)
			}
			delta, err := f.ts.LoadSince(ctx, full.Version)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(delta.RemovedDomains, claim.ID) || !slices.ContainsFunc(delta.Domains, func(r tenant.DomainRecord) bool { return r.ID == d.ID }) {
				t.Fatalf("delta removes %v and carries %d domains; want %d removed and %d there", delta.RemovedDomains, len(delta.Domains), claim.ID, d.ID)
			}
		})
	}
}

// TestTakeOverBesideCreateDoesNotDeadlock: on PostgreSQL every tenant
// write bumps the config version's row last, after the rows it checks
// (a create locks its reseller's row for the quota). A take-over bumped
// the version for the claim it removed before its create's quota check:
// beside a create of the same reseller that held the reseller's row,
// each waited for the other's lock and PostgreSQL aborted one of them.
func TestTakeOverBesideCreateDoesNotDeadlock(t *testing.T) {
	ctx := context.Background()
	f := newQuotaFixture(t, openPostgres(t))
	since := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	claim := tenant.DomainRecord{CustomerID: f.cust[0], Name: "wanted.example", Route: "192.0.2.1:25", TLS: "opportunistic",
		Status: tenant.StatusPending, VerifyToken: "t", PendingSince: since}
	if _, err := f.ts.CreateDomain(ctx, &claim, quotaAudit); err != nil {
		t.Fatal(err)
	}
	// A create of r2's, in its order: the reseller's row, then the version's.
	create, err := f.ts.st.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer create.Rollback()
	if _, err := create.ExecContext(ctx, `SELECT id FROM resellers WHERE id = $1 FOR NO KEY UPDATE`, f.r2.ID); err != nil {
		t.Fatal(err)
	}
	took := make(chan error, 1)
	go func() {
		d := tenant.DomainRecord{CustomerID: f.cust[1], Name: "wanted.example", Route: "192.0.2.2:25", TLS: "opportunistic",
			Status: tenant.StatusPending, VerifyToken: "u"}
		_, err := f.ts.TakeOverDomain(ctx, &d, claim.ID, since.Add(time.Hour), admin.AuditEntry{Actor: "ownership", Action: "lapse"}, quotaAudit)
		took <- err
	}()
	// The take-over waits for the reseller's row.
	for waiting := 0; waiting == 0; time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-took:
			t.Fatalf("the take-over ended without waiting for the reseller's row: %v", err)
		default:
		}
		if err := create.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_locks WHERE NOT granted
			AND pid IN (SELECT pid FROM pg_stat_activity WHERE datname = current_database())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := create.ExecContext(ctx, `UPDATE tenant_version SET version = version + 1 WHERE id = 1`); err != nil {
		t.Fatalf("the create bumping the version: %v", err)
	}
	if err := create.Commit(); err != nil {
		t.Fatalf("the create: %v", err)
	}
	if err := <-took; err != nil {
		t.Fatalf("the take-over beside the create: %v", err)
	}
}

// TestConcurrentDomainAndCustomerDeletesDoNotDeadlock: on PostgreSQL, a
// domain's delete and its customer's, made at the same moment on two
// nodes, run one after the other: the domain goes, and the customer goes
// too or is refused for the domain it still held (409). The domain's
// delete locked its row for update, then its customer's for share, while
// the customer's delete held its own row and, checking its foreign key,
// waited for the domain's: they deadlocked, PostgreSQL aborted one, and
// its caller got 503, the database unavailable.
func TestConcurrentDomainAndCustomerDeletesDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	nodes := twoPostgresNodes(t)
	f := newQuotaFixture(t, nodes[0].st)
	f.ts.DefaultQuota = tenant.Quota{}
	for round := range 200 {
		c := tenant.Customer{ResellerID: f.r1.ID, Name: "c", MapKey: fmt.Sprintf("k%d", round)}
		if _, err := f.ts.CreateCustomer(ctx, &c, quotaAudit); err != nil {
			t.Fatal(err)
		}
		d, err := f.domain(ctx, c.ID, fmt.Sprintf("d%d.example", round))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			if _, err := nodes[0].DeleteDomain(ctx, d.ID, d.ResellerID, quotaAudit); err != nil {
				t.Errorf("round %d: deleting the domain: %v", round, err)
			}
		})
		wg.Go(func() {
			<-start
			if _, err := nodes[1].DeleteCustomer(ctx, c.ID, c.ResellerID, quotaAudit); err != nil && !errors.Is(err, tenant.ErrConflict) {
				t.Errorf("round %d: deleting the customer: %v, want done or a conflict", round, err)
			}
		})
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
	}
}
