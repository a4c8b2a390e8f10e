package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

// createAs posts a domain as who and returns the status and the answer.
func (f *apiFixture) createAs(who, name string, customerID int64) (int, tenant.DomainRecord, string) {
	f.t.Helper()
	code, body := f.do(who, "POST", "/api/v1/domains", map[string]any{"name": name, "customer_id": customerID, "route": "192.0.2.1:25"})
	var d tenant.DomainRecord
	if code == 201 {
		if err := json.Unmarshal(body, &d); err != nil {
			f.t.Fatal(err)
		}
	}
	return code, d, string(body)
}

func (f *apiFixture) status(who string, id int64, action string) (int, tenant.DomainRecord) {
	f.t.Helper()
	code, body := f.do(who, "POST", fmt.Sprintf("/api/v1/domains/%d/%s", id, action), nil)
	var d tenant.DomainRecord
	if code == 200 {
		if err := json.Unmarshal(body, &d); err != nil {
			f.t.Fatal(err)
		}
	}
	return code, d
}

// TestAPIDomainOwnership: a reseller's domain is pending until its TXT
// token or its MX records (served by the loopback DNS server) or the
// operator prove it; reserved names are refused neutrally.
func TestAPIDomainOwnership(t *testing.T) {
	f := newAPIFixture(t)

	t.Run("operator-created is active", func(t *testing.T) {
		code, d, body := f.createAs("operator", "op.example", f.custA.ID)
		if code != 201 || d.Status != tenant.StatusActive {
			t.Fatalf("create = %d %s, want 201 active", code, body)
		}
	})

	t.Run("TXT token", func(t *testing.T) {
		code, d, body := f.createAs("own", "txt.example", f.custA.ID)
		if code != 201 || d.Status != tenant.StatusPending || len(d.VerifyToken) < 16 {
			t.Fatalf("create = %d %s, want 201 pending with a token", code, body)
		}
		// The request cannot activate it itself.
		if code, out := f.do("own", "PATCH", fmt.Sprintf("/api/v1/domains/%d", d.ID), map[string]any{"status": "active"}); code != 400 {
			t.Fatalf("PATCH status = %d %s, want 400", code, out)
		}
		if code, out := f.do("own", "PATCH", fmt.Sprintf("/api/v1/domains/%d", d.ID), map[string]any{"route": "192.0.2.2:25"}); code != 200 || !strings.Contains(string(out), `"pending"`) {
			t.Fatalf("PATCH route = %d %s, want 200 still pending", code, out)
		}
		if _, got := f.status("own", d.ID, "verify"); got.Status != tenant.StatusPending {
			t.Fatalf("verify without a record: %s, want pending", got.Status)
		}
		f.dns.AddTXT("txt.example", "mxgrid-verify=wrong")
		if _, got := f.status("own", d.ID, "verify"); got.Status != tenant.StatusPending {
			t.Fatalf("verify with a wrong token: %s, want pending", got.Status)
		}
		f.dns.AddTXT("txt.example", admin.VerifyPrefix+d.VerifyToken)
		if code, got := f.status("own", d.ID, "verify"); code != 200 || got.Status != tenant.StatusActive {
			t.Fatalf("verify with the token = %d %s, want 200 active", code, got.Status)
		}
		// Another reseller can neither see nor check it.
		if code, _ := f.status("other", d.ID, "verify"); code != 404 {
			t.Fatalf("verify as another reseller = %d, want 404", code)
		}
	})

	t.Run("MX records", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			mx     []string
			active bool
		}{
			{"mx-all.example", []string{"10 MX1.mxgrid.test.", "10 mx2.mxgrid.test.", "20 backup.other.test."}, true},
			{"mx-mixed.example", []string{"10 mx1.mxgrid.test.", "10 mx.other.test."}, false},
			{"mx-backup.example", []string{"10 mx.other.test.", "20 mx1.mxgrid.test."}, false},
		} {
			_, d, body := f.createAs("own", tc.name, f.custA.ID)
			if d.Status != tenant.StatusPending {
				t.Fatalf("%s: create %s, want pending", tc.name, body)
			}
			for _, mx := range tc.mx {
				f.dns.Add(t, tc.name+". 300 IN MX "+mx)
			}
			if _, got := f.status("own", d.ID, "verify"); (got.Status == tenant.StatusActive) != tc.active {
				t.Errorf("%s: status %s, want active=%v", tc.name, got.Status, tc.active)
			}
		}
	})

	// A wildcard MX at the cluster proves no name under it: the customer
	// holding the parent would otherwise hand every name below to any
	// reseller. The name with its own MX and the TXT token still prove.
	t.Run("wildcard MX", func(t *testing.T) {
		f.dns.Add(t, "*.wild.example. 300 IN MX 10 mx1.mxgrid.test.", "wild.example. 300 IN MX 10 mx1.mxgrid.test.")
		_, parent, _ := f.createAs("own", "wild.example", f.custA.ID)
		if _, got := f.status("own", parent.ID, "verify"); got.Status != tenant.StatusActive {
			t.Fatalf("wild.example with its own MX: %s, want active", got.Status)
		}
		_, d, _ := f.createAs("own", "shop.wild.example", f.custA.ID)
		if _, got := f.status("own", d.ID, "verify"); got.Status != tenant.StatusPending {
			t.Fatalf("shop.wild.example under a wildcard MX: %s, want pending", got.Status)
		}
		f.dns.AddTXT("shop.wild.example", admin.VerifyPrefix+d.VerifyToken)
		if _, got := f.status("own", d.ID, "verify"); got.Status != tenant.StatusActive {
			t.Fatalf("shop.wild.example with its TXT token: %s, want active", got.Status)
		}
	})

	t.Run("operator approval", func(t *testing.T) {
		_, d, _ := f.createAs("own", "approve.example", f.custA.ID)
		if code, _ := f.status("own", d.ID, "approve"); code != 403 {
			t.Fatalf("approve as the reseller = %d, want 403", code)
		}
		if code, got := f.status("operator", d.ID, "approve"); code != 200 || got.Status != tenant.StatusActive {
			t.Fatalf("approve as operator = %d %s, want 200 active", code, got.Status)
		}
	})

	t.Run("periodic re-check", func(t *testing.T) {
		_, d, _ := f.createAs("own", "later.example", f.custA.ID)
		f.dns.AddTXT("later.example", admin.VerifyPrefix+d.VerifyToken)
		n, err := f.svc.VerifyPending(context.Background(), 100)
		if err != nil || n != 1 {
			t.Fatalf("VerifyPending = %d, %v; want 1", n, err)
		}
	})

	t.Run("reserved names", func(t *testing.T) {
		for _, name := range []string{"gmail.com", "mail.outlook.com", "reserved.test", "mxgrid.test", "node.mxgrid.test"} {
			code, _, body := f.createAs("own", name, f.custA.ID)
			if code != 409 || !strings.Contains(body, "this domain name is not available") {
				t.Errorf("%s: %d %s, want 409 not available", name, code, body)
			}
		}
		// The operator may.
		if code, _, body := f.createAs("operator", "reserved.test", f.custA.ID); code != 201 {
			t.Errorf("operator reserved.test: %d %s", code, body)
		}
	})
}

// TestAPIMXHostsReserveTheirRegisteredDomain: an MX host's registered
// domain and its subdomains are reserved, found by the public suffix
// list. Before, the last two labels stood for it: mx1.filter.co.uk
// reserved co.uk, and no reseller could create any name under it.
func TestAPIMXHostsReserveTheirRegisteredDomain(t *testing.T) {
	f := newAPIFixture(t, func(o *admin.ServiceOptions) {
		o.Ownership.MXHosts = []string{"mx1.filter.co.uk", "mx2.mxgrid.test"}
	})
	for _, tc := range []struct {
		name string
		want int
	}{
		{"filter.co.uk", 409},
		{"in.filter.co.uk", 409},
		{"mxgrid.test", 409},
		{"bakery.co.uk", 201},
		{"shop.bakery.co.uk", 201},
	} {
		if code, _, body := f.createAs("own", tc.name, f.custA.ID); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
}

// TestAPIConflictsRevealNothing: a name held by another reseller gets the
// same answer as a reserved one, naming neither the holder nor the name.
func TestAPIConflictsRevealNothing(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	custB, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: f.resB.ID, Name: "customer B"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateDomain(ctx, f.op, tenant.DomainRecord{CustomerID: custB.ID, Name: "b-secret.example", Route: "192.0.2.1:25"}); err != nil {
		t.Fatal(err)
	}
	code, _, taken := f.createAs("own", "b-secret.example", f.custA.ID)
	_, _, reserved := f.createAs("own", "gmail.com", f.custA.ID)
	if code != 409 || taken != reserved {
		t.Fatalf("taken name: %d %q; reserved name: %q; want the same 409", code, taken, reserved)
	}
	for _, leak := range []string{"b-secret", "reseller B", "customer B", "exists"} {
		if strings.Contains(taken, leak) {
			t.Errorf("answer %q reveals %q", taken, leak)
		}
	}
	// Renaming onto it answers the same.
	_, mine, _ := f.createAs("own", "mine.example", f.custA.ID)
	code, out := f.do("own", "PATCH", fmt.Sprintf("/api/v1/domains/%d", mine.ID), map[string]any{"name": "b-secret.example"})
	if code != 409 || string(out) != taken {
		t.Fatalf("rename onto a taken name: %d %s, want %s", code, out, taken)
	}
	// Panel logins: an email of another reseller's user.
	if _, err := f.svc.CreateUser(ctx, f.op, f.resB.ID, "boss@b-secret.example", "a long enough password 1"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.CreateUser(ctx, admin.Principal{ResellerID: f.resA.ID, Actor: "a"}, f.resA.ID, "boss@b-secret.example", "a long enough password 2")
	if err == nil || !strings.Contains(err.Error(), "this email address is not available") || strings.Contains(err.Error(), "boss@") {
		t.Fatalf("duplicate email: %v, want neutral not available", err)
	}
}

// newLapseFixture is the API fixture with the ownership clock at now
// (advanced by the test) and a customer of reseller B, for claims that
// lapse.
func newLapseFixture(t *testing.T) (*apiFixture, *atomic.Int64, tenant.Customer) {
	t.Helper()
	now := new(atomic.Int64)
	now.Store(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	f := newAPIFixture(t, func(o *admin.ServiceOptions) {
		o.Ownership.Now = func() time.Time { return time.Unix(0, now.Load()).UTC() }
	})
	custB, err := f.svc.CreateCustomer(context.Background(), f.op, tenant.Customer{ResellerID: f.resB.ID, Name: "customer B"})
	if err != nil {
		t.Fatal(err)
	}
	return f, now, custB
}

// TestAPILapsedClaim: a reseller's claim on a name keeps it from the
// others only while it is fresh or proven. Once unproven for longer than
// the claim TTL, another reseller's create or rename takes the name over
// (pending, with a token of its own) and the old claim is gone, audited to
// its holder. A proven domain never lapses, and the operator never takes
// a claim over.
func TestAPILapsedClaim(t *testing.T) {
	f, now, custB := newLapseFixture(t)
	later := func(d time.Duration) { now.Add(int64(d)) }
	ctx := context.Background()
	_, squat, _ := f.createAs("own", "wanted.example", f.custA.ID)
	if want := time.Unix(0, now.Load()); !squat.PendingSince.Equal(want) {
		t.Fatalf("pending_since %v, want %v", squat.PendingSince, want)
	}
	_, proven, _ := f.createAs("own", "proven.example", f.custA.ID)
	f.dns.AddTXT("proven.example", admin.VerifyPrefix+proven.VerifyToken)
	if code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/domains/%d/verify", proven.ID), nil); code != 200 ||
		!strings.Contains(string(out), `"active"`) || strings.Contains(string(out), "pending_since") {
		t.Fatalf("proven.example: %d %s, want active without pending_since", code, out)
	}
	_, renamed, _ := f.createAs("other", "b-first.example", custB.ID)

	later(tenant.DefaultPendingClaimTTL - time.Minute)
	if code, _, body := f.createAs("other", "wanted.example", custB.ID); code != 409 {
		t.Fatalf("a fresh claim: %d %s, want 409", code, body)
	}

	later(2 * time.Minute)
	for _, name := range []string{"wanted.example", "proven.example"} {
		if code, _, body := f.createAs("operator", name, custB.ID); code != 409 {
			t.Fatalf("operator on %s: %d %s, want 409", name, code, body)
		}
		if code, _, body := f.createAs("own", name, f.custA.ID); code != 409 {
			t.Fatalf("the holder again on %s: %d %s, want 409", name, code, body)
		}
	}
	if code, _, body := f.createAs("other", "proven.example", custB.ID); code != 409 {
		t.Fatalf("a proven domain: %d %s, want 409", code, body)
	}
	code, taken, body := f.createAs("other", "wanted.example", custB.ID)
	if code != 201 || taken.Status != tenant.StatusPending || taken.VerifyToken == squat.VerifyToken {
		t.Fatalf("a lapsed claim: %d %s, want 201 pending with a new token", code, body)
	}
	if code, _ := f.do("own", "GET", fmt.Sprintf("/api/v1/domains/%d", squat.ID), nil); code != 404 {
		t.Fatalf("the lapsed claim is still there: %d", code)
	}
	if _, out := f.do("own", "GET", "/api/v1/audit", nil); !strings.Contains(string(out), `"lapse"`) || strings.Contains(string(out), "customer B") {
		t.Fatalf("the holder's audit trail: %s, want the lapse without naming the new holder", out)
	}

	// The customer's MX at the cluster may mean the reseller whose claim
	// lapsed: only the new claimant's TXT token proves the name now.
	f.dns.Add(t, "wanted.example. 300 IN MX 10 mx1.mxgrid.test.")
	if _, got := f.status("other", taken.ID, "verify"); got.Status != tenant.StatusPending {
		t.Fatalf("a taken-over name by its MX: %s, want pending", got.Status)
	}
	if n, err := f.svc.VerifyPending(ctx, 100); err != nil || n != 0 {
		t.Fatalf("VerifyPending = %d, %v; want the taken-over name still pending", n, err)
	}
	// Neither does giving the name up and claiming it again.
	if code, _ := f.do("other", "DELETE", fmt.Sprintf("/api/v1/domains/%d", taken.ID), nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	_, taken, _ = f.createAs("other", "wanted.example", custB.ID)
	if _, got := f.status("other", taken.ID, "verify"); got.Status != tenant.StatusPending {
		t.Fatalf("a taken-over name created again, by its MX: %s, want pending", got.Status)
	}
	f.dns.AddTXT("wanted.example", admin.VerifyPrefix+taken.VerifyToken)
	if _, got := f.status("other", taken.ID, "verify"); got.Status != tenant.StatusActive {
		t.Fatalf("a taken-over name by its TXT token: %s, want active", got.Status)
	}
	// Given up once proven, the name's MX records still point at the
	// cluster for the customer who held it: they prove nothing about the
	// next claimant, whose TXT token does (or the operator).
	if code, _ := f.do("other", "DELETE", fmt.Sprintf("/api/v1/domains/%d", taken.ID), nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	_, again, _ := f.createAs("own", "wanted.example", f.custA.ID)
	if _, got := f.status("own", again.ID, "verify"); got.Status != tenant.StatusPending {
		t.Fatalf("the name after a proof and a delete, by its MX: %s, want pending", got.Status)
	}
	f.dns.AddTXT("wanted.example", admin.VerifyPrefix+again.VerifyToken)
	if _, got := f.status("own", again.ID, "verify"); got.Status != tenant.StatusActive {
		t.Fatalf("the name after a proof and a delete, by its TXT token: %s, want active", got.Status)
	}

	// A rename takes a lapsed claim over too.
	_, squat2, _ := f.createAs("own", "wanted2.example", f.custA.ID)
	later(tenant.DefaultPendingClaimTTL + time.Minute)
	code, out := f.do("other", "PATCH", fmt.Sprintf("/api/v1/domains/%d", renamed.ID), map[string]any{"name": "wanted2.example"})
	if code != 200 || !strings.Contains(string(out), `"pending"`) {
		t.Fatalf("rename onto a lapsed claim: %d %s", code, out)
	}
	if code, _ := f.do("own", "GET", fmt.Sprintf("/api/v1/domains/%d", squat2.ID), nil); code != 404 {
		t.Fatalf("the renamed-over claim is still there: %d", code)
	}
	f.dns.Add(t, "wanted2.example. 300 IN MX 10 mx1.mxgrid.test.")
	if _, got := f.status("other", renamed.ID, "verify"); got.Status != tenant.StatusPending {
		t.Fatalf("a name taken over by a rename, by its MX: %s, want pending", got.Status)
	}
}

// TestAPIHistoryBelongsToTheDomain: reseller B's domain has statistics and
// refusals; B deletes it and reseller A creates the same name: A's
// activity shows none of B's history.
func TestAPIHistoryBelongsToTheDomain(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	custB, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: f.resB.ID, Name: "customer B"})
	if err != nil {
		t.Fatal(err)
	}
	old, err := f.svc.CreateDomain(ctx, f.op, tenant.DomainRecord{CustomerID: custB.ID, Name: "reused.example", Route: "192.0.2.1:25"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := f.st.AddDomainStats(ctx, []store.DomainHour{{DomainID: old.ID, Hour: now, Counts: admin.Counts{Accepted: 5, Rejected: 3}}}); err != nil {
		t.Fatal(err)
	}
	ev := store.StoredEvent{Time: now, IP: netip.MustParseAddr("198.51.100.7"), Node: "n", Domain: "reused.example", DomainID: old.ID,
		Verdict: "spam", Action: "reject", Score: 20, Symbols: []string{"B_SECRET"}}
	if err := f.st.InsertEvents(ctx, []store.StoredEvent{ev}); err != nil {
		t.Fatal(err)
	}
	activity := func(who string, id int64) admin.Activity {
		t.Helper()
		code, out := f.do(who, "GET", fmt.Sprintf("/api/v1/domains/%d/activity", id), nil)
		var a admin.Activity
		if code != 200 || json.Unmarshal(out, &a) != nil {
			t.Fatalf("activity of %d as %s: %d %s", id, who, code, out)
		}
		return a
	}
	if a := activity("other", old.ID); a.Month.Accepted != 5 || len(a.Refused) != 1 {
		t.Fatalf("B's own activity: %+v, want its 5 accepted and 1 refusal", a)
	}
	if code, _ := f.do("other", "DELETE", fmt.Sprintf("/api/v1/domains/%d", old.ID), nil); code != 204 {
		t.Fatalf("B deletes: %d", code)
	}
	code, renewed, body := f.createAs("own", "reused.example", f.custA.ID)
	if code != 201 {
		t.Fatalf("A re-creates: %d %s", code, body)
	}
	if code, got := f.status("operator", renewed.ID, "approve"); code != 200 || got.Status != tenant.StatusActive {
		t.Fatalf("approve: %d", code)
	}
	if a := activity("own", renewed.ID); a.Month != (admin.Counts{}) || a.Day != (admin.Counts{}) || len(a.Refused) != 0 {
		t.Fatalf("A sees %+v, want none of B's history", a)
	}
}

// TestVerifyPendingReachesEveryDomain: the leader's rounds check every
// pending domain in turn. They read only the first page of domains (100,
// by id), so past the 100th domain of the system nothing was re-checked;
// and they took the oldest pending ones first every round, so a reseller's
// verify_per_round unprovable names starved every other reseller's.
func TestVerifyPendingReachesEveryDomain(t *testing.T) {
	ctx := context.Background()
	t.Run("past the first page", func(t *testing.T) {
		f := newAPIFixture(t)
		for i := range admin.DefaultPageSize + 10 {
			if _, err := f.svc.CreateDomain(ctx, f.op, tenant.DomainRecord{CustomerID: f.custA.ID, Name: fmt.Sprintf("bulk%d.example", i), Route: "192.0.2.1:25"}); err != nil {
				t.Fatal(err)
			}
		}
		_, d, _ := f.createAs("own", "late.example", f.custA.ID)
		f.dns.AddTXT("late.example", admin.VerifyPrefix+d.VerifyToken)
		if n, err := f.svc.VerifyPending(ctx, 100); err != nil || n != 1 {
			t.Fatalf("VerifyPending = %d, %v; want 1", n, err)
		}
	})
	t.Run("another reseller's unprovable names", func(t *testing.T) {
		f := newAPIFixture(t)
		custB, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: f.resB.ID, Name: "customer B"})
		if err != nil {
			t.Fatal(err)
		}
		const perRound = 5
		for i := range 2 * perRound {
			if code, _, body := f.createAs("other", fmt.Sprintf("squat%d.example", i), custB.ID); code != 201 {
				t.Fatalf("create: %d %s", code, body)
			}
		}
		_, d, _ := f.createAs("own", "proven.example", f.custA.ID)
		f.dns.AddTXT("proven.example", admin.VerifyPrefix+d.VerifyToken)
		activated := 0
		for range 3 { // 11 pending domains, 5 a round
			n, err := f.svc.VerifyPending(ctx, perRound)
			if err != nil {
				t.Fatal(err)
			}
			activated += n
		}
		if activated != 1 {
			t.Fatalf("%d activated in three rounds of %d, want proven.example", activated, perRound)
		}
	})
}

// countingDNS proves nothing and counts the TXT lookups of each name.
type countingDNS struct {
	mu      sync.Mutex
	lookups map[string]int
}

func (d *countingDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups[name]++
	return nil, nil
}

func (d *countingDNS) LookupMX(context.Context, string) ([]*net.MX, error) { return nil, nil }

// TestVerifyPendingSharesRounds: a round shares its checks out among the
// resellers. Rounds went through all pending domains in id order, so one
// reseller's 100,000 names put every other reseller's next check 1,000
// rounds (83 h at the default 5 min) away, past the claim's 72 h.
func TestVerifyPendingSharesRounds(t *testing.T) {
	ctx := context.Background()
	dns := &countingDNS{lookups: map[string]int{}}
	f := newAPIFixture(t, func(o *admin.ServiceOptions) { o.Ownership.DNS = dns })
	custB, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: f.resB.ID, Name: "customer B"})
	if err != nil {
		t.Fatal(err)
	}
	const perRound, rounds = 5, 4
	for i := range rounds * (perRound - 1) {
		if code, _, body := f.createAs("other", fmt.Sprintf("pile%d.example", i), custB.ID); code != 201 {
			t.Fatalf("create: %d %s", code, body)
		}
	}
	if code, _, body := f.createAs("own", "single.example", f.custA.ID); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	for range rounds {
		if _, err := f.svc.VerifyPending(ctx, perRound); err != nil {
			t.Fatal(err)
		}
	}
	// A's one name every round, B's the rest of each round: each once.
	if n := dns.lookups["single.example"]; n != rounds {
		t.Errorf("A's name checked %d times in %d rounds, want every round", n, rounds)
	}
	for i := range rounds * (perRound - 1) {
		if n := dns.lookups[fmt.Sprintf("pile%d.example", i)]; n != 1 {
			t.Errorf("pile%d.example checked %d times, want once", i, n)
		}
	}
}

// gateDNS never answers for names under blackhole.example (as far as the
// caller lets it wait), telling started when such a lookup begins, and
// proves nothing else.
type gateDNS struct{ started chan string }

func (d gateDNS) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if strings.HasSuffix(name, "blackhole.example") {
		d.started <- name
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, nil
}

func (d gateDNS) LookupMX(context.Context, string) ([]*net.MX, error) { return nil, nil }

// TestVerifyNowPerReseller: a reseller runs one "Check now" at a time.
// The node's four places were anybody's: a reseller pressing it for names
// under a name server that never answers held them all for the timeout,
// again and again, and every other reseller got 429.
func TestVerifyNowPerReseller(t *testing.T) {
	ctx := context.Background()
	dns := gateDNS{started: make(chan string, 8)}
	f := newAPIFixture(t, func(o *admin.ServiceOptions) {
		o.Ownership.DNS = dns
		o.Ownership.Timeout = 2 * time.Second
	})
	custB, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: f.resB.ID, Name: "customer B"})
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := f.createAs("other", "b.example", custB.ID)
	const presses = 4 // MaxConcurrent's default
	codes := make(chan int, presses)
	var wg sync.WaitGroup
	for i := range presses {
		_, d, body := f.createAs("own", fmt.Sprintf("n%d.blackhole.example", i), f.custA.ID)
		if d.ID == 0 {
			t.Fatalf("create: %s", body)
		}
		wg.Go(func() {
			code, _ := f.status("own", d.ID, "verify")
			codes <- code
		})
	}
	defer wg.Wait()
	// Each press either checks (and hangs) or is refused at once.
	checking, refused := 0, 0
	for checking+refused < presses {
		select {
		case <-dns.started:
			checking++
		case code := <-codes:
			if code != 429 {
				t.Fatalf("a press answered %d before its check could end, want 429", code)
			}
			refused++
		}
	}
	if checking != 1 {
		t.Errorf("%d of reseller A's checks run at once, want 1", checking)
	}
	if code, _ := f.status("other", other.ID, "verify"); code != 200 {
		t.Errorf("reseller B's check while A's hang: %d, want 200", code)
	}
}

// blackholeDNS never answers for names under blackhole.example (as far
// as the caller lets it wait) and proves proven.example by its TXT token.
type blackholeDNS struct{ token *string }

func (d blackholeDNS) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if strings.HasSuffix(name, "blackhole.example") {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return []string{admin.VerifyPrefix + *d.token}, nil
}

func (d blackholeDNS) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	if strings.HasSuffix(name, "blackhole.example") {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, nil
}

// TestVerifyRoundChecksTogether: a round checks its domains at the same
// time. Each check is bounded (OwnershipOptions.Timeout, 10 s), but one
// after another a reseller's names under a name server that never answers
// made a round of 100 last 17 minutes, and every other domain wait for it.
func TestVerifyRoundChecksTogether(t *testing.T) {
	ctx := context.Background()
	token := new(string)
	f := newAPIFixture(t, func(o *admin.ServiceOptions) {
		o.Ownership.DNS = blackholeDNS{token}
		o.Ownership.Timeout = time.Second
	})
	for i := range 20 {
		if code, _, body := f.createAs("own", fmt.Sprintf("n%d.blackhole.example", i), f.custA.ID); code != 201 {
			t.Fatalf("create: %d %s", code, body)
		}
	}
	_, d, _ := f.createAs("own", "proven.example", f.custA.ID)
	*token = d.VerifyToken
	start := time.Now()
	n, err := f.svc.VerifyPending(ctx, 100)
	if took := time.Since(start); err != nil || n != 1 || took > 8*time.Second {
		t.Fatalf("VerifyPending = %d, %v in %v; want 1 within a few check timeouts (one after another: 20 s)", n, err, took)
	}
}

// TestAPILapsedClaimNotTakenPastQuota: a reseller at its domain quota may
// not take a lapsed claim over: its create is refused (403 with the quota)
// and the holder keeps its claim, recipients and an audit trail without a
// lapse. Before, the claim was removed first and the create refused after.
func TestAPILapsedClaimNotTakenPastQuota(t *testing.T) {
	f, now, custB := newLapseFixture(t)
	_, squat, _ := f.createAs("own", "wanted.example", f.custA.ID)
	if code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/domains/%d/recipients", squat.ID), map[string]string{"local": "alice"}); code != 201 {
		t.Fatalf("recipient: %d %s", code, out)
	}
	if code, out := f.do("operator", "PATCH", fmt.Sprintf("/api/v1/resellers/%d", f.resB.ID), map[string]any{"quota": map[string]int{"domains": 1}}); code != 200 {
		t.Fatalf("quota: %d %s", code, out)
	}
	if code, _, body := f.createAs("other", "b1.example", custB.ID); code != 201 {
		t.Fatalf("B's one domain: %d %s", code, body)
	}
	now.Add(int64(tenant.DefaultPendingClaimTTL + time.Minute))
	code, out := f.do("other", "POST", "/api/v1/domains", map[string]any{"name": "wanted.example", "customer_id": custB.ID, "route": "127.0.0.1:25"})
	var e apiError
	json.Unmarshal(out, &e)
	if code != 403 || e.Quota == nil || e.Quota.What != "domains" || e.Quota.Used != 1 || e.Quota.After != 2 {
		t.Fatalf("a lapsed claim past the quota: %d %s, want 403 naming the domain quota", code, out)
	}
	if code, out := f.do("own", "GET", fmt.Sprintf("/api/v1/domains/%d/recipients/alice", squat.ID), nil); code != 200 {
		t.Fatalf("the holder's claim or recipient is gone: %d %s", code, out)
	}
	if _, out := f.do("own", "GET", "/api/v1/audit", nil); strings.Contains(string(out), `"lapse"`) {
		t.Fatalf("the holder's audit trail shows a lapse: %s", out)
	}
	// Within its quota, B takes the name over as before.
	if code, out := f.do("operator", "PATCH", fmt.Sprintf("/api/v1/resellers/%d", f.resB.ID), map[string]any{"quota": map[string]int{"domains": 2}}); code != 200 {
		t.Fatalf("quota: %d %s", code, out)
	}
	if code, _, body := f.createAs("other", "wanted.example", custB.ID); code != 201 {
		t.Fatalf("the lapsed claim within the quota: %d %s", code, body)
	}
}

// TestAPILapsedClaimsRacingPastQuota: a reseller with room for one more
// domain creating four names held by lapsed claims at the same moment
// takes one of them over; the other claims stay, with their holder. Each
// claim was removed before the create that took its name, after a check
// of the quota that all passed, so the creates refused past the quota
// had removed claims for nothing.
func TestAPILapsedClaimsRacingPastQuota(t *testing.T) {
	names := []string{"one.example", "two.example", "three.example", "four.example"}
	for round := range 20 {
		f, now, custB := newLapseFixture(t)
		for _, n := range names {
			if code, _, body := f.createAs("own", n, f.custA.ID); code != 201 {
				t.Fatalf("A's claim of %s: %d %s", n, code, body)
			}
		}
		if code, out := f.do("operator", "PATCH", fmt.Sprintf("/api/v1/resellers/%d", f.resB.ID), map[string]any{"quota": map[string]int{"domains": 1}}); code != 200 {
			t.Fatalf("quota: %d %s", code, out)
		}
		now.Add(int64(tenant.DefaultPendingClaimTTL + time.Minute))
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			mu    sync.Mutex
			codes = map[int]int{}
		)
		for _, n := range names {
			wg.Go(func() {
				<-start
				code, _, _ := f.createAs("other", n, custB.ID)
				mu.Lock()
				defer mu.Unlock()
				codes[code]++
			})
		}
		close(start)
		wg.Wait()
		held := 0
		for _, n := range names {
			if d, err := store.NewTenants(f.st).DomainByName(context.Background(), n); err == nil && d.ResellerID == f.resA.ID {
				held++
			}
		}
		if held != len(names)-1 || codes[201] != 1 || codes[403] != len(names)-1 {
			t.Fatalf("round %d: B's creates answered %v, A keeps %d of its %d lapsed claims; want one 201, the rest 403 and kept",
				round, codes, held, len(names))
		}
	}
}

// TestAPIClaimGivenUpAndTakenAgainKeepsItsClock: a reseller that gives its
// unproven claim up (delete, or rename away) and claims the name again
// before the TTL ends continues the first claim's clock, so another
// reseller still takes the name over once the TTL from the first claim
// has passed. Before, each new claim started the clock again: deleting and
// re-creating the name every 71 hours kept it from every other reseller
// for ever, the squatting the TTL is there to end. A proven name given up
// starts afresh.
func TestAPIClaimGivenUpAndTakenAgainKeepsItsClock(t *testing.T) {
	for _, tc := range []struct {
		name   string
		giveUp func(f *apiFixture, d tenant.DomainRecord) tenant.DomainRecord
	}{
		{"delete and create", func(f *apiFixture, d tenant.DomainRecord) tenant.DomainRecord {
			if code, out := f.do("own", "DELETE", fmt.Sprintf("/api/v1/domains/%d", d.ID), nil); code != 204 {
				t.Fatalf("delete: %d %s", code, out)
			}
			code, again, body := f.createAs("own", d.Name, f.custA.ID)
			if code != 201 {
				t.Fatalf("create again: %d %s", code, body)
			}
			return again
		}},
		{"rename away and back", func(f *apiFixture, d tenant.DomainRecord) tenant.DomainRecord {
			path := fmt.Sprintf("/api/v1/domains/%d", d.ID)
			if code, out := f.do("own", "PATCH", path, map[string]any{"name": "elsewhere.example"}); code != 200 {
				t.Fatalf("rename away: %d %s", code, out)
			}
			code, out := f.do("own", "PATCH", path, map[string]any{"name": d.Name})
			var back tenant.DomainRecord
			if code != 200 || json.Unmarshal(out, &back) != nil {
				t.Fatalf("rename back: %d %s", code, out)
			}
			return back
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, now, custB := newLapseFixture(t)
			later := func(d time.Duration) { now.Add(int64(d)) }
			_, first, _ := f.createAs("own", "wanted.example", f.custA.ID)
			later(tenant.DefaultPendingClaimTTL - time.Hour)
			again := tc.giveUp(f, first)
			if again.Status != tenant.StatusPending || !again.PendingSince.Equal(first.PendingSince) {
				t.Fatalf("claimed again: %s since %v, want pending since the first claim (%v)", again.Status, again.PendingSince, first.PendingSince)
			}
			if code, _, body := f.createAs("other", "wanted.example", custB.ID); code != 409 {
				t.Fatalf("within the first claim's TTL: %d %s, want 409", code, body)
			}
			later(2 * time.Hour)
			if code, taken, body := f.createAs("other", "wanted.example", custB.ID); code != 201 || taken.Status != tenant.StatusPending {
				t.Fatalf("past the first claim's TTL: %d %s, want 201 (the claim lapsed)", code, body)
			}
		})
	}

	// Proven, the name's clock is settled: given up and claimed again, a
	// new claim has its whole TTL.
	f, now, custB := newLapseFixture(t)
	_, d, _ := f.createAs("own", "proven.example", f.custA.ID)
	now.Add(int64(tenant.DefaultPendingClaimTTL - time.Hour))
	f.dns.AddTXT("proven.example", admin.VerifyPrefix+d.VerifyToken)
	if _, got := f.status("own", d.ID, "verify"); got.Status != tenant.StatusActive {
		t.Fatalf("verify: %s", got.Status)
	}
	if code, out := f.do("own", "DELETE", fmt.Sprintf("/api/v1/domains/%d", d.ID), nil); code != 204 {
		t.Fatalf("delete: %d %s", code, out)
	}
	_, again, _ := f.createAs("own", "proven.example", f.custA.ID)
	if want := time.Unix(0, now.Load()); !again.PendingSince.Equal(want) {
		t.Fatalf("a proven name claimed again: pending since %v, want now (%v)", again.PendingSince, want)
	}
	now.Add(int64(2 * time.Hour))
	if code, _, body := f.createAs("other", "proven.example", custB.ID); code != 409 {
		t.Fatalf("a fresh claim after a proof: %d %s, want 409", code, body)
	}
}

// TestAPIClaimLostAndTakenBackKeepsItsToken: a reseller whose claim
// lapsed and was taken over claims the name back once the other claim
// lapses too. Its claim goes on from its first one, so it may be taken over
// at once (else two accounts of one tenant, taking the name from each other
// in turn, kept it from everyone for ever); it keeps its first token as
// well, so the TXT record the customer published meanwhile proves it at
// the first check, before anyone can take it again.
func TestAPIClaimLostAndTakenBackKeepsItsToken(t *testing.T) {
	f, now, custB := newLapseFixture(t)
	later := func(d time.Duration) { now.Add(int64(d)) }
	_, first, _ := f.createAs("own", "wanted.example", f.custA.ID)
	later(tenant.DefaultPendingClaimTTL + time.Minute)
	if code, _, body := f.createAs("other", "wanted.example", custB.ID); code != 201 {
		t.Fatalf("taking the lapsed claim over: %d %s", code, body)
	}
	later(tenant.DefaultPendingClaimTTL + time.Minute)
	code, back, body := f.createAs("own", "wanted.example", f.custA.ID)
	if code != 201 || !back.PendingSince.Equal(first.PendingSince) || back.VerifyToken != first.VerifyToken {
		t.Fatalf("taken back: %d %s; want pending since %v with the token %s", code, body, first.PendingSince, first.VerifyToken)
	}
	f.dns.AddTXT("wanted.example", admin.VerifyPrefix+first.VerifyToken)
	if _, got := f.status("own", back.ID, "verify"); got.Status != tenant.StatusActive {
		t.Fatalf("verified by the first token's TXT record: %s, want active", got.Status)
	}
	if code, _, body := f.createAs("other", "wanted.example", custB.ID); code != 409 {
		t.Fatalf("a proven name: %d %s, want 409", code, body)
	}
}

// TestAPIMXProvesNoNameBesideAnotherResellersDomain: MX records at the
// cluster for a name under or above another reseller's active domain show
// that the customer uses the service, most likely through that reseller:
// they prove nothing about the reseller claiming the name, whose TXT
// token does. Before, reseller A claimed lists.b-corp.example (whose
// explicit MX named the cluster) under B's b-corp.example, and
// up-corp.example above B's eu.up-corp.example, and proved both by MX:
// B's customer's mail went to A's route. A name under or above one's own
// domain, a mere claim or nobody's is still proven by MX, and a name that
// only ends alike (x-up-corp.example) is not above it.
func TestAPIMXProvesNoNameBesideAnotherResellersDomain(t *testing.T) {
	f, _, custB := newLapseFixture(t)
	ctx := context.Background()
	for _, d := range []tenant.DomainRecord{
		{CustomerID: custB.ID, Name: "b-corp.example"},
		{CustomerID: custB.ID, Name: "eu.up-corp.example"},
		{CustomerID: custB.ID, Name: "deep.eu.up-deep.example"},
		{CustomerID: f.custA.ID, Name: "a-corp.example"},
		{CustomerID: f.custA.ID, Name: "eu.up-a.example"},
	} {
		d.Route = "192.0.2.1:25"
		if _, err := f.svc.CreateDomain(ctx, f.op, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"claimed-b.example", "eu.up-claimed-b.example"} {
		if code, _, body := f.createAs("other", name, custB.ID); code != 201 {
			t.Fatalf("B's claim of %s: %d %s", name, code, body)
		}
	}
	for _, tc := range []struct {
		name   string
		active bool
	}{
		{"lists.b-corp.example", false},
		{"deep.lists.b-corp.example", false},
		{"up-corp.example", false},
		{"up-deep.example", false},
		{"eu.up-deep.example", false},
		{"lists.a-corp.example", true},
		{"up-a.example", true},
		{"lists.claimed-b.example", true},
		{"up-claimed-b.example", true},
		{"lists.nobodys.example", true},
		{"x-up-corp.example", true},
	} {
		f.dns.Add(t, tc.name+". 300 IN MX 10 mx1.mxgrid.test.")
		code, d, body := f.createAs("own", tc.name, f.custA.ID)
		if code != 201 {
			t.Fatalf("%s: %d %s", tc.name, code, body)
		}
		if _, got := f.status("own", d.ID, "verify"); (got.Status == tenant.StatusActive) != tc.active {
			t.Errorf("%s by its MX: %s, want active=%v", tc.name, got.Status, tc.active)
		}
		if !tc.active {
			f.dns.AddTXT(tc.name, admin.VerifyPrefix+d.VerifyToken)
			if _, got := f.status("own", d.ID, "verify"); got.Status != tenant.StatusActive {
				t.Errorf("%s by its TXT token: %s, want active", tc.name, got.Status)
			}
		}
	}
}

// TestAPIVerifyWhenDNSFails: "Check now" for a name whose DNS answers
// neither the TXT nor the MX lookup (its servers fail, SERVFAIL) was
// answered 500 "internal error" and logged as one of ours; it is the
// reseller's DNS, so 502 says so, without the resolver's address, and the
// domain stays pending.
func TestAPIVerifyWhenDNSFails(t *testing.T) {
	f := newAPIFixture(t)
	_, d, body := f.createAs("own", "broken.example", f.custA.ID)
	if d.Status != tenant.StatusPending {
		t.Fatalf("create %s, want pending", body)
	}
	f.dns.ServFail("broken.example")
	code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/domains/%d/verify", d.ID), nil)
	host, _, _ := strings.Cut(f.dns.Addr, ":")
	if code != 502 || !strings.Contains(string(out), "DNS") || strings.Contains(string(out), host) {
		t.Fatalf("verify = %d %s, want 502 naming DNS and not the resolver", code, out)
	}
	if code, out := f.do("own", "GET", fmt.Sprintf("/api/v1/domains/%d", d.ID), nil); code != 200 || !strings.Contains(string(out), `"pending"`) {
		t.Fatalf("GET = %d %s, want it pending", code, out)
	}
}

// meanwhileDNS proves every name by its TXT token, and runs meanwhile once,
// at the first lookup: what happens while a check waits for DNS.
type meanwhileDNS struct {
	token     string
	once      sync.Once
	meanwhile func()
}

func (m *meanwhileDNS) LookupTXT(context.Context, string) ([]string, error) {
	m.once.Do(m.meanwhile)
	return []string{admin.VerifyPrefix + m.token}, nil
}

func (m *meanwhileDNS) LookupMX(context.Context, string) ([]*net.MX, error) {
	return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
}

// TestAPIVerifyOfADomainMovedMeanwhile: a reseller's "check now" of its
// pending domain, which the operator gives to another reseller's customer
// while the check waits for DNS, answers 404 as the domain does a moment
// later. The check read the domain in the caller's scope, then activated
// and answered it as read again by id alone: the other reseller's domain,
// its customer and reseller ids, route and lists.
func TestAPIVerifyOfADomainMovedMeanwhile(t *testing.T) {
	dns := &meanwhileDNS{}
	f := newAPIFixture(t, func(o *admin.ServiceOptions) { o.Ownership.DNS = dns })
	ctx := context.Background()
	custB, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: f.resB.ID, Name: "customer B"})
	if err != nil {
		t.Fatal(err)
	}
	_, d, body := f.createAs("own", "moving.example", f.custA.ID)
	if d.Status != tenant.StatusPending {
		t.Fatalf("create %s, want pending", body)
	}
	dns.token = d.VerifyToken
	var moveErr error
	dns.meanwhile = func() {
		_, moveErr = f.svc.UpdateDomain(ctx, f.op, d.ID, func(d *tenant.DomainRecord) { d.CustomerID = custB.ID })
	}
	code, out := f.do("own", "POST", fmt.Sprintf("/api/v1/domains/%d/verify", d.ID), nil)
	if moveErr != nil {
		t.Fatalf("moving the domain during the check: %v", moveErr)
	}
	_, missing := f.do("own", "POST", "/api/v1/domains/987654321/verify", nil)
	if code != 404 || string(out) != string(missing) {
		t.Fatalf("verify of a domain moved meanwhile = %d %s, want 404 %s", code, out, missing)
	}
	if code, out := f.do("other", "GET", fmt.Sprintf("/api/v1/domains/%d", d.ID), nil); code != 200 || !strings.Contains(string(out), fmt.Sprintf(`"customer_id":%d`, custB.ID)) {
		t.Fatalf("the new owner's GET = %d %s", code, out)
	}
}
