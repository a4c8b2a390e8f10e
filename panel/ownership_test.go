package panel

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestPanelDomainHistoryAndProof: a pending domain's page shows the record
// to publish and "Check now" (and Approve to the operator only); a name
// deleted by reseller B and re-created by reseller A shows A none of B's
// refusals.
func TestPanelDomainHistoryAndProof(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mk := func(name string) (admin.Principal, tenant.Customer) {
		r, err := f.svc.CreateReseller(ctx, f.op, tenant.Reseller{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		c, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: r.ID, Name: name + " customer"})
		if err != nil {
			t.Fatal(err)
		}
		return admin.Principal{ResellerID: r.ID, Actor: name}, c
	}
	pa, ca := mk("alpha")
	pb, cb := mk("beta")

	old, err := f.svc.CreateDomain(ctx, f.op, tenant.DomainRecord{CustomerID: cb.ID, Name: "reused.example", Route: "192.0.2.1:25"})
	if err != nil {
		t.Fatal(err)
	}
	ev := store.StoredEvent{Time: time.Now().UTC(), IP: netip.MustParseAddr("198.51.100.7"), Node: "n", Domain: "reused.example",
		DomainID: old.ID, Verdict: "spam", Action: "reject", Score: 20, Symbols: []string{"B_SECRET"}}
	if err := f.st.InsertEvents(ctx, []store.StoredEvent{ev}); err != nil {
		t.Fatal(err)
	}
	if code, body := f.get(t, pb, "/panel/domains/"+itoa(old.ID)+"/stats"); code != 200 || !strings.Contains(body, "198.51.100.7") {
		t.Fatalf("B's own history: %d, refusal shown: %v", code, strings.Contains(body, "198.51.100.7"))
	}
	if err := f.svc.DeleteDomain(ctx, pb, old.ID); err != nil {
		t.Fatal(err)
	}
	d, err := f.svc.CreateDomain(ctx, pa, tenant.DomainRecord{CustomerID: ca.ID, Name: "reused.example", Route: "192.0.2.1:25"})
	if err != nil || d.Status != tenant.StatusPending {
		t.Fatalf("A re-creates: %+v, %v; want pending", d, err)
	}
	_, body := f.get(t, pa, "/panel/domains/"+itoa(d.ID))
	if !strings.Contains(body, "mxgrid-verify="+d.VerifyToken) || !strings.Contains(body, `id="verify-button"`) || strings.Contains(body, `id="approve-button"`) {
		t.Fatalf("reseller's pending page lacks the record or Check now, or offers Approve")
	}
	if held := d.PendingSince.Add(tenant.DefaultPendingClaimTTL).UTC().Format("2006-01-02 15:04 UTC"); !strings.Contains(body, `id="claim-held-until"`) || !strings.Contains(body, held) {
		t.Fatalf("pending page does not say the claim is held until %s", held)
	}
	if _, body := f.get(t, f.op, "/panel/domains/"+itoa(d.ID)); !strings.Contains(body, `id="approve-button"`) {
		t.Fatalf("operator's pending page lacks Approve")
	}
	if _, err := f.svc.ApproveDomain(ctx, f.op, d.ID); err != nil {
		t.Fatal(err)
	}
	code, body := f.get(t, pa, "/panel/domains/"+itoa(d.ID)+"/stats")
	if code != 200 || strings.Contains(body, "198.51.100.7") || strings.Contains(body, "B_SECRET") {
		t.Fatalf("A's history: %d, shows B's refusal: %v", code, strings.Contains(body, "198.51.100.7"))
	}
	if _, body := f.get(t, pa, "/panel/domains/"+itoa(d.ID)); strings.Contains(body, `id="domain-pending"`) {
		t.Fatalf("active domain still shows the pending card")
	}
}

// TestPanelSaysWhenAClaimHasLapsed: a pending domain's page says until
// when no other reseller can add the name, and once that time has passed,
// that the claim has lapsed and may be replaced at any time. Before, it
// went on saying "No other reseller can add ... until" a time in the past,
// as it did for a name taken back after a takeover, whose claim is dated
// from the first.
func TestPanelSaysWhenAClaimHasLapsed(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	f := newFixture(t, func(_ *store.Store, so *admin.ServiceOptions) {
		so.Ownership.Now = func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	})
	pr, cust, _ := f.resellerWithDomain(t, tenant.Reseller{Name: "alpha"}, tenant.DomainRecord{Name: "alpha.example", Route: "192.0.2.1:25"})
	d, err := f.svc.CreateDomain(context.Background(), pr, tenant.DomainRecord{CustomerID: cust, Name: "claimed.example", Route: "192.0.2.1:25"})
	if err != nil || d.Status != tenant.StatusPending {
		t.Fatalf("claim: %+v, %v", d, err)
	}
	page := "/panel/domains/" + itoa(d.ID)
	if _, body := f.get(t, pr, page); !strings.Contains(body, `id="claim-held-until"`) || strings.Contains(body, `id="claim-lapsed"`) {
		t.Fatalf("a fresh claim's page does not say until when it is held:\n%s", body)
	}
	clock.Add(int64(tenant.DefaultPendingClaimTTL + time.Minute))
	if _, body := f.get(t, pr, page); strings.Contains(body, `id="claim-held-until"`) || !strings.Contains(body, `id="claim-lapsed"`) {
		t.Fatalf("a lapsed claim's page does not say it lapsed:\n%s", body)
	}
}

// holdDNS answers no TXT lookup until released (or its check times out),
// telling started when one begins.
type holdDNS struct{ started, release chan struct{} }

func (d holdDNS) LookupTXT(ctx context.Context, _ string) ([]string, error) {
	d.started <- struct{}{}
	select {
	case <-d.release:
	case <-ctx.Done():
	}
	return nil, nil
}

func (holdDNS) LookupMX(context.Context, string) ([]*net.MX, error) { return nil, nil }

// TestCheckNowBusy: "Check now" while the reseller's previous check runs
// says so (429); it was "Something went wrong on our side" (500), logged
// as an error.
func TestCheckNowBusy(t *testing.T) {
	dns := holdDNS{started: make(chan struct{}, 1), release: make(chan struct{})}
	f := newFixture(t, func(_ *store.Store, so *admin.ServiceOptions) { so.Ownership.DNS = dns })
	ctx := context.Background()
	r, err := f.svc.CreateReseller(ctx, f.op, tenant.Reseller{Name: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: r.ID, Name: "alpha customer"})
	if err != nil {
		t.Fatal(err)
	}
	pa := admin.Principal{ResellerID: r.ID, Actor: "alpha"}
	d, err := f.svc.CreateDomain(ctx, pa, tenant.DomainRecord{CustomerID: c.ID, Name: "slow.example", Route: "192.0.2.1:25"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := f.svc.VerifyDomain(ctx, pa, d.ID)
		done <- err
	}()
	<-dns.started
	code, body := f.post(t, pa, "/panel/domains/"+itoa(d.ID)+"/verify")
	close(dns.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code != http.StatusTooManyRequests || !strings.Contains(body, "Try again in a moment") {
		t.Fatalf("Check now while a check runs: %d\n%s", code, body)
	}
}

// failingDNS answers every lookup with a server failure, naming the
// resolver as the Go resolver's errors do.
type failingDNS struct{}

func (failingDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	return nil, &net.DNSError{Err: "server misbehaving", Name: name, Server: "10.0.0.2:53", IsTemporary: true}
}

func (failingDNS) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return nil, &net.DNSError{Err: "server misbehaving", Name: name, Server: "10.0.0.2:53", IsTemporary: true}
}

// TestCheckNowWhenDNSFails: "Check now" for a name whose DNS answers
// neither lookup said "Something went wrong on our side" (500), logged as
// an error; the reseller's DNS failed, and the page says so (502),
// without the resolver's address.
func TestCheckNowWhenDNSFails(t *testing.T) {
	f := newFixture(t, func(_ *store.Store, so *admin.ServiceOptions) { so.Ownership.DNS = failingDNS{} })
	ctx := context.Background()
	r, err := f.svc.CreateReseller(ctx, f.op, tenant.Reseller{Name: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.CreateCustomer(ctx, f.op, tenant.Customer{ResellerID: r.ID, Name: "alpha customer"})
	if err != nil {
		t.Fatal(err)
	}
	pa := admin.Principal{ResellerID: r.ID, Actor: "alpha"}
	d, err := f.svc.CreateDomain(ctx, pa, tenant.DomainRecord{CustomerID: c.ID, Name: "broken.example", Route: "192.0.2.1:25"})
	if err != nil {
		t.Fatal(err)
	}
	code, body := f.post(t, pa, "/panel/domains/"+itoa(d.ID)+"/verify")
	if code != http.StatusBadGateway || !strings.Contains(body, "DNS") || strings.Contains(body, "10.0.0.2") {
		t.Fatalf("Check now with failing DNS: %d\n%s", code, body)
	}
}
