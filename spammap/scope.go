package spammap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mxgrid/mxgrid/store"
)

// Per-reseller and per-customer maps are drawn like the global one, from
// the same most recent events filtered to the scope's domains, and fall on
// the same wall-clock periods. They are rendered lazily: the first request
// in a period renders and stores the scope's generation (any node may; the
// store keeps the newest), later requests on every node serve it from the
// store or this node's memory. A reseller nobody looks at costs nothing,
// where rendering every reseller and customer each hour on the leader
// would cost a full scan per scope whether or not anyone views it.

// DomainEventSource streams the most recent events of some domains (by
// id), with EventSource's contract.
type DomainEventSource interface {
	RecentDomainEvents(ctx context.Context, domainIDs []int64, limit int, since time.Time, fn func(Event) error) error
}

// RecentDomainEvents streams the store's events of domains.
func (s StoreEvents) RecentDomainEvents(ctx context.Context, domainIDs []int64, limit int, since time.Time, fn func(Event) error) error {
	return s.Store.RecentDomainSources(ctx, domainIDs, limit, since, func(e store.Source) error {
		return fn(Event(e))
	})
}

var _ DomainEventSource = StoreEvents{}

// Scope is one white-label map: its stored name, the ids of the domains it
// covers and its brand.
type Scope struct {
	// Key names the stored map ("reseller:SLUG:ID", "customer:KEY:ID"); never
	// GlobalScope.
	Key string
	// Name is what /map.json shows as its scope (Key when empty).
	Name      string
	DomainIDs []int64
	Brand     Brand
	// Resolve, when set, gives DomainIDs and Brand once the map must be
	// rendered: a view of a map already rendered this period reads
	// neither.
	Resolve func(ctx context.Context) ([]int64, Brand, error)
}

// maxScopedRenders bounds the scoped maps this node renders at once. Each
// render streams up to map.points events over one of the store's
// connections (16 on PostgreSQL, shared with the mail path) for up to
// scopedRenderTimeout, and goes on after its viewer leaves: without a
// bound, anyone could open /map?customer=KEY for every customer and hang
// up, and have the node read them all at once. Past it, a scope not yet
// rendered this period waits up to scopedRenderWait for a place, then is
// ErrBusy (HTTP 429); renders in flight are joined, and stored maps read
// within maxScopedLoads.
const maxScopedRenders = 2

// scopedRenderWait is how long a render waits for a place: a render of a
// small scope takes milliseconds, so a few viewers of new scopes at once
// (a panel listing its customers' maps) are served in turn, not refused.
const scopedRenderWait = 5 * time.Second

// maxScopedLoads bounds the stored scoped maps this node reads at once.
// A node holds maxScopesHeld in memory and then forgets them all, so a
// viewer cycling through more scopes (customer maps are embedded on
// customers' sites, reseller slugs are their names) has every view, a
// HEAD or a 304 included, read a whole map (JSON, drawing and page,
// 150 KB and up) over the store's connections, which the mail path
// shares. Past it a load waits as a render does, then is ErrBusy.
const maxScopedLoads = 2

// ErrBusy: maxScopedRenders scoped maps are being rendered, or
// maxScopedLoads read from the store, on this node.
var ErrBusy = errors.New("spammap: this node is rendering or reading as many white-label maps as it may at once; try again shortly")

// maxScopesHeld bounds the scoped maps a node keeps in memory; past it, the
// held maps are dropped and reloaded from the store on demand.
const maxScopesHeld = 256

// Scoped returns the scope's map for the current period, rendering and
// storing it when no node has yet.
func (s *Scheduler) Scoped(ctx context.Context, sc Scope) (*Map, error) {
	if sc.Key == "" || sc.Key == GlobalScope {
		return nil, errors.New("spammap: a scoped map needs its own key")
	}
	period := time.Now().Truncate(s.cfg.Interval)
	if m := s.held(sc.Key); m != nil && !m.GeneratedAt.Before(period) {
		return m, nil
	}
	// One render per scope at a time on this node: a burst of first views
	// waits for the one render instead of each scanning the events. The
	// render is not the first viewer's: it goes on (bounded by
	// scopedRenderTimeout) and is stored when that viewer leaves, or an
	// anonymous client hanging up at once would have the events read
	// again and again, and fail the viewers waiting with it.
	ch := s.scopes.DoChan(sc.Key, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), scopedRenderTimeout)
		defer cancel()
		return s.scoped(rctx, sc, period)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Map), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// scopedRenderTimeout bounds a scoped map's render, which no viewer's
// request bounds (Scoped).
const scopedRenderTimeout = 2 * time.Minute

func (s *Scheduler) scoped(ctx context.Context, sc Scope, period time.Time) (*Map, error) {
	at, etag, ok, err := s.maps.MapVersion(ctx, sc.Key)
	if err != nil {
		return nil, err
	}
	if ok && !at.Before(period) {
		if m := s.held(sc.Key); m != nil && m.ETag == etag {
			return m, nil
		}
		m, err := s.load(ctx, sc.Key)
		if err != nil || m != nil {
			return m, err
		}
	}
	src, ok := s.events.(DomainEventSource)
	if !ok {
		return nil, errors.New("spammap: the event source cannot filter by domain")
	}
	release, err := take(s.renders)
	if err != nil {
		return nil, err
	}
	defer release()
	if sc.Resolve != nil {
		if sc.DomainIDs, sc.Brand, err = sc.Resolve(ctx); err != nil {
			return nil, fmt.Errorf("spammap: resolve %s: %w", sc.Key, err)
		}
	}
	start := time.Now()
	agg, err := collectFiltered(ctx, src, s.cfg, sc, start, s.world)
	if err != nil {
		return nil, err
	}
	m, err := Render(s.world, agg)
	if err != nil {
		return nil, err
	}
	m.Scope = sc.Key // stored and held under its key; agg.Scope is its public name
	if _, err := s.maps.PutMap(ctx, m.Record()); err != nil {
		return nil, fmt.Errorf("spammap: store %s: %w", sc.Key, err)
	}
	s.seconds.Observe(time.Since(start).Seconds())
	s.hold(m)
	return m, nil
}

// load reads the scope's stored map, nil when there is none.
func (s *Scheduler) load(ctx context.Context, key string) (*Map, error) {
	release, err := take(s.loads)
	if err != nil {
		return nil, err
	}
	defer release()
	rec, ok, err := s.maps.GetMap(ctx, key)
	if err != nil || !ok {
		return nil, err
	}
	m := FromRecord(rec, s.world)
	s.hold(m)
	return m, nil
}

// take waits up to scopedRenderWait for a place in places.
func take(places chan struct{}) (release func(), err error) {
	wait := time.NewTimer(scopedRenderWait)
	defer wait.Stop()
	select {
	case places <- struct{}{}:
		return func() { <-places }, nil
	case <-wait.C:
		return nil, ErrBusy
	}
}

// collectFiltered aggregates the scope's events; a scope without domains
// has an empty map.
func collectFiltered(ctx context.Context, src DomainEventSource, cfg Config, sc Scope, now time.Time, world *World) (*Aggregate, error) {
	var since time.Time
	if cfg.Window > 0 {
		since = now.Add(-cfg.Window)
	}
	a := newAggregator()
	if len(sc.DomainIDs) > 0 {
		done := false
		if sn, ok := src.(snapshotter); ok {
			var err error
			if done, err = collectRollup(ctx, sn, sc.DomainIDs, cfg.Points, since, a); err != nil {
				return nil, fmt.Errorf("spammap: read rollup of %s: %w", sc.Key, err)
			}
		}
		if !done {
			if err := src.RecentDomainEvents(ctx, sc.DomainIDs, cfg.Points, since, a.add); err != nil {
				return nil, fmt.Errorf("spammap: read events of %s: %w", sc.Key, err)
			}
		}
	}
	name := sc.Name
	if name == "" {
		name = sc.Key
	}
	agg := a.result(name, cfg, now, world.names())
	brand := sc.Brand
	agg.Brand = &brand
	return agg, nil
}

func (s *Scheduler) held(key string) *Map {
	s.scopeMu.Lock()
	defer s.scopeMu.Unlock()
	return s.scopeMaps[key]
}

func (s *Scheduler) hold(m *Map) {
	s.scopeMu.Lock()
	defer s.scopeMu.Unlock()
	if len(s.scopeMaps) >= maxScopesHeld {
		clear(s.scopeMaps)
	}
	s.scopeMaps[m.Scope] = m
}
