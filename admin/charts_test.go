package admin_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

// countedStats is the real store, counting its outcome sums.
type countedStats struct {
	*store.Store
	sums atomic.Int32
}

func (c *countedStats) OutcomeSeries(ctx context.Context, scope admin.OutcomeScope, since time.Time, step time.Duration) ([]admin.Bucket, error) {
	c.sums.Add(1)
	return c.Store.OutcomeSeries(ctx, scope, since, step)
}

// TestOutcomeChartsAreSummedOncePerFlush: the panel's first page shows the
// reseller's charts, which sum every counter row of its domains for 30
// days. Views of one scope at once, and within the counters' own flush
// interval, share one sum (two queries: hourly and daily); after it, or
// in another scope, the charts are summed again and show new counts.
// Before, each view summed them: 20 views, 40 queries.
func TestOutcomeChartsAreSummedOncePerFlush(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(store.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrateDomainStats(ctx); err != nil {
		t.Fatal(err)
	}
	stats := &countedStats{Store: st}
	ts := store.NewTenants(st)
	svc := admin.NewService(ts, admin.ServiceOptions{Panel: ts, Activity: stats})
	op := admin.Operator("test")
	r, err := svc.CreateReseller(ctx, op, tenant.Reseller{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := svc.CreateCustomer(ctx, op, tenant.Customer{ResellerID: r.ID, Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := svc.CreateDomain(ctx, op, tenant.DomainRecord{CustomerID: c.ID, Name: "a.example", Route: "192.0.2.1:25"})
	if err != nil {
		t.Fatal(err)
	}
	pr := admin.Principal{ResellerID: r.ID, Actor: "a"}
	now := time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)
	add := func(n int64) {
		if err := st.AddDomainStats(ctx, []store.DomainHour{{DomainID: d.ID, Hour: now, Counts: admin.Counts{Accepted: n}}}); err != nil {
			t.Fatal(err)
		}
	}
	accepted := func(at time.Time, domainID int64) int64 {
		ch, err := svc.OutcomeCharts(ctx, pr, domainID, 0, at)
		if err != nil {
			t.Fatal(err)
		}
		return ch.Hourly[23].Accepted
	}
	add(1)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got := accepted(now, 0); got != 1 {
				t.Errorf("a view at once: %d accepted, want 1", got)
			}
		}()
	}
	wg.Wait()
	if n := stats.sums.Load(); n > 4 {
		t.Fatalf("20 views at once ran %d sums, want one or two (2 queries each)", n)
	}
	add(1)
	before := stats.sums.Load()
	for _, step := range []struct {
		name     string
		at       time.Time
		domainID int64
		want     int64
		summed   bool
	}{
		{"within the flush interval", now.Add(9 * time.Second), 0, 1, false},
		{"another scope", now.Add(9 * time.Second), d.ID, 2, true},
		{"after the flush interval", now.Add(10 * time.Second), 0, 2, true},
	} {
		if got := accepted(step.at, step.domainID); got != step.want {
			t.Errorf("%s: %d accepted, want %d", step.name, got, step.want)
		}
		if after := stats.sums.Load(); (after != before) != step.summed {
			t.Errorf("%s: %d sums, summed again: want %v", step.name, after-before, step.summed)
		}
		before = stats.sums.Load()
	}
}
