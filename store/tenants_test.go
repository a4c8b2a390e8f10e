package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestTenantStore is the admin.Store contract, run on both dialects.
func TestTenantStore(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.open(t)
			testTenantContract(t, NewTenants(st))
		})
	}
}

func testTenantContract(t *testing.T, ts *Tenants) {
	ctx := context.Background()
	audit := func(action string) admin.AuditEntry {
		return admin.AuditEntry{Actor: "test", Action: action, Object: "x"}
	}
	version := func() uint64 {
		t.Helper()
		d, err := ts.Load(ctx)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return d.Version
	}
	if v := version(); v != 0 {
		t.Fatalf("fresh store version %d, want 0", v)
	}

	tag := 4.5
	evil := `x'); DROP TABLE domains; -- "%_\`
	r := tenant.Reseller{Name: evil, Policy: tenant.Policy{TagScore: &tag}}
	v1, err := ts.CreateReseller(ctx, &r, audit("create"))
	if err != nil || r.ID == 0 || v1 != 1 {
		t.Fatalf("CreateReseller: id %d version %d err %v", r.ID, v1, err)
	}
	r2 := tenant.Reseller{Name: "other"}
	if _, err := ts.CreateReseller(ctx, &r2, audit("create")); err != nil {
		t.Fatal(err)
	}
	got, err := ts.GetReseller(ctx, r.ID)
	if err != nil || got.Name != evil || got.Policy.TagScore == nil || *got.Policy.TagScore != tag {
		t.Fatalf("GetReseller = %+v, %v; want the name verbatim and the policy", got, err)
	}
	if _, err := ts.GetReseller(ctx, 9999); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("GetReseller(missing) err %v, want ErrNotFound", err)
	}

	c := tenant.Customer{ResellerID: r.ID, Name: "cust"}
	if _, err := ts.CreateCustomer(ctx, &c, audit("create")); err != nil {
		t.Fatal(err)
	}
	d := tenant.DomainRecord{CustomerID: c.ID, Name: "example.org", Route: "127.0.0.1:25", TLS: "none"}
	if _, err := ts.CreateDomain(ctx, &d, audit("create")); err != nil {
		t.Fatal(err)
	}
	dup := tenant.DomainRecord{CustomerID: c.ID, Name: "example.org", Route: "127.0.0.1:25", TLS: "none"}
	if _, err := ts.CreateDomain(ctx, &dup, audit("create")); !errors.Is(err, tenant.ErrConflict) {
		t.Fatalf("duplicate domain err %v, want ErrConflict", err)
	}
	if _, err := ts.DeleteCustomer(ctx, c.ID, c.ResellerID, audit("delete")); !errors.Is(err, tenant.ErrConflict) {
		t.Fatalf("deleting a customer with domains: err %v, want ErrConflict", err)
	}
	gd, err := ts.GetDomain(ctx, d.ID)
	if err != nil || gd.ResellerID != r.ID || gd.Name != "example.org" {
		t.Fatalf("GetDomain = %+v, %v", gd, err)
	}
	testRouteRules(t, ts, d, audit("update"))
	testLapsedClaims(t, ts, c.ID, audit("lapse"))
	testFreedNames(t, ts, c.ID, audit("free"))

	// Recipients: import is idempotent, replace sets the list exactly.
	added, _, err := ts.AddRecipients(ctx, d.ID, d.ResellerID, []string{"a", "b", "o'brien"}, false, audit("import"))
	if err != nil || added != 3 {
		t.Fatalf("AddRecipients = %d, %v; want 3", added, err)
	}
	added, _, err = ts.AddRecipients(ctx, d.ID, d.ResellerID, []string{"a", "c"}, false, audit("import"))
	if err != nil || added != 1 {
		t.Fatalf("re-import = %d, %v; want 1 new", added, err)
	}
	if _, err := ts.GetRecipient(ctx, d.ID, "o'brien"); err != nil {
		t.Fatalf("GetRecipient with a quote: %v", err)
	}
	if _, err := ts.DeleteRecipient(ctx, d.ID, d.ResellerID, "zz", audit("delete")); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("DeleteRecipient(missing) err %v", err)
	}
	if _, _, err := ts.AddRecipients(ctx, d.ID, d.ResellerID, []string{"x"}, true, audit("replace")); err != nil {
		t.Fatal(err)
	}

	// Filters and keyset pages; LIKE metacharacters match literally.
	for _, tc := range []struct {
		f    admin.Filter
		want int
	}{
		{admin.Filter{}, 2},
		{admin.Filter{Name: "OTH"}, 1},
		{admin.Filter{Name: "%"}, 1},
		{admin.Filter{Name: "_"}, 1},
		{admin.Filter{Name: "nomatch"}, 0},
		{admin.Filter{ResellerID: r2.ID}, 1},
		{admin.Filter{Limit: 1}, 1},
		{admin.Filter{After: r.ID}, 1},
	} {
		l, err := ts.ListResellers(ctx, tc.f)
		if err != nil || len(l) != tc.want {
			t.Errorf("ListResellers(%+v) = %d rows, %v; want %d", tc.f, len(l), err, tc.want)
		}
	}
	if l, err := ts.ListDomains(ctx, admin.Filter{ResellerID: r2.ID}); err != nil || len(l) != 0 {
		t.Errorf("ListDomains(other reseller) = %v, %v; want none", l, err)
	}

	data, err := ts.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rc := data.Recipients[d.ID]; len(data.Domains) != 1 || rc.Len() != 1 || !rc.Has("x") {
		t.Fatalf("Load = %+v", data)
	}
	if data.Version <= v1 {
		t.Fatalf("version %d did not move past %d", data.Version, v1)
	}

	// Tokens: stored by hash, operator tokens have no reseller, and they
	// do not bump the config version.
	before := version()
	tok := admin.Token{Name: "ops", Hash: admin.HashToken("secret")}
	if err := ts.CreateToken(ctx, &tok, audit("create")); err != nil {
		t.Fatal(err)
	}
	if got, err := ts.TokenByHash(ctx, admin.HashToken("secret")); err != nil || got.ID != tok.ID || got.ResellerID != 0 {
		t.Fatalf("TokenByHash = %+v, %v", got, err)
	}
	if version() != before {
		t.Fatalf("a token changed the tenant config version")
	}
	// An expiry is kept to the microsecond; none reads back as none.
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	short := admin.Token{Name: "contractor", Hash: admin.HashToken("short"), Expires: expires}
	if err := ts.CreateToken(ctx, &short, audit("create")); err != nil {
		t.Fatal(err)
	}
	if got, err := ts.GetToken(ctx, short.ID); err != nil || !got.Expires.Equal(expires) {
		t.Fatalf("GetToken = %+v, %v, want expires %v", got, err, expires)
	}
	if got, err := ts.GetToken(ctx, tok.ID); err != nil || !got.Expires.IsZero() {
		t.Fatalf("GetToken = %+v, %v, want no expiry", got, err)
	}

	// Deleting a domain cascades its recipients; the reseller then goes
	// once its customer has.
	if _, err := ts.DeleteDomain(ctx, d.ID, d.ResellerID, audit("delete")); err != nil {
		t.Fatal(err)
	}
	// A write of its recipients that read the domain before the delete
	// (an import racing it on another node) finds it gone, not a conflict
	// ("refers to a missing one", 409), and logs no change.
	gone := version()
	for _, w := range []struct {
		locals  []string
		replace bool
	}{{[]string{"late"}, false}, {[]string{"late"}, true}, {nil, true}} {
		if _, _, err := ts.AddRecipients(ctx, d.ID, d.ResellerID, w.locals, w.replace, audit("import")); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("AddRecipients %v (replace %v) to a deleted domain: %v, want ErrNotFound", w.locals, w.replace, err)
		}
	}
	if _, err := ts.DeleteRecipient(ctx, d.ID, d.ResellerID, "x", audit("delete")); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("DeleteRecipient of a deleted domain: %v, want ErrNotFound", err)
	}
	if v := version(); v != gone {
		t.Errorf("recipient writes to a deleted domain moved the version from %d to %d", gone, v)
	}
	if _, err := ts.DeleteCustomer(ctx, c.ID, c.ResellerID, audit("delete")); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.DeleteReseller(ctx, r.ID, audit("delete")); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.DeleteReseller(ctx, r.ID, audit("delete")); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("second delete err %v, want ErrNotFound", err)
	}
	entries, err := ts.ListAudit(ctx, admin.Filter{Limit: 1000})
	if err != nil || len(entries) < 10 || entries[0].Action != "delete" {
		t.Fatalf("ListAudit = %d entries (first %+v), %v", len(entries), entries, err)
	}
}

// testLapsedClaims: a pending domain is found by name with the time its
// claim began, and DeleteLapsedClaim removes it only while it is still
// pending since before the given time.
func testLapsedClaims(t *testing.T, ts *Tenants, customerID int64, a admin.AuditEntry) {
	ctx := context.Background()
	since := time.Date(2026, 12, 1, 10, 0, 0, 123000, time.UTC)
	pending := tenant.DomainRecord{CustomerID: customerID, Name: "claimed.example", Route: "127.0.0.1:25", TLS: "none",
		Status: tenant.StatusPending, VerifyToken: "tok", PendingSince: since}
	if _, err := ts.CreateDomain(ctx, &pending, a); err != nil {
		t.Fatal(err)
	}
	got, err := ts.DomainByName(ctx, "claimed.example")
	if err != nil || got.ID != pending.ID || !got.PendingSince.Equal(since) {
		t.Fatalf("DomainByName = %+v, %v; want id %d pending since %v", got, err, pending.ID, since)
	}
	if _, err := ts.DomainByName(ctx, "unclaimed.example"); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("DomainByName(missing) err %v, want ErrNotFound", err)
	}
	if _, err := ts.DeleteLapsedClaim(ctx, pending.ID, since, a); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("DeleteLapsedClaim of a claim not older: err %v, want ErrNotFound", err)
	}
	// Proven: the claim never lapses, and no time is kept for it.
	pending.Status = tenant.StatusActive
	if _, err := ts.UpdateDomain(ctx, &pending, pending.ResellerID, a); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.DeleteLapsedClaim(ctx, pending.ID, since.Add(time.Hour), a); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("DeleteLapsedClaim of an active domain: err %v, want ErrNotFound", err)
	}
	if got, _ := ts.GetDomain(ctx, pending.ID); !got.PendingSince.IsZero() {
		t.Fatalf("active domain pending since %v", got.PendingSince)
	}
	pending.Status, pending.PendingSince = tenant.StatusPending, since
	if _, err := ts.UpdateDomain(ctx, &pending, pending.ResellerID, a); err != nil {
		t.Fatal(err)
	}
	takenOver := func(when string, want bool) {
		t.Helper()
		if got, err := takenOver(ctx, ts.st.DB, "claimed.example"); err != nil || got != want {
			t.Fatalf("%s: TakenOver = %v, %v; want %v", when, got, err, want)
		}
	}
	takenOver("before any lapse", false)
	if _, err := ts.DeleteLapsedClaim(ctx, pending.ID, since.Add(time.Microsecond), a); err != nil {
		t.Fatalf("DeleteLapsedClaim of a lapsed claim: %v", err)
	}
	if _, err := ts.GetDomain(ctx, pending.ID); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("lapsed claim still there: %v", err)
	}
	takenOver("after the lapse", true)
	next := tenant.DomainRecord{CustomerID: customerID, Name: "claimed.example", Route: "127.0.0.1:25", TLS: "none",
		Status: tenant.StatusPending, VerifyToken: "tok2", PendingSince: since}
	if _, err := ts.CreateDomain(ctx, &next, a); err != nil {
		t.Fatal(err)
	}
	takenOver("claimed again", true)
	next.Status = tenant.StatusActive
	if _, err := ts.UpdateDomain(ctx, &next, next.ResellerID, a); err != nil {
		t.Fatal(err)
	}
	takenOver("once active", false)
	if _, err := ts.DeleteDomain(ctx, next.ID, next.ResellerID, a); err != nil {
		t.Fatal(err)
	}
}

// testFreedNames: an active domain's name, once deleted or renamed away,
// is given again only by a TXT proof (its MX records still point at the
// cluster for the customer who held it); a pending domain's is not
// marked, and the next active domain of the name ends the rule.
func testFreedNames(t *testing.T, ts *Tenants, customerID int64, a admin.AuditEntry) {
	ctx := context.Background()
	create := func(name, status string) *tenant.DomainRecord {
		t.Helper()
		d := &tenant.DomainRecord{CustomerID: customerID, Name: name, Route: "127.0.0.1:25", TLS: "none", Status: status,
			VerifyToken: "tok", PendingSince: time.Now()}
		if _, err := ts.CreateDomain(ctx, d, a); err != nil {
			t.Fatal(err)
		}
		return d
	}
	takenOver := func(name string, want bool) {
		t.Helper()
		if got, err := takenOver(ctx, ts.st.DB, name); err != nil || got != want {
			t.Fatalf("TakenOver(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	held, claim := create("held.example", tenant.StatusActive), create("claim.example", tenant.StatusPending)
	if _, err := ts.DeleteDomain(ctx, held.ID, held.ResellerID, a); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.DeleteDomain(ctx, claim.ID, claim.ResellerID, a); err != nil {
		t.Fatal(err)
	}
	takenOver("held.example", true)
	takenOver("claim.example", false)

	renamed := create("old.example", tenant.StatusActive)
	renamed.Name = "new.example"
	if _, err := ts.UpdateDomain(ctx, renamed, renamed.ResellerID, a); err != nil {
		t.Fatal(err)
	}
	takenOver("old.example", true)
	takenOver("new.example", false)
	renamed.Route = "127.0.0.2:25" // an edit that keeps the name frees nothing
	if _, err := ts.UpdateDomain(ctx, renamed, renamed.ResellerID, a); err != nil {
		t.Fatal(err)
	}
	takenOver("new.example", false)

	again := create("held.example", tenant.StatusActive)
	takenOver("held.example", false)
	for _, d := range []*tenant.DomainRecord{renamed, again} {
		if _, err := ts.DeleteDomain(ctx, d.ID, d.ResellerID, a); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTenantsUnavailable: a store that cannot be reached answers
// ErrUnavailable, the API's 503.
func TestTenantsUnavailable(t *testing.T) {
	st, err := Open(Config{Driver: Postgres, DSN: "postgres://u@127.0.0.1:1/x?connect_timeout=1", Timeout: 2e9}, "")
	if err != nil {
		t.Fatalf("Open: %v (an unreachable database is not an error until used)", err)
	}
	defer st.Close()
	ts := NewTenants(st)
	if _, err := ts.Load(context.Background()); !errors.Is(err, tenant.ErrUnavailable) {
		t.Fatalf("Load err %v, want ErrUnavailable", err)
	}
}

// TestClaimGivenUpKeepsItsClock: a pending domain deleted or renamed away
// leaves its reseller's claim clock behind; the reseller's next pending
// domain of the name is dated from it (another reseller's is not), and the
// name becoming active forgets it.
func TestClaimGivenUpKeepsItsClock(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ts := NewTenants(tc.open(t))
			a := admin.AuditEntry{Actor: "test", Action: "x", Object: "x"}
			var custs []int64
			for _, name := range []string{"holder", "other"} {
				_, c := resellerWithCustomer(t, ts, name)
				custs = append(custs, c.ID)
			}
			t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
			claim := func(cust int64, name string, at time.Time) tenant.DomainRecord {
				t.Helper()
				d := tenant.DomainRecord{CustomerID: cust, Name: name, Route: "192.0.2.1:25", TLS: "opportunistic",
					Status: tenant.StatusPending, VerifyToken: "tok", PendingSince: at}
				if _, err := ts.CreateDomain(ctx, &d, a); err != nil {
					t.Fatal(err)
				}
				return d
			}
			since := func(id int64) time.Time {
				t.Helper()
				d, err := ts.GetDomain(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return d.PendingSince
			}

			d := claim(custs[0], "wanted.example", t0)
			if _, err := ts.DeleteDomain(ctx, d.ID, d.ResellerID, a); err != nil {
				t.Fatal(err)
			}
			d = claim(custs[0], "wanted.example", t0.Add(48*time.Hour))
			if !d.PendingSince.Equal(t0) || !since(d.ID).Equal(t0) {
				t.Fatalf("claimed again after a delete: since %v (stored %v), want %v", d.PendingSince, since(d.ID), t0)
			}
			d.Name = "elsewhere.example"
			if _, err := ts.UpdateDomain(ctx, &d, d.ResellerID, a); err != nil {
				t.Fatal(err)
			}
			d.Name, d.PendingSince = "wanted.example", t0.Add(60*time.Hour)
			if _, err := ts.UpdateDomain(ctx, &d, d.ResellerID, a); err != nil {
				t.Fatal(err)
			}
			if !d.PendingSince.Equal(t0) || !since(d.ID).Equal(t0) {
				t.Fatalf("renamed away and back: since %v (stored %v), want %v", d.PendingSince, since(d.ID), t0)
			}
			if _, err := ts.DeleteDomain(ctx, d.ID, d.ResellerID, a); err != nil {
				t.Fatal(err)
			}
			// Another reseller's claim has a clock of its own.
			t1 := t0.Add(70 * time.Hour)
			o := claim(custs[1], "wanted.example", t1)
			if !since(o.ID).Equal(t1) {
				t.Fatalf("another reseller's claim: since %v, want %v", since(o.ID), t1)
			}
			// Proven, the name starts afresh for everyone.
			o.Status, o.VerifyToken = tenant.StatusActive, ""
			if _, err := ts.UpdateDomain(ctx, &o, o.ResellerID, a); err != nil {
				t.Fatal(err)
			}
			if _, err := ts.DeleteDomain(ctx, o.ID, o.ResellerID, a); err != nil {
				t.Fatal(err)
			}
			t2 := t0.Add(100 * time.Hour)
			if d := claim(custs[0], "wanted.example", t2); !since(d.ID).Equal(t2) {
				t.Fatalf("the holder's claim after a proof: since %v, want %v", since(d.ID), t2)
			}

			// A claim lost to a takeover ended unproven as one given up
			// did: two resellers taking the name from each other in turn
			// (one tenant's two accounts) must not each start afresh.
			d = claim(custs[0], "lost.example", t0)
			if _, err := ts.DeleteLapsedClaim(ctx, d.ID, t0.Add(time.Microsecond), a); err != nil {
				t.Fatal(err)
			}
			// Claimed again, the name keeps its first token too: a
			// claim dated from a lapsed clock may be taken over at once,
			// and a new token each time left the customer's published
			// TXT record proving none of them.
			again := tenant.DomainRecord{CustomerID: custs[0], Name: "lost.example", Route: "192.0.2.1:25", TLS: "opportunistic",
				Status: tenant.StatusPending, VerifyToken: "second", PendingSince: t2}
			if _, err := ts.CreateDomain(ctx, &again, a); err != nil {
				t.Fatal(err)
			}
			stored, err := ts.GetDomain(ctx, again.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !stored.PendingSince.Equal(t0) || stored.VerifyToken != "tok" || again.VerifyToken != "tok" {
				t.Fatalf("claimed again after losing the name to a takeover: since %v, token %q (answered %q); want %v, %q",
					stored.PendingSince, stored.VerifyToken, again.VerifyToken, t0, "tok")
			}
			// An edit of the claim changes neither.
			stored.Route = "192.0.2.9:25"
			if _, err := ts.UpdateDomain(ctx, &stored, stored.ResellerID, a); err != nil {
				t.Fatal(err)
			}
			if got, err := ts.GetDomain(ctx, again.ID); err != nil || !got.PendingSince.Equal(t0) || got.VerifyToken != "tok" {
				t.Fatalf("after an edit: since %v, token %q, %v; want %v, %q", got.PendingSince, got.VerifyToken, err, t0, "tok")
			}
		})
	}
}

// TestClaimOfANodeBeforePendingSince: during a rolling upgrade a node from
// before tenants schema 5 still creates pending domains, leaving
// pending_since_us at its default 0. Such a claim is pending since its
// row's last update, as the migration dated those pending then: read as
// pending since 1970, another reseller took the name over at once
// instead of after tenants.pending_claim_ttl.
func TestClaimOfANodeBeforePendingSince(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ts := NewTenants(tc.open(t))
			a := admin.AuditEntry{Actor: "test", Action: "x", Object: "x"}
			r, c := resellerWithCustomer(t, ts, "holder")
			d := tenant.DomainRecord{CustomerID: c.ID, Name: "claimed.example", Route: "192.0.2.1:25", TLS: "none",
				Status: tenant.StatusPending, VerifyToken: "tok", PendingSince: time.Now()}
			if _, err := ts.CreateDomain(ctx, &d, a); err != nil {
				t.Fatal(err)
			}
			if _, err := ts.st.DB.ExecContext(ctx, `UPDATE domains SET pending_since_us = 0 WHERE id = $1`, d.ID); err != nil {
				t.Fatal(err)
			}
			got, err := ts.DomainByName(ctx, d.Name)
			if err != nil || !got.PendingSince.Equal(got.Updated) {
				t.Fatalf("DomainByName = pending since %v (updated %v), %v; want since its update", got.PendingSince, got.Updated, err)
			}
			lapsedBefore := time.Now().Add(-72 * time.Hour)
			if _, err := ts.DeleteLapsedClaim(ctx, d.ID, lapsedBefore, a); !errors.Is(err, tenant.ErrNotFound) {
				t.Fatalf("DeleteLapsedClaim of a fresh claim: err %v, want ErrNotFound", err)
			}
			if _, err := ts.DeleteDomain(ctx, d.ID, r.ID, a); err != nil {
				t.Fatal(err)
			}
			var since int64
			if err := ts.st.DB.QueryRowContext(ctx, `SELECT since_us FROM domain_claims WHERE name = $1`, d.Name).Scan(&since); err != nil ||
				!fromMicros(since).Equal(got.Updated) {
				t.Fatalf("claim given up remembered as since %v, %v; want %v", fromMicros(since), err, got.Updated)
			}
		})
	}
}
