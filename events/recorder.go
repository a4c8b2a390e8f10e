package events

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/geo"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/batchq"
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
	// InsertEvents writes evs, all or none; it may set their IDs, and
	// evs given again (a retry) are the same batch.
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
// writes them in batches from Run, geolocating each batch once. It is safe
// for concurrent use.
type Recorder struct {
	cfg     Config
	trusted []netip.Prefix
	store   Store
	locator Locator
	log     *slog.Logger
	queue   *batchq.Queue[Event, store.StoredEvent]
	located *prometheus.CounterVec
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
	}
	q, err := batchq.New(cfg.Queue(HealthComponent, "events"), r.locate, opts.Store.InsertEvents, opts.Store.PruneEvents, opts.Registerer, r.log, opts.Health)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	r.queue = q
	f := promauto.With(opts.Registerer)
	r.located = f.NewCounterVec(prometheus.CounterOpts{
		Name: "mxgrid_events_geolocated_total",
		Help: "Events by geolocation result (located, not_located, error).",
	}, []string{"result"})
	return r, nil
}

// Record queues ev and returns at once: it never blocks and never fails.
// When the buffer is full the oldest queued event is dropped and counted.
// A zero Time is set to now. ev.Symbols is copied (at most the first 10);
// ev.Received is read only when ClientIP is a trusted relay, and never kept.
func (r *Recorder) Record(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Symbols = cleanSymbols(ev.Symbols)
	// The source is worked out now, not when the batch is written: an
	// event waits in a buffer of up to events.buffer (10,000), and the
	// Received fields it held are what the sender wrote behind a trusted
	// forwarder, up to a 1 MB header each. Walking a chain is a few
	// microseconds; the geolocation, which waits on I/O, stays off the
	// SMTP path.
	ev.source = SourceIP(ev.ClientIP, ev.Received, r.trusted)
	ev.Received = nil
	r.queue.Put(ev)
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

// Run writes queued events in batches and prunes old ones until ctx ends;
// then it writes what it still holds, bounded by shutdown_timeout, and
// returns an error only if events were lost that way.
func (r *Recorder) Run(ctx context.Context) error { return r.queue.Run(ctx) }

// locate turns events into rows, looking each source up. A failed lookup
// stores the event without location rather than losing it.
func (r *Recorder) locate(ctx context.Context, evs []Event) []store.StoredEvent {
	out := make([]store.StoredEvent, len(evs))
	for i, ev := range evs {
		se := store.StoredEvent{
			Time: ev.Time, IP: ev.source, Node: ev.Node, Provider: ev.Provider, Domain: ev.Domain, DomainID: ev.DomainID,
			Verdict: string(ev.Verdict), Action: ev.Action, Score: ev.Score, Symbols: ev.Symbols,
		}
		if r.locator != nil {
			loc, _, err := r.locator.Lookup(ctx, se.IP)
			switch {
			case err != nil:
				r.located.WithLabelValues("error").Inc()
				r.log.Debug("geolocating event source", "ip", se.IP, "err", err)
			case loc.Located:
				r.located.WithLabelValues("located").Inc()
			default:
				r.located.WithLabelValues("not_located").Inc()
			}
			se.Located, se.Country, se.CountryName, se.City = loc.Located, loc.Country, loc.CountryName, loc.City
			se.Lat, se.Lon, se.AccuracyKM, se.ASN, se.ASOrg = loc.Lat, loc.Lon, loc.AccuracyKM, loc.ASN, loc.ASOrg
		}
		out[i] = se
	}
	return out
}
