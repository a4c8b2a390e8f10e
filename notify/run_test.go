package notify

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/internal/metrictest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/store"
)

// brandedStore is the real store's digest records, with every customer's
// brand "R" (the tenant tables are not needed here).
type brandedStore struct{ *store.Store }

func (brandedStore) BrandOf(context.Context, int64) (string, error) { return "R", nil }

// TestDigestRunsAreBounded: a catch-all domain whose quarantine holds spam
// for thirty made-up addresses gets notify.max_per_domain digests a
// period, not thirty, and the rest are counted; another domain still gets
// its own. A run keeps at most maxRunItems held items in memory, and the
// recipients it left go in the next check's run, not never. Before, every
// recipient with held mail got a digest every period (a flood into the
// customer's catch-all mailbox), and the leader held every held item of
// every quarantine in memory at once.
func TestDigestRunsAreBounded(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(store.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrateNotify(ctx); err != nil {
		t.Fatal(err)
	}
	smarthost := smtptest.StartSink(t)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var held items
	add := func(domain string, id int64, n int) {
		for i := range n {
			held = append(held, quarantine.Item{ID: id + int64(i), Time: now, Domain: domain, DomainID: id, CustomerID: 3,
				Recipients: []string{fmt.Sprintf("r%02d@%s", i, domain)}, Sender: "s@x.example", Subject: "spam"})
		}
	}
	add("catchall.example", 100, 30) // newest first, as List pages
	add("b.example", 10, 2)
	reg := prometheus.NewRegistry()
	d, err := New(Config{Smarthost: smarthost.Addr, SmarthostTLS: TLSNone, DigestInterval: 24 * time.Hour, CheckInterval: 10 * time.Minute,
		LinkTTL: 24 * time.Hour, MaxPerDomain: 10}, Options{
		Store: brandedStore{st}, Items: held, BaseURL: "https://mx.example", Hostname: "mx.example", Holder: "n1",
		Domains: domains{
			"catchall.example": {Name: "catchall.example", ID: 100, CustomerID: 3},
			"b.example":        {Name: "b.example", ID: 10, CustomerID: 3},
		},
		Now: func() time.Time { return now }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	d.maxRunItems = 8
	for i, want := range []int{8, 4, 0} {
		if n, err := d.RunOnce(ctx); err != nil || n != want {
			t.Fatalf("run %d sent %d digests (%v), want %d", i+1, n, err, want)
		}
	}
	perDomain := map[string]int{}
	to := map[string]bool{}
	for _, m := range smarthost.Messages() {
		for _, r := range m.Rcpts {
			if to[r] {
				t.Errorf("%s got two digests in one period", r)
			}
			to[r] = true
			perDomain[r[strings.IndexByte(r, '@')+1:]]++
		}
	}
	if perDomain["catchall.example"] != 10 || perDomain["b.example"] != 2 {
		t.Errorf("digests per domain %v, want catchall.example 10, b.example 2", perDomain)
	}
	if got := metrictest.Gauge(t, reg, "mxgrid_notify_capped_messages", ""); got != 20 {
		t.Errorf("mxgrid_notify_capped_messages = %v, want 20", got)
	}
}
