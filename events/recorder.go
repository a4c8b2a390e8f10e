package events

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/geo"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/store"
)

// HealthComponent is the name the Recorder reports under.
const HealthComponent = "events"

// maxSymbols bounds the symbols kept per event: the map and the API show
// the top few, and the row stays small.
const maxSymbols = 10

// Locator geolocates a source address; *geo.Locator is the implementation.
type Locator interface {
	Lookup(ctx context.Context, addr netip.Addr) (geo.Location, geo.Layer, error)
}

// Store persists events; *store.Store is the implementation.
type Store interface {
	InsertEvents(ctx context.Context, evs []store.StoredEvent) error
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
}

var (
	_ Locator = (*geo.Locator)(nil)
	_ Store   = (*store.Store)(nil)
)

// Options are the Recorder's collaborators.
type Options struct {
	Store Store // required
	// Locator may be nil: events are then stored without location.
	Locator    Locator
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Health     *health.Registry
}

// Recorder takes events from the SMTP path without ever blocking it, and
// writes them in batches from Run. It is safe for concurrent use.
type Recorder struct {
	cfg     Config
	trusted []netip.Prefix
	store   Store
	locator Locator
	log     *slog.Logger
	health  *health.Registry
	m       recorderMetrics

	mu   sync.Mutex
	buf  []Event // ring of len cfg.Buffer: the n events from head on
	head int
	n    int
	wake chan struct{} // a batch is ready

	// Owned by Run's goroutine.
	pending []store.StoredEvent // located batch waiting for a successful write
	failing bool
	retryAt time.Time
}

type recorderMetrics struct {
	recorded    prometheus.Counter
	droppedFull prometheus.Counter
	droppedStop prometheus.Counter
	stored      prometheus.Counter
	storeErrors prometheus.Counter
	pruned      prometheus.Counter
	located     *prometheus.CounterVec
	batch       prometheus.Histogram
}

func newRecorderMetrics(reg prometheus.Registerer, r *Recorder) recorderMetrics {
	f := promauto.With(reg)
	dropped := f.NewCounterVec(prometheus.CounterOpts{
		Name: "mxgrid_events_dropped_total",
		Help: "Events lost: the oldest when the buffer is full (buffer_full), or those still unwritten when the node stopped (shutdown).",
	}, []string{"reason"})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxgrid_events_buffered",
		Help: "Events waiting in memory to be written.",
	}, func() float64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return float64(r.n)
	})
	return recorderMetrics{
		recorded: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_events_recorded_total",
			Help: "Events handed to the recorder by the SMTP path.",
		}),
		droppedFull: dropped.WithLabelValues("buffer_full"),
		droppedStop: dropped.WithLabelValues("shutdown"),
		stored: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_events_stored_total",
			Help: "Events written to the store.",
		}),
		storeErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_events_store_errors_total",
			Help: "Failed batch writes (the batch is retried).",
		}),
		pruned: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_events_pruned_total",
			Help: "Events deleted after the retention period.",
		}),
		located: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_events_geolocated_total",
			Help: "Events by geolocation result (located, not_located, error).",
		}, []string{"result"}),
		batch: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "mxgrid_events_batch_write_seconds",
			Help:    "Time to write one batch of events to the store.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
	}
}

// NewRecorder validates cfg and returns a Recorder; call Run to write.
func NewRecorder(cfg Config, opts Options) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if opts.Store == nil {
		return nil, fmt.Errorf("events: a store is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	trusted, _ := cfg.Trusted() // checked by Validate
	r := &Recorder{
		cfg:     cfg,
		trusted: trusted,
		store:   opts.Store,
		locator: opts.Locator,
		log:     log.With("component", "events"),
		health:  opts.Health,
		buf:     make([]Event, cfg.Buffer),
		wake:    make(chan struct{}, 1),
	}
	r.m = newRecorderMetrics(opts.Registerer, r)
	return r, nil
}

// Record queues ev and returns at once: it never blocks and never fails.
// When the buffer is full the oldest queued event is dropped and counted.
// A zero Time is set to now. ev.Symbols is copied (at most the first 10);
// ev.Received is kept only when ClientIP is a trusted relay, and must not be
// modified afterwards.
func (r *Recorder) Record(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Symbols = cleanSymbols(ev.Symbols)
	if !contains(r.trusted, ev.ClientIP.Unmap()) {
		ev.Received = nil // not needed: don't hold the headers in the buffer
	}
	r.mu.Lock()
	if r.n == len(r.buf) {
		r.buf[r.head] = ev // overwrite the oldest
		r.head = (r.head + 1) % len(r.buf)
		r.mu.Unlock()
		r.m.recorded.Inc()
		r.m.droppedFull.Inc()
		return
	}
	r.buf[(r.head+r.n)%len(r.buf)] = ev
	r.n++
	ready := r.n >= r.cfg.BatchSize
	r.mu.Unlock()
	r.m.recorded.Inc()
	if ready {
		select {
		case r.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// cleanSymbols copies the first maxSymbols symbols, replacing whitespace:
// the store keeps them space-separated.
func cleanSymbols(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, 0, min(len(in), maxSymbols))
	for _, s := range in[:min(len(in), maxSymbols)] {
		if s = strings.Join(strings.Fields(s), "_"); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// take removes up to max events from the front of the buffer.
func (r *Recorder) take(max int) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := min(r.n, max)
	if k == 0 {
		return nil
	}
	out := make([]Event, k)
	for i := range out {
		j := (r.head + i) % len(r.buf)
		out[i] = r.buf[j]
		r.buf[j] = Event{} // let the symbols be collected
	}
	r.head = (r.head + k) % len(r.buf)
	r.n -= k
	return out
}

// Run writes queued events in batches and prunes old ones until ctx ends;
// then it writes what it still holds, bounded by shutdown_timeout, and
// returns an error only if events were lost that way.
func (r *Recorder) Run(ctx context.Context) error {
	flush := time.NewTicker(r.cfg.FlushInterval)
	defer flush.Stop()
	prune := time.NewTicker(r.cfg.PruneInterval)
	defer prune.Stop()
	r.prune(ctx)
	for {
		select {
		case <-ctx.Done():
			return r.shutdown(ctx)
		case <-prune.C:
			r.prune(ctx)
			continue
		case <-r.wake:
		case <-flush.C:
		}
		if r.failing && time.Now().Before(r.retryAt) {
			continue // the store just failed; retry on the next tick, not per event
		}
		r.flush(ctx)
	}
}

// flush writes batches until the buffer is empty or a write fails (the
// failed batch stays pending and is retried first).
func (r *Recorder) flush(ctx context.Context) error {
	for {
		if r.pending == nil {
			evs := r.take(r.cfg.BatchSize)
			if len(evs) == 0 {
				return nil
			}
			r.pending = r.locate(ctx, evs)
		}
		if err := r.write(ctx, r.pending); err != nil {
			return err
		}
		r.pending = nil
	}
}

// locate turns events into rows, looking each source up. A failed lookup
// stores the event without location rather than losing it.
func (r *Recorder) locate(ctx context.Context, evs []Event) []store.StoredEvent {
	out := make([]store.StoredEvent, len(evs))
	for i, ev := range evs {
		se := store.StoredEvent{
			Time: ev.Time, IP: SourceIP(ev.ClientIP, ev.Received, r.trusted), Node: ev.Node, Provider: ev.Provider, Domain: ev.Domain, DomainID: ev.DomainID,
			Verdict: string(ev.Verdict), Action: ev.Action, Score: ev.Score, Symbols: ev.Symbols,
		}
		if r.locator != nil {
			loc, _, err := r.locator.Lookup(ctx, se.IP)
			switch {
			case err != nil:
				r.m.located.WithLabelValues("error").Inc()
				r.log.Debug("geolocating event source", "ip", se.IP, "err", err)
			case loc.Located:
				r.m.located.WithLabelValues("located").Inc()
			default:
				r.m.located.WithLabelValues("not_located").Inc()
			}
			se.Located, se.Country, se.CountryName, se.City = loc.Located, loc.Country, loc.CountryName, loc.City
			se.Lat, se.Lon, se.AccuracyKM, se.ASN, se.ASOrg = loc.Lat, loc.Lon, loc.AccuracyKM, loc.ASN, loc.ASOrg
		}
		out[i] = se
	}
	return out
}

func (r *Recorder) write(ctx context.Context, batch []store.StoredEvent) error {
	start := time.Now()
	err := r.store.InsertEvents(ctx, batch)
	r.m.batch.Observe(time.Since(start).Seconds())
	if err != nil {
		r.m.storeErrors.Inc()
		r.retryAt = time.Now().Add(r.cfg.FlushInterval)
		if !r.failing {
			r.failing = true
			r.log.Error("storing events failed; retrying, the buffer drops the oldest when full", "batch", len(batch), "err", err)
			if r.health != nil {
				r.health.Set(HealthComponent, health.Degraded,
					fmt.Sprintf("spam-source events cannot be stored (%v); buffering up to %d, then dropping the oldest", err, r.cfg.Buffer))
			}
		}
		return err
	}
	r.m.stored.Add(float64(len(batch)))
	if r.failing {
		r.failing = false
		r.log.Info("storing events again")
		if r.health != nil {
			r.health.Set(HealthComponent, health.OK, "")
		}
	}
	return nil
}

func (r *Recorder) prune(ctx context.Context) {
	before := time.Now().Add(-r.cfg.Retention)
	n, err := r.store.PruneEvents(ctx, before)
	r.m.pruned.Add(float64(n))
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("pruning old events", "before", before, "err", err)
		}
		return
	}
	if n > 0 {
		r.log.Info("pruned old events", "count", n, "before", before)
	}
}

// shutdown writes everything still held, within shutdown_timeout. A
// context detached from the cancelled one lets the writes proceed.
func (r *Recorder) shutdown(parent context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), r.cfg.ShutdownTimeout)
	defer cancel()
	err := r.flush(ctx)
	if err == nil {
		return nil
	}
	lost := len(r.pending)
	r.pending = nil
	r.mu.Lock()
	lost += r.n
	r.head, r.n = 0, 0
	clear(r.buf)
	r.mu.Unlock()
	r.m.droppedStop.Add(float64(lost))
	return fmt.Errorf("events: %d events not stored at shutdown: %w", lost, err)
}
