package spammap

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/sync/singleflight"
)

// Leader tells whether this node is the cluster's leader now. The cluster
// package implements it; only the leader generates the map on schedule.
type Leader interface{ IsLeader() bool }

// MapStore keeps the rendered generations. *store.Store implements it.
type MapStore interface {
	PutMap(ctx context.Context, r store.MapRecord) (bool, error)
	MapVersion(ctx context.Context, scope string) (generatedAt time.Time, etag string, ok bool, err error)
	GetMap(ctx context.Context, scope string) (store.MapRecord, bool, error)
}

var _ MapStore = (*store.Store)(nil)

// GlobalScope is the cluster-wide map.
const GlobalScope = "global"

// Scheduler runs on every node. On the leader it generates the map once per
// interval; on every node it follows the stored generation and holds it for
// the HTTP handlers.
//
// Generations are due at wall-clock multiples of the interval (on the hour
// by default), so nodes agree on when one is due without talking: when the
// leader dies, the next leader sees at its next poll whether the current
// period's map exists and renders it if not.
type Scheduler struct {
	cfg    Config
	scope  string
	world  *World
	events EventSource
	maps   MapStore
	leader Leader
	log    *slog.Logger
	poll   time.Duration

	seconds prometheus.Histogram
	points  prometheus.Gauge

	// mu serialises changes of current: generations on this node
	// (schedule and API) and the poll's loads of the stored one.
	mu      sync.Mutex
	current atomic.Pointer[Map]

	// Scoped maps (scope.go): renders and loads in flight, their places
	// on this node (maxScopedRenders, maxScopedLoads) and the maps held.
	scopes    singleflight.Group
	renders   chan struct{}
	loads     chan struct{}
	scopeMu   sync.Mutex
	scopeMaps map[string]*Map
}

// NewScheduler builds a scheduler for the global map. Metrics register on
// reg (several nodes can live in one process, each with its registry).
func NewScheduler(cfg Config, world *World, events EventSource, maps MapStore, leader Leader,
	reg prometheus.Registerer, log *slog.Logger) (*Scheduler, error) {
	placeholder, err := Render(world, &Aggregate{Scope: GlobalScope, Window: Window{Points: cfg.Points, Seconds: int64(cfg.Window / time.Second)},
		Locations: []Location{}, Countries: []CountryCount{}, Networks: []Network{}, Attribution: cfg.Attribution})
	if err != nil {
		return nil, err
	}
	f := promauto.With(reg)
	s := &Scheduler{
		cfg:       cfg,
		scope:     GlobalScope,
		world:     world,
		events:    events,
		maps:      maps,
		leader:    leader,
		log:       log,
		scopeMaps: make(map[string]*Map),
		renders:   make(chan struct{}, maxScopedRenders),
		loads:     make(chan struct{}, maxScopedLoads),
		// A minute bounds how stale a follower's copy is and how long a
		// missed generation waits for a new leader, at one cheap query.
		poll: min(cfg.Interval, time.Minute),
		seconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "mxgrid_map_generation_seconds",
			Help:    "Time to aggregate, render and store one generation of the map.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
		points: f.NewGauge(prometheus.GaugeOpts{
			Name: "mxgrid_map_points",
			Help: "Events aggregated in the map this node serves.",
		}),
	}
	// Until a generation exists, nodes serve the same deterministic empty
	// map (its time is zero), so an embed never shows an error.
	s.current.Store(placeholder)
	return s, nil
}

// Current is the map to serve: the latest stored generation, or an empty
// map before the first one.
func (s *Scheduler) Current() *Map { return s.current.Load() }

// Interval is how long a generation is meant to be served.
func (s *Scheduler) Interval() time.Duration { return s.cfg.Interval }

// Run polls until ctx ends. Store errors are logged and retried at the next
// poll: the node keeps serving the map it has.
func (s *Scheduler) Run(ctx context.Context) error {
	s.tick(ctx)
	periodic.Every(ctx, s.poll, nil, s.tick)
	return nil
}

func (s *Scheduler) tick(ctx context.Context) {
	if s.leader.IsLeader() {
		due, err := s.due(ctx, time.Now())
		if err != nil {
			s.log.Warn("map: check generation", "err", err)
		} else if due {
			if _, err := s.Regenerate(ctx); err != nil {
				s.log.Error("map: scheduled generation failed", "err", err)
			}
		}
	}
	// Under mu, as a generation: loaded beside one the API asked for, the
	// older generation it read replaced the new one.
	s.mu.Lock()
	err := s.refresh(ctx)
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("map: load stored generation", "err", err)
	}
}

// due reports whether the current period has no generation yet.
func (s *Scheduler) due(ctx context.Context, now time.Time) (bool, error) {
	at, _, ok, err := s.maps.MapVersion(ctx, s.scope)
	if err != nil {
		return false, err
	}
	return !ok || at.Before(now.Truncate(s.cfg.Interval)), nil
}

// refresh loads the stored generation when it differs from the one held.
// The caller holds mu.
func (s *Scheduler) refresh(ctx context.Context) error {
	_, etag, ok, err := s.maps.MapVersion(ctx, s.scope)
	if err != nil || !ok || etag == s.current.Load().ETag {
		return err
	}
	rec, ok, err := s.maps.GetMap(ctx, s.scope)
	if err != nil || !ok {
		return err
	}
	s.set(FromRecord(rec, s.world))
	return nil
}

func (s *Scheduler) set(m *Map) {
	s.current.Store(m)
	s.points.Set(float64(m.Events))
}

// Regenerate builds, stores and serves a generation now, whether or not
// this node leads: the schedule calls it on the leader, and the operator's
// API on whichever node gets the request.
func (s *Scheduler) Regenerate(ctx context.Context) (*Map, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	agg, err := Collect(ctx, s.events, s.cfg, s.scope, start, s.world)
	if err != nil {
		return nil, err
	}
	m, err := Render(s.world, agg)
	if err != nil {
		return nil, err
	}
	written, err := s.maps.PutMap(ctx, m.Record())
	if err != nil {
		return nil, fmt.Errorf("spammap: store generation: %w", err)
	}
	elapsed := time.Since(start)
	s.seconds.Observe(elapsed.Seconds())
	if !written {
		// Another node stored a newer generation meanwhile; serve that.
		s.log.Info("map: a newer generation exists; keeping it", "etag", m.ETag)
		if err := s.refresh(ctx); err != nil {
			return nil, err
		}
		return s.Current(), nil
	}
	s.set(m)
	s.log.Info("map: generated", "events", agg.Events, "locations", len(agg.Locations),
		"countries", len(agg.Countries), "networks", len(agg.Networks), "took", elapsed.Round(time.Millisecond), "etag", m.ETag)
	return m, nil
}

// Record is the map as stored.
func (m *Map) Record() store.MapRecord {
	return store.MapRecord{Scope: m.Scope, GeneratedAt: m.GeneratedAt, ETag: m.ETag, Events: m.Events,
		JSON: m.JSON, Drawing: m.Drawing, Body: m.Body}
}

// FromRecord is a stored generation, ready to serve over w.
func FromRecord(r store.MapRecord, w *World) *Map {
	m := &Map{Scope: r.Scope, GeneratedAt: r.GeneratedAt, ETag: r.ETag, Events: r.Events,
		JSON: r.JSON, Drawing: r.Drawing, Body: r.Body, viewW: w.Width, viewH: w.Height}
	if r.Scope != GlobalScope {
		// Only scoped maps carry a brand; the global one skips the decode.
		var b struct{ Brand *Brand }
		if json.Unmarshal(r.JSON, &b) == nil {
			m.brand = b.Brand
		}
	}
	return m
}
