package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/quarantine"
)

// TestOptOutBelongsToTheDomainAsOwned: a recipient's opt-out is the
// domain's as it is owned when the link is used. Once the name is another
// tenant's (deleted and re-created, or moved to another customer), its
// mailbox of that name gets digests again, and the former owner's digest's
// opt-out link, not yet expired, opts nobody out. Opt-outs were kept by
// address alone: the new owner's user got no digest and could not see
// why, and the old link still stopped them.
func TestOptOutBelongsToTheDomainAsOwned(t *testing.T) {
	ctx := context.Background()
	st := notifyStore(t)
	smarthost := smtptest.StartSink(t)
	clock := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	owners := []struct {
		dir  domains
		held items
	}{{
		domains{"a.example": {Name: "a.example", ID: 7, CustomerID: 3}},
		items{{ID: 1, Time: clock, Domain: "a.example", DomainID: 7, CustomerID: 3, Recipients: []string{"bob@a.example"},
			Sender: "s@x.example", Subject: "spam", State: quarantine.StateHeld}},
	}, {
		domains{"a.example": {Name: "a.example", ID: 8, CustomerID: 4}},
		items{{ID: 2, Time: clock, Domain: "a.example", DomainID: 8, CustomerID: 4, Recipients: []string{"bob@a.example"},
			Sender: "s@x.example", Subject: "spam", State: quarantine.StateHeld}},
	}}
	key := []byte("0123456789abcdef0123456789abcdef")
	// digestNextPeriod runs the next period's digests for owner and
	// reports how many it sent.
	digestNextPeriod := func(owner int) int {
		t.Helper()
		clock = clock.Add(24 * time.Hour)
		d, err := New(Config{Smarthost: smarthost.Addr, SmarthostTLS: TLSNone, DigestInterval: 24 * time.Hour, CheckInterval: 10 * time.Minute,
			LinkTTL: 7 * 24 * time.Hour, MaxPerDomain: 10}, Options{
			Store: brandedStore{st}, Items: owners[owner].held, Domains: owners[owner].dir, Keys: [][]byte{key},
			BaseURL: "https://mx.example", Hostname: "mx.example", Holder: "n1", Now: now, Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		n, err := d.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	optOut := func(owner int, token string) int {
		t.Helper()
		mux := http.NewServeMux()
		NewLinks([][]byte{key}, owners[owner].held, st, owners[owner].dir, nil, nil, now, nil).Mount(func(p string, h http.Handler) { mux.Handle(p, h) })
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("POST", "/q/optout/"+token, nil))
		return rec.Code
	}

	if n := digestNextPeriod(0); n != 1 {
		t.Fatalf("the first owner's bob got %d digests, want 1", n)
	}
	_, body := readDigest(t, smarthost.Messages()[0].Data)
	m := regexp.MustCompile(`/q/optout/(\S+)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no opt-out link in the digest:\n%s", body)
	}
	oldLink := m[1]
	if code := optOut(0, oldLink); code != http.StatusOK {
		t.Fatalf("bob's opt-out: %d", code)
	}
	if n := digestNextPeriod(0); n != 0 {
		t.Fatalf("bob opted out and got %d digests", n)
	}
	if n := digestNextPeriod(1); n != 1 {
		t.Errorf("the new owner's bob got %d digests, want 1: the old owner's opt-out still held", n)
	}
	if code := optOut(1, oldLink); code == http.StatusOK {
		t.Errorf("the old owner's opt-out link, used after the name changed hands: %d, want a refusal", code)
	}
	if n := digestNextPeriod(1); n != 1 {
		t.Errorf("after the old owner's link was used, the new owner's bob got %d digests, want 1", n)
	}
}
