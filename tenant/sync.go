package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"sync"
	"time"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// SyncConfig is the `tenants:` section.
type SyncConfig struct {
	// ReloadInterval is the fallback reload period, for announcements a
	// node missed (it was down, or gossip dropped them).
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// StaleAfter is how many failed reload intervals make the snapshot
	// stale (readiness degraded).
	StaleAfter int `yaml:"stale_after"`
	// VerifyInterval is how often the leader re-checks pending domains'
	// DNS proof, at most VerifyPerRound of them each time.
	VerifyInterval time.Duration `yaml:"verify_interval"`
	VerifyPerRound int           `yaml:"verify_per_round"`
	// ReservedDomains no reseller may create (nor their subdomains).
	ReservedDomains []string `yaml:"reserved_domains"`
	// PendingClaimTTL is how long a reseller's unproven domain keeps its
	// name from the other resellers.
	PendingClaimTTL time.Duration `yaml:"pending_claim_ttl"`
	// DefaultQuota is every reseller's quota unless the operator set
	// another for it.
	DefaultQuota Quota `yaml:"default_quota"`
}

// DefaultSyncConfig reloads every 30 s, calls 3 missed reloads stale and
// re-checks up to 100 pending domains every 5 min; unproven claims lapse
// after DefaultPendingClaimTTL; resellers get DefaultQuota.
func DefaultSyncConfig() SyncConfig {
	return SyncConfig{ReloadInterval: 30 * time.Second, StaleAfter: 3, VerifyInterval: 5 * time.Minute, VerifyPerRound: 100,
		PendingClaimTTL: DefaultPendingClaimTTL, DefaultQuota: DefaultQuota}
}

// DefaultQuota is no cap. A cap the operator did not choose would refuse
// a large hosting reseller's provisioning (and costs a count of the
// reseller's recipients on every write that adds some); operators of an
// open reseller programme set tenants.default_quota (README suggests
// 10,000 domains and 1,000,000 recipients).
var DefaultQuota = Quota{}

// Validate checks the section; messages name the key.
func (c SyncConfig) Validate() error {
	if c.ReloadInterval < periodic.MinInterval {
		return fmt.Errorf("reload_interval: at least %s", periodic.MinInterval)
	}
	if c.StaleAfter < 1 {
		return errors.New("stale_after: at least 1")
	}
	// The product is the staleness age. Past int64 it wrapped negative:
	// every snapshot was stale from the start, readiness degraded and mail
	// to domains not in it deferred (451) instead of refused, forever.
	if int64(c.StaleAfter) > math.MaxInt64/int64(c.ReloadInterval) {
		return fmt.Errorf("stale_after: %d reload intervals of %s overflow a duration", c.StaleAfter, c.ReloadInterval)
	}
	if c.VerifyInterval < periodic.MinInterval {
		return fmt.Errorf("verify_interval: at least %s", periodic.MinInterval)
	}
	if c.VerifyPerRound < 1 {
		return errors.New("verify_per_round: at least 1")
	}
	if c.PendingClaimTTL < time.Minute {
		return errors.New("pending_claim_ttl: at least 1m")
	}
	// The ownership check drops a name NormalizeDomain refuses: a typo
	// here ("our brand.example", "*.example.net") left the domain open to
	// any reseller's claim, with nothing said.
	for i, r := range c.ReservedDomains {
		if _, err := NormalizeDomain(r); err != nil {
			return fmt.Errorf("reserved_domains[%d]: %w", i, err)
		}
	}
	return c.DefaultQuota.Validate("default_quota.").Err()
}

// BroadcastTopic is the cluster topic of tenant change announcements; the
// payload is the new version (uvarint), a hint only: receivers read the
// changes from the store.
const BroadcastTopic = "tenants"

// healthComponent is the readiness component the syncer reports as.
const healthComponent = "tenants"

// Loader reads the tenant data from the store.
type Loader interface {
	// Load reads everything.
	Load(ctx context.Context) (Data, error)
	// LoadSince reads what changed after version, or fails with
	// ErrChangesGone when the store cannot say.
	LoadSince(ctx context.Context, version uint64) (Delta, error)
}

// Syncer keeps a Directory current: it loads everything from the store at
// start (or serves the local snapshot file while the store is down), then
// applies what changed whenever Trigger is called (a local write or a
// cluster announcement) and every ReloadInterval, and records each change
// in the snapshot file's journal. It loads everything again only when the
// store's change log no longer reaches its version.
type Syncer struct {
	cfg     SyncConfig
	loader  Loader
	static  map[string]*Domain
	files   *snapshotFiles
	timeout time.Duration
	dir     *Directory
	health  *health.Registry
	log     *slog.Logger
	trigger chan struct{}
	now     func() time.Time
	loads   *prometheus.CounterVec

	// reloadMu makes reloads one at a time: tree and files are theirs.
	reloadMu sync.Mutex
	// tree is nil until the whole tenant tree was loaded from the store
	// (not the snapshot file, which holds only resolved domains): deltas
	// apply to it.
	tree *hierarchy

	mu sync.Mutex
	// confirmed is when the snapshot was last known to match the store.
	confirmed time.Time
	hasData   bool
	// fileErr is why the snapshot file present at start could not be
	// served: readiness names it rather than saying there is none.
	fileErr error
	// emptied is set while the store answers as one that never held a
	// tenant and this node serves stored domains (errEmptyStore).
	emptied error
}

// errEmptyStore: a full load found a store that has never held a tenant
// (version 0, nothing in it) while this node serves stored domains. A
// SQLite file deleted or emptied is made anew by the next start, and a
// PostgreSQL database dropped and created again answers the same: taken
// as the truth, every stored domain's mail was refused with 550 and the
// snapshot file that still held them was overwritten.
var errEmptyStore = errors.New("the tenant store holds no tenants")

// SyncOptions are a Syncer's dependencies.
type SyncOptions struct {
	Loader Loader
	// Static domains (from the YAML config) win over the store's.
	Static []*Domain
	// DataDir holds the snapshot file.
	DataDir string
	// Store names the database Loader reads (store.Config.Identity),
	// recorded in the snapshot file: a file written from another
	// deployment's store is refused rather than served while this one's
	// is down.
	Store string
	// Timeout bounds reading the changes from the store; a full load is
	// bounded by the Loader, being far longer at a large size.
	Timeout  time.Duration
	Health   *health.Registry
	Log      *slog.Logger
	Registry prometheus.Registerer
}

// NewSyncer builds the syncer and its directory, and loads the first
// snapshot: from the store, else the snapshot file, else the static domains
// only. It fails only when the static domains are invalid.
func NewSyncer(ctx context.Context, cfg SyncConfig, opts SyncOptions) (*Syncer, error) {
	s := &Syncer{
		cfg: cfg, loader: opts.Loader, files: newSnapshotFiles(opts.DataDir, opts.Store), timeout: opts.Timeout,
		health: opts.Health, log: opts.Log, trigger: make(chan struct{}, 1), now: time.Now,
	}
	s.confirmed = s.now()
	if s.timeout <= 0 {
		s.timeout = 5 * time.Second
	}
	snap, err := NewSnapshot(0, opts.Static)
	if err != nil {
		return nil, err
	}
	s.static = snap.domains
	s.dir = NewDirectory(snap)
	// Until the store or the snapshot file answers, only the config
	// file's domains are known, not every domain served.
	s.dir.unconfirmed.Store(true)
	reg := promauto.With(opts.Registry)
	reg.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxgrid_tenant_config_version",
		Help: "Tenant config version this node serves (0: static domains only).",
	}, func() float64 { return float64(s.dir.Snapshot().Version) })
	reg.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxgrid_tenant_config_age_seconds",
		Help: "Seconds since the served tenant snapshot was last confirmed current against the store.",
	}, func() float64 { return s.Age().Seconds() })
	reg.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxgrid_tenant_unservable_domains",
		Help: "Stored domains whose record could not be built (damaged, or refused by the API's checks); their mail is deferred (451) until the record is repaired.",
	}, func() float64 { return float64(len(s.dir.Snapshot().unservable)) })
	s.loads = reg.NewCounterVec(prometheus.CounterOpts{
		Name: "mxgrid_tenant_loads_total",
		Help: "Tenant snapshots built from the store: kind full (everything read) or delta (only what changed).",
	}, []string{"kind"})

	removed, err := s.files.removeTemps()
	if len(removed) > 0 {
		s.log.Info("removed tenant snapshot files an earlier run left unfinished", "files", removed)
	}
	if err != nil {
		s.log.Warn("removing unfinished tenant snapshot files", "err", err)
	}
	if err := s.Reload(ctx); errors.Is(err, errEmptyStore) {
		s.log.Error("not loading tenants from an empty store; serving the snapshot file", "err", err)
		s.report()
	} else if err != nil {
		s.log.Warn("tenant store unavailable at start; trying the local snapshot", "err", err)
		if err := s.loadFile(); err != nil {
			s.log.Warn("no usable tenant snapshot file", "file", s.files.base, "err", err)
			if !errors.Is(err, os.ErrNotExist) {
				s.mu.Lock()
				s.fileErr = err
				s.mu.Unlock()
			}
		}
		s.report()
	}
	return s, nil
}

// Directory is what the SMTP side reads.
func (s *Syncer) Directory() *Directory { return s.dir }

// Age is how long ago the snapshot was last confirmed against the store;
// since process start when it never was.
func (s *Syncer) Age() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now().Sub(s.confirmed)
}

// Trigger asks for a reload now; calls while one is pending coalesce.
// It never blocks, so it is safe from the cluster's dispatcher.
func (s *Syncer) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Run reloads on triggers and every ReloadInterval until ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	periodic.Every(ctx, s.cfg.ReloadInterval, s.trigger, func(ctx context.Context) {
		if err := s.Reload(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("tenant reload failed; serving the previous snapshot", "err", err, "version", s.dir.Snapshot().Version)
		}
		s.report()
	})
	return nil
}

// Reload brings the snapshot up to the store's version: the changes since
// the version served when it can, everything otherwise. On failure the
// current snapshot stays.
func (s *Syncer) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if s.tree != nil {
		err := s.applyChanges(lctx)
		if !errors.Is(err, ErrChangesGone) {
			return err
		}
		s.log.Info("the tenant change log does not reach this node's version; loading everything", "version", s.dir.Snapshot().Version)
	}
	// The loader bounds a full read itself: it takes far longer than a
	// delta at a hosting provider's size.
	data, err := s.loader.Load(ctx)
	if err != nil {
		return fmt.Errorf("load tenants: %w", err)
	}
	if data.Version == 0 && len(data.Resellers)+len(data.Customers)+len(data.Domains) == 0 {
		if err := s.refuseEmptyStore(); err != nil {
			return err
		}
	}
	tree := newHierarchy()
	snap, _ := tree.apply(Delta{Data: data}, &Snapshot{domains: s.static}, s.log)
	snap.Version = data.Version
	s.tree = tree
	s.dir.Swap(snap)
	s.loads.WithLabelValues("full").Inc()
	s.log.Info("tenant snapshot loaded", "version", data.Version, "domains", snap.Len())
	s.confirm()
	if err := s.files.writeBase(data.Version, s.now(), snap.domains); err != nil {
		// Serving is unaffected; only a restart during an outage is.
		s.log.Error("writing the tenant snapshot file", "file", s.files.base, "err", err)
	}
	return nil
}

// refuseEmptyStore decides about a store that has never held a tenant:
// it is a fresh install's, unless this node serves stored domains (at
// start, those of its snapshot file, which it then serves). Whoever means
// to start over on an empty store deletes the snapshot file, or writes to
// the store: a version of its own is believed.
func (s *Syncer) refuseEmptyStore() error {
	stored := func() (n int) {
		for d := range s.dir.Snapshot().All() {
			if d.Source == "store" {
				n++
			}
		}
		return n
	}
	n := stored()
	if n == 0 && s.tree == nil {
		version, saved, domains, err := s.files.read()
		if err != nil || len(domains) == 0 {
			return nil // no usable file, or none stored: a fresh install
		}
		s.serveFile(version, saved, domains)
		n = stored()
	}
	if n == 0 {
		return nil
	}
	err := fmt.Errorf("%w (version 0) while this node serves %d stored domains at version %d: its database was emptied or replaced; "+
		"serving the last snapshot, mail to other domains deferred (restore the database, or delete %s to start from the empty one)",
		errEmptyStore, n, s.dir.Snapshot().Version, s.files.base)
	s.mu.Lock()
	s.emptied = err
	s.mu.Unlock()
	return err
}

// applyChanges applies the store's changes since the version served.
func (s *Syncer) applyChanges(ctx context.Context) error {
	cur := s.dir.Snapshot()
	d, err := s.loader.LoadSince(ctx, cur.Version)
	if err != nil {
		if errors.Is(err, ErrChangesGone) {
			return err
		}
		return fmt.Errorf("load tenant changes: %w", err)
	}
	if d.Version != cur.Version {
		next, touched := s.tree.apply(d, cur, s.log)
		next.Version = d.Version
		s.dir.Swap(next)
		s.loads.WithLabelValues("delta").Inc()
		s.log.Debug("tenant changes applied", "version", d.Version, "domains_changed", len(touched))
		if err := s.files.appendDelta(d.Version, s.now(), next.domains, touched); err != nil {
			s.log.Error("writing the tenant snapshot journal", "file", s.files.journal, "err", err)
		}
	}
	s.confirm()
	return nil
}

// confirm records that the snapshot matches the store now.
func (s *Syncer) confirm() {
	s.mu.Lock()
	s.confirmed = s.now()
	s.hasData = true
	s.emptied = nil
	s.mu.Unlock()
	s.report()
}

// report sets readiness: no data at all and no static domains is not
// ready (every recipient would be refused); data older than StaleAfter
// reload intervals is degraded.
func (s *Syncer) report() {
	s.mu.Lock()
	hasData, age, fileErr, emptied := s.hasData, s.now().Sub(s.confirmed), s.fileErr, s.emptied
	s.mu.Unlock()
	stale := time.Duration(s.cfg.StaleAfter) * s.cfg.ReloadInterval
	// An emptied store confirms nothing: a domain missing from the
	// snapshot may have been provisioned in the lost one.
	s.dir.unconfirmed.Store(!hasData || age > stale || emptied != nil)
	if s.health == nil {
		return
	}
	noFile := "there is no snapshot file"
	if fileErr != nil {
		noFile = fmt.Sprintf("the snapshot file is refused (%v)", fileErr)
	}
	switch {
	case !hasData && len(s.static) == 0:
		s.health.Set(healthComponent, health.NotReady, "no tenant snapshot: the store is unreachable and "+noFile+"; mail to any domain is deferred (451)")
	case !hasData:
		s.health.Set(healthComponent, health.Degraded, "tenant store unreachable and "+noFile+": serving the config file's domains only, mail to any other is deferred (451)")
	case emptied != nil:
		s.health.Set(healthComponent, health.Degraded, emptied.Error())
	case age > stale:
		s.health.Set(healthComponent, health.Degraded, fmt.Sprintf("tenant snapshot version %d not confirmed for %s: the store is unreachable; mail to domains not in it is deferred (451)", s.dir.Snapshot().Version, age.Round(time.Second)))
	case len(s.dir.Snapshot().unservable) > 0:
		s.health.Set(healthComponent, health.Degraded, fmt.Sprintf("%d stored domains have records that cannot be served (see the log); their mail is deferred (451)", len(s.dir.Snapshot().unservable)))
	default:
		s.health.Set(healthComponent, health.OK, "")
	}
}

// loadFile serves the snapshot file. Its version is kept, but the first
// load from the store after the outage reads everything: the file has the
// resolved domains, not the tree a delta applies to.
func (s *Syncer) loadFile() error {
	version, saved, stored, err := s.files.read()
	if err != nil {
		return err
	}
	s.serveFile(version, saved, stored)
	return nil
}

// serveFile serves the stored domains read from the snapshot file, under
// the config file's.
func (s *Syncer) serveFile(version uint64, saved time.Time, stored map[string]*Domain) {
	served := maps.Clone(s.static)
	for name, d := range stored {
		if _, ok := served[name]; ok {
			s.log.Warn("domain is both in the config file and in the tenant snapshot file; the config file wins", "domain", name)
			continue
		}
		served[name] = d
	}
	snap := &Snapshot{Version: version, domains: served}
	s.dir.Swap(snap)
	// saved is the writer's clock, maybe ahead of ours (stepped back
	// since, or another machine's file): a future time would make the
	// snapshot look fresh for as long as the difference.
	if now := s.now(); saved.After(now) {
		saved = now
	}
	s.mu.Lock()
	s.hasData = true
	s.confirmed = saved
	s.mu.Unlock()
	s.log.Info("serving the local tenant snapshot", "file", s.files.base, "version", version, "saved", saved, "domains", snap.Len())
}
