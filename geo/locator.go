package geo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/internal/reloadstate"
	"github.com/mxgrid/mxgrid/netguard"
)

// Health components the Locator reports.
const (
	HealthDatabase  = "geo"
	HealthMemcached = "geo_memcached"
)

// Options are the Locator's collaborators.
type Options struct {
	// Registerer receives the mxgrid_geo_* metrics; nil leaves them
	// unregistered (tests, the CLI).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Health, when set, hears about a missing database and memcached
	// outages (both Degraded: mail flows, events lose their location).
	Health *health.Registry
	// NoEmbedded leaves a node without geo.database with no location at
	// all instead of the embedded DB-IP country database (tests of that
	// state).
	NoEmbedded bool
}

// Locator answers Lookup through the LRU, memcached and the mmdb files. It
// is safe for concurrent use. Run watches the files; Close releases them.
type Locator struct {
	cfg    Config
	log    *slog.Logger
	health *health.Registry
	m      metrics

	location dbFile
	asn      dbFile

	lru *lru // nil when cache_size is 0
	mc  *memcache.Client
	sel *rendezvous

	healthMu sync.Mutex // serialises health updates so the last word wins
}

// dbFile is one configured database path and the database currently
// serving it. Lookups Load the pointer; a reload Swaps it, then retires the
// old database once its in-flight lookups are done.
type dbFile struct {
	kind    string // "location" or "asn", for logs and metrics
	path    string
	wantASN bool
	cur     atomic.Pointer[database]

	// Touched only by New and Run's single goroutine.
	loadedInfo os.FileInfo
	failedInfo os.FileInfo
	failedErr  string

	// lastErr is the reason the file is not serving, for the CLI.
	lastErr atomic.Pointer[string]
	// state counts the file's loads and says, for health, when the file
	// on disk is not the one serving.
	state *reloadstate.File
}

// outcome is what one layer made of a lookup.
type outcome int

const (
	outHit        outcome = iota
	outMiss               // the layer does not have it (file: the database does not know it)
	outError              // the layer failed; the next one answers (file: the lookup fails)
	outSkipped            // memcached not asked: every server backing off, or ctx done
	outNotPublic          // private, loopback, CGNAT, documentation...: never looked up
	outNoDatabase         // nothing to look it up in
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"hit", "miss", "error", "skipped", "not_public", "no_database"}

func layerIndex(l Layer) int {
	switch l {
	case LayerLRU:
		return 0
	case LayerMemcached:
		return 1
	case LayerFile:
		return 2
	}
	return 3
}

// validOutcomes lists the series that exist, so /metrics shows every one
// of them from the start (at zero) and no meaningless ones.
var validOutcomes = map[Layer][]outcome{
	LayerLRU:       {outHit, outMiss},
	LayerMemcached: {outHit, outMiss, outError, outSkipped},
	LayerFile:      {outHit, outMiss, outError},
	LayerNone:      {outNotPublic, outNoDatabase},
}

type metrics struct {
	// Resolved once: WithLabelValues on every lookup cost more than the
	// LRU hit it counted.
	lookups   [4][numOutcomes]prometheus.Counter
	latency   [4]prometheus.Observer
	buildTime *prometheus.GaugeVec
	mcDown    prometheus.Gauge
}

func (m *metrics) count(layer Layer, o outcome) { m.lookups[layerIndex(layer)][o].Inc() }

func (m *metrics) observe(layer Layer, since time.Time) {
	m.latency[layerIndex(layer)].Observe(time.Since(since).Seconds())
}

func newMetrics(reg prometheus.Registerer) metrics {
	f := promauto.With(reg)
	lookups := f.NewCounterVec(prometheus.CounterOpts{
		Name: "mxgrid_geo_lookups_total",
		Help: "GeoIP lookups by layer (lru, memcached, file, none) and outcome (hit, miss, error, skipped, not_public, no_database).",
	}, []string{"layer", "outcome"})
	latency := f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mxgrid_geo_lookup_duration_seconds",
		Help:    "Time spent in each GeoIP lookup layer.",
		Buckets: []float64{1e-6, 4e-6, 16e-6, 64e-6, 256e-6, 1e-3, 4e-3, 16e-3, 64e-3, 0.25},
	}, []string{"layer"})
	m := metrics{
		buildTime: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mxgrid_geo_database_build_timestamp_seconds",
			Help: "Build time of the GeoIP database being served, from its metadata.",
		}, []string{"database"}),
		mcDown: f.NewGauge(prometheus.GaugeOpts{
			Name: "mxgrid_geo_memcached_servers_down",
			Help: "Configured memcached servers currently skipped after failures.",
		}),
	}
	for layer, outcomes := range validOutcomes {
		i := layerIndex(layer)
		for _, o := range outcomes {
			m.lookups[i][o] = lookups.WithLabelValues(string(layer), outcomeNames[o])
		}
		if layer != LayerNone {
			m.latency[i] = latency.WithLabelValues(string(layer))
		}
	}
	return m
}

// New opens the configured databases and memcached client. A database that
// cannot be opened is not fatal: the node runs without locations, reports
// it (log and health) and Run keeps trying. Only an invalid config fails.
func New(cfg Config, opts Options) (*Locator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Locator{
		cfg:      cfg,
		log:      log.With("component", "geo"),
		health:   opts.Health,
		m:        newMetrics(opts.Registerer),
		location: dbFile{kind: "location", path: cfg.Database},
		asn:      dbFile{kind: "asn", path: cfg.ASNDatabase, wantASN: true},
	}
	l.location.state = fileState(opts.Registerer, "location", cmp.Or(cfg.Database, EmbeddedPath))
	l.asn.state = fileState(opts.Registerer, "asn", cfg.ASNDatabase)
	if cfg.CacheSize > 0 {
		l.lru = newLRU(cfg.CacheSize)
	}
	if len(cfg.Memcached) > 0 {
		sel, err := newRendezvous(cfg.Memcached)
		if err != nil {
			return nil, fmt.Errorf("geo: memcached: %w", err)
		}
		l.sel = sel
		l.mc = memcache.NewFromSelector(sel)
		l.mc.Timeout = cfg.MemcachedTimeout
		// gomemcache keeps 2 idle connections per server by default: the
		// recorder, the CLI and a burst of lookups would keep redialling.
		l.mc.MaxIdleConns = 16
	}
	switch {
	case cfg.Database != "":
	case opts.NoEmbedded:
		l.log.Warn("no GeoIP database configured (geo.database): spam sources are recorded without location")
	default:
		l.loadEmbedded()
	}
	l.location.load(l)
	l.asn.load(l)
	l.updateDatabaseHealth()
	return l, nil
}

// loadEmbedded serves the built-in country database, so a node with no
// configuration still locates spam sources (and is not degraded for it).
func (l *Locator) loadEmbedded() {
	d, err := openEmbedded()
	if err != nil {
		msg := err.Error()
		l.location.lastErr.Store(&msg)
		l.location.state.Failed(err)
		l.log.Error("embedded GeoIP database not loaded", "err", err)
		return
	}
	l.location.cur.Store(d)
	l.location.state.Loaded()
	l.m.buildTime.WithLabelValues(l.location.kind).Set(float64(d.db.Metadata.BuildEpoch))
	l.log.Info("GeoIP database loaded", "database", l.location.kind, "path", EmbeddedPath,
		"built", d.db.Metadata.BuildTime().UTC(), "attribution", EmbeddedAttribution,
		"hint", "set geo.database (mxgrid geoip update) for city precision")
}

// Lookup locates addr. The Layer says where the answer came from. Non-public
// addresses (private, loopback, CGNAT, documentation...) are never looked
// up: they return a zero Location and LayerNone. Cache failures are never
// returned (the next layer answers); an error means the database file
// itself could not be read for this address. A 6to4 or NAT64 address is
// looked up as the IPv4 address in it, where its sender is: a flat
// database (the embedded one) placed all 6to4 in one country, and knew no
// NAT64.
func (l *Locator) Lookup(ctx context.Context, addr netip.Addr) (Location, Layer, error) {
	addr = netguard.Embedded(addr)
	if !Public(addr) {
		l.m.count(LayerNone, outNotPublic)
		return Location{}, LayerNone, nil
	}
	locDB, asnDB := l.location.cur.Load(), l.asn.cur.Load()
	if locDB == nil && asnDB == nil {
		l.m.count(LayerNone, outNoDatabase)
		return Location{}, LayerNone, nil
	}
	version := dbVersion(locDB) + "." + dbVersion(asnDB)

	if l.lru != nil {
		start := time.Now()
		loc, ok := l.lru.get(addr, version)
		l.m.observe(LayerLRU, start)
		if ok {
			l.m.count(LayerLRU, outHit)
			return loc, LayerLRU, nil
		}
		l.m.count(LayerLRU, outMiss)
	}

	key := cacheKey(version, addr)
	if loc, ok := l.memcachedGet(ctx, key); ok {
		if l.lru != nil {
			l.lru.put(addr, version, loc)
		}
		return loc, LayerMemcached, nil
	}

	start := time.Now()
	loc, err := l.lookupFiles(addr)
	l.m.observe(LayerFile, start)
	if err != nil {
		l.m.count(LayerFile, outError)
		return Location{}, LayerFile, fmt.Errorf("geo: %w", err)
	}
	if loc.Located || loc.ASN != 0 {
		l.m.count(LayerFile, outHit)
	} else {
		l.m.count(LayerFile, outMiss)
	}
	if l.lru != nil {
		l.lru.put(addr, version, loc)
	}
	l.memcachedSet(ctx, key, loc)
	return loc, LayerFile, nil
}

func dbVersion(d *database) string {
	if d == nil {
		return "-"
	}
	return d.version
}

// cacheKey names addr's entry in memcached. The database versions are part
// of the key, so a node that reloaded a newer file never reads entries
// computed from the old one (they expire on their own).
func cacheKey(version string, addr netip.Addr) string {
	return "mxgrid:geo:1:" + version + ":" + addr.String()
}

// lookupFiles reads both databases. Each is acquired for the duration of
// its read, so a concurrent reload never unmaps a file under it.
func (l *Locator) lookupFiles(addr netip.Addr) (Location, error) {
	var loc Location
	if d := l.location.acquire(); d != nil {
		err := d.read(func() error { return d.locate(addr, &loc) })
		d.release()
		if err != nil {
			return Location{}, err
		}
	}
	if d := l.asn.acquire(); d != nil {
		err := d.read(func() error { return d.asn(addr, &loc) })
		d.release()
		if err != nil {
			return Location{}, err
		}
	}
	return loc, nil
}

// memcachedGet returns a cached location. A miss, a skipped or failing
// server and an undecodable value all return false: the file answers.
func (l *Locator) memcachedGet(ctx context.Context, key string) (Location, bool) {
	if l.mc == nil {
		return Location{}, false
	}
	server, err := l.sel.PickServer(key)
	if err != nil || ctx.Err() != nil {
		// Every server is backing off, or the caller gave up: waiting for
		// memcached would only add latency to an answer the file gives.
		l.m.count(LayerMemcached, outSkipped)
		return Location{}, false
	}
	start := time.Now()
	// gomemcache picks the server again from the same selector; the
	// result only differs if the server set changed in between, and then
	// the failure is merely attributed to the server we expected.
	item, err := l.mc.Get(key)
	l.m.observe(LayerMemcached, start)
	switch {
	case errors.Is(err, memcache.ErrCacheMiss):
		l.memcachedOK(server.String())
		l.m.count(LayerMemcached, outMiss)
		return Location{}, false
	case err != nil:
		l.memcachedFailed(server.String(), err)
		l.m.count(LayerMemcached, outError)
		return Location{}, false
	}
	l.memcachedOK(server.String())
	loc, err := decodeLocation(item.Value)
	if err != nil {
		l.log.Debug("undecodable memcached entry", "key", key, "err", err)
		l.m.count(LayerMemcached, outError)
		return Location{}, false
	}
	l.m.count(LayerMemcached, outHit)
	return loc, true
}

// memcachedSet shares a file lookup with the other nodes; failures only
// cost them a file lookup of their own.
func (l *Locator) memcachedSet(ctx context.Context, key string, loc Location) {
	if l.mc == nil || ctx.Err() != nil {
		return
	}
	server, err := l.sel.PickServer(key)
	if err != nil {
		return
	}
	ttl := l.cfg.TTL
	if !loc.Located && loc.ASN == 0 {
		ttl = l.cfg.NegativeTTL
	}
	err = l.mc.Set(&memcache.Item{Key: key, Value: encodeLocation(loc), Expiration: int32(ttl / time.Second)})
	if err != nil {
		l.memcachedFailed(server.String(), err)
		return
	}
	l.memcachedOK(server.String())
}

func (l *Locator) memcachedFailed(server string, err error) {
	if l.sel.failed(staticAddr{network: "tcp", str: server}, err) {
		l.log.Warn("memcached server failing; skipping it and reading the GeoIP file instead", "server", server, "err", err)
		l.updateMemcachedHealth()
	}
}

func (l *Locator) memcachedOK(server string) {
	if l.sel.succeeded(staticAddr{network: "tcp", str: server}) {
		l.log.Info("memcached server answering again", "server", server)
		l.updateMemcachedHealth()
	}
}

func (l *Locator) updateMemcachedHealth() {
	l.healthMu.Lock()
	defer l.healthMu.Unlock()
	down := l.sel.down()
	l.m.mcDown.Set(float64(len(down)))
	if l.health == nil {
		return
	}
	if len(down) == 0 {
		l.health.Set(HealthMemcached, health.OK, "")
		return
	}
	servers := make([]string, 0, len(down))
	for s, err := range down {
		servers = append(servers, fmt.Sprintf("%s (%v)", s, err))
	}
	sort.Strings(servers)
	l.health.Set(HealthMemcached, health.Degraded,
		fmt.Sprintf("memcached unreachable: %s; GeoIP lookups fall back to the local file", strings.Join(servers, ", ")))
}

func (l *Locator) updateDatabaseHealth() {
	if l.health == nil {
		return
	}
	l.healthMu.Lock()
	defer l.healthMu.Unlock()
	var reasons []string
	if l.cfg.Database == "" && l.location.cur.Load() == nil && l.location.lastErr.Load() == nil {
		reasons = append(reasons, "no GeoIP database configured (geo.database): spam sources are recorded without location")
	}
	for _, f := range []*dbFile{&l.location, &l.asn} {
		if r := f.state.Reason(); r != "" {
			reasons = append(reasons, r)
		}
	}
	if len(reasons) == 0 {
		l.health.Set(HealthDatabase, health.OK, "")
		return
	}
	l.health.Set(HealthDatabase, health.Degraded, strings.Join(reasons, "; "))
}

// Run checks the database files every reload_interval and swaps in a
// replaced file. It returns nil when ctx ends; the databases stay open
// until Close, so a recorder flushing at shutdown still gets locations.
func (l *Locator) Run(ctx context.Context) error {
	if l.cfg.Database == "" && l.cfg.ASNDatabase == "" {
		<-ctx.Done()
		return nil
	}
	periodic.Every(ctx, l.cfg.ReloadInterval, nil, func(context.Context) {
		l.location.load(l)
		l.asn.load(l)
		l.updateDatabaseHealth()
	})
	return nil
}

// Close releases the databases (after in-flight lookups) and memcached
// connections. Lookups after Close answer LayerNone.
func (l *Locator) Close() error {
	var errs []error
	for _, f := range []*dbFile{&l.location, &l.asn} {
		if d := f.cur.Swap(nil); d != nil {
			errs = append(errs, d.retire())
		}
	}
	if l.mc != nil {
		errs = append(errs, l.mc.Close())
	}
	return errors.Join(errs...)
}

// DatabaseInfo describes a configured database, for the CLI and logs.
type DatabaseInfo struct {
	Kind   string    `json:"kind"` // location or asn
	Path   string    `json:"path"`
	Loaded bool      `json:"loaded"`
	Type   string    `json:"type,omitempty"`
	Schema string    `json:"schema,omitempty"`
	Built  time.Time `json:"built,omitzero"`
	Error  string    `json:"error,omitempty"`
}

// Databases lists the configured databases and what is loaded from them.
func (l *Locator) Databases() []DatabaseInfo {
	var out []DatabaseInfo
	for _, f := range []*dbFile{&l.location, &l.asn} {
		if f.path == "" && f.cur.Load() == nil {
			continue
		}
		info := DatabaseInfo{Kind: f.kind, Path: f.path}
		if f.path == "" {
			info.Path = EmbeddedPath
		}
		if d := f.acquire(); d != nil {
			info.Loaded = true
			info.Type = d.db.Metadata.DatabaseType
			info.Schema = d.schema.String()
			info.Built = d.db.Metadata.BuildTime().UTC()
			d.release()
		}
		if e := f.lastErr.Load(); e != nil {
			info.Error = *e
		}
		out = append(out, info)
	}
	return out
}

// acquire returns the serving database, read-locked, or nil. A database
// retired between Load and acquire has already been replaced (or Close
// ran), so the loop retries with the successor and ends at nil at worst.
func (f *dbFile) acquire() *database {
	for {
		d := f.cur.Load()
		if d == nil {
			return nil
		}
		if d.acquire() {
			return d
		}
	}
}

// load (re)opens the file when it is new or replaced. A failed load keeps
// the previous database serving and is logged once per distinct file.
func (f *dbFile) load(l *Locator) {
	if f.path == "" {
		return
	}
	fi, err := os.Stat(f.path)
	if err != nil {
		f.failed(l, nil, err) // it names the path already
		return
	}
	if f.loadedInfo != nil && sameFile(f.loadedInfo, fi) {
		// The file serving, perhaps back after a failure: a new failure
		// is reported again, even if it reads as the last one.
		f.failedInfo, f.failedErr = nil, ""
		f.state.InForce()
		return
	}
	if f.failedInfo != nil && sameFile(f.failedInfo, fi) {
		return // the same broken file: already reported
	}
	d, err := openDatabase(f.path, f.wantASN, fi.Size())
	if err != nil {
		f.failed(l, fi, err)
		return
	}
	f.loadedInfo, f.failedInfo, f.failedErr = fi, nil, ""
	f.lastErr.Store(nil)
	f.state.Loaded()
	l.m.buildTime.WithLabelValues(f.kind).Set(float64(d.db.Metadata.BuildEpoch))
	old := f.cur.Swap(d)
	l.log.Info("GeoIP database loaded", "database", f.kind, "path", f.path,
		"type", d.db.Metadata.DatabaseType, "schema", d.schema.String(),
		"built", d.db.Metadata.BuildTime().UTC(), "replaced", old != nil)
	if old != nil {
		if err := old.retire(); err != nil {
			l.log.Warn("closing the replaced GeoIP database", "database", f.kind, "err", err)
		}
	}
}

func (f *dbFile) failed(l *Locator, fi os.FileInfo, err error) {
	f.failedInfo = fi
	msg := err.Error()
	if f.cur.Load() != nil {
		msg += " (still serving the previous file)"
	} else {
		f.lastErr.Store(&msg)
	}
	if msg == f.failedErr {
		return
	}
	f.failedErr = msg
	f.state.Failed(err)
	l.log.Error("GeoIP database not loaded", "database", f.kind, "path", f.path, "err", err,
		"serving_previous", f.cur.Load() != nil)
}

// fileState is the reloadstate of the database of kind at path. Its
// condition is the Locator's own (HealthDatabase), which folds in both
// files' reasons.
func fileState(reg prometheus.Registerer, kind, path string) *reloadstate.File {
	return reloadstate.New(reg, nil, reloadstate.Spec{
		Metric: "mxgrid_geo_database",
		Labels: prometheus.Labels{"database": kind},
		Help:   "a GeoIP database (geo.database: location, geo.asn_database: asn)",
		Name:   "GeoIP " + kind + " database",
		Paths:  []string{path},
	})
}

// sameFile reports whether two stats describe the same, unmodified file:
// same inode (an atomic rename replaces it) and same size and mtime (an
// in-place rewrite changes them).
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
