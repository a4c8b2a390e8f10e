package admin

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// OutcomeScope selects whose counters a chart sums: one domain, one
// customer's domains, one reseller's, or (operator) everything. Exactly
// one of the ids is set, or All.
type OutcomeScope struct {
	DomainID, CustomerID, ResellerID int64
	All                              bool
}

// Bucket is one bar of a chart: the counts from Start for one step.
type Bucket struct {
	Start time.Time `json:"start"`
	Counts
}

// Charts are the panel's outcome charts: hourly for 24 h, daily for 30
// days (UTC days).
type Charts struct {
	Hourly []Bucket `json:"hourly"`
	Daily  []Bucket `json:"daily"`
}

// OutcomeSeries reads bucketed counters; *store.Store implements it.
type OutcomeSeries interface {
	OutcomeSeries(ctx context.Context, scope OutcomeScope, since time.Time, step time.Duration) ([]Bucket, error)
}

// OutcomeCharts are p's charts for a domain (domainID), a customer
// (customerID) or, with neither, p's whole reseller (the operator's: all
// mail). Another tenant's domain or customer is ErrNotFound.
func (s *Service) OutcomeCharts(ctx context.Context, p Principal, domainID, customerID int64, now time.Time) (Charts, error) {
	series, ok := s.activity.(OutcomeSeries)
	if !ok {
		return Charts{}, ErrPanelUnconfigured
	}
	var scope OutcomeScope
	switch {
	case domainID != 0:
		if _, err := s.GetDomain(ctx, p, domainID); err != nil {
			return Charts{}, err
		}
		scope.DomainID = domainID
	case customerID != 0:
		if _, err := s.GetCustomer(ctx, p, customerID); err != nil {
			return Charts{}, err
		}
		scope.CustomerID = customerID
	case p.Operator:
		scope.All = true
	default:
		scope.ResellerID = p.ResellerID
	}
	return s.charts.get(ctx, series, scope, now)
}

// chartsFresh is how long a node serves charts it has summed: the
// counters themselves reach the store once per domainstats flush (10 s).
// Each sum reads every counter row of the scope's domains for 30 days
// (a reseller with 2,000 domains busy every hour: 1.4 million), and the charts
// are on the panel's first page; summed per view, any number of views at
// once each held a store connection for as long.
const chartsFresh = 10 * time.Second

// maxChartsHeld bounds the scopes whose charts a node holds (~3 KB each);
// past it they are dropped and summed again on demand.
const maxChartsHeld = 4096

// chartCache holds summed charts per scope; concurrent views of a scope
// not held wait for one sum.
type chartCache struct {
	mu     sync.Mutex
	held   map[OutcomeScope]heldCharts
	flight singleflight.Group
}

type heldCharts struct {
	at     time.Time
	charts Charts
}

func (cc *chartCache) get(ctx context.Context, series OutcomeSeries, scope OutcomeScope, now time.Time) (Charts, error) {
	cc.mu.Lock()
	h, ok := cc.held[scope]
	cc.mu.Unlock()
	if ok && !now.Before(h.at) && now.Sub(h.at) < chartsFresh && h.at.Truncate(time.Hour).Equal(now.Truncate(time.Hour)) {
		return h.charts, nil
	}
	key := fmt.Sprintf("%d/%d/%d/%t", scope.DomainID, scope.CustomerID, scope.ResellerID, scope.All)
	v, err, _ := cc.flight.Do(key, func() (any, error) {
		// The sum is every waiting viewer's: one leaving does not fail
		// the others (the store bounds each query by its timeout).
		c, err := sumCharts(context.WithoutCancel(ctx), series, scope, now)
		if err != nil {
			return nil, err
		}
		cc.mu.Lock()
		defer cc.mu.Unlock()
		if cc.held == nil || len(cc.held) >= maxChartsHeld {
			cc.held = make(map[OutcomeScope]heldCharts)
		}
		cc.held[scope] = heldCharts{at: now, charts: c}
		return c, nil
	})
	if err != nil {
		return Charts{}, err
	}
	return v.(Charts), nil
}

// sumCharts reads the scope's hourly bars for 24 h and daily bars for 30
// days up to now.
func sumCharts(ctx context.Context, series OutcomeSeries, scope OutcomeScope, now time.Time) (Charts, error) {
	hourStart := now.UTC().Truncate(time.Hour).Add(-23 * time.Hour)
	y, m, d := now.UTC().Date()
	dayStart := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -29)
	var c Charts
	var err error
	if c.Hourly, err = fill(series, ctx, scope, hourStart, time.Hour, 24); err != nil {
		return c, err
	}
	c.Daily, err = fill(series, ctx, scope, dayStart, 24*time.Hour, 30)
	return c, err
}

// fill reads n steps from start and returns every bucket, empty ones too.
func fill(series OutcomeSeries, ctx context.Context, scope OutcomeScope, start time.Time, step time.Duration, n int) ([]Bucket, error) {
	got, err := series.OutcomeSeries(ctx, scope, start, step)
	if err != nil {
		return nil, fmt.Errorf("outcome chart: %w", err)
	}
	out := make([]Bucket, n)
	for i := range out {
		out[i].Start = start.Add(time.Duration(i) * step)
	}
	for _, b := range got {
		if i := int(b.Start.Sub(start) / step); i >= 0 && i < n {
			out[i].Counts = b.Counts
		}
	}
	return out, nil
}
