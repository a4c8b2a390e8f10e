package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
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
}

// DefaultSyncConfig reloads every 30 s, calls 3 missed reloads stale and
// re-checks up to 100 pending domains every 5 min.
func DefaultSyncConfig() SyncConfig {
	return SyncConfig{ReloadInterval: 30 * time.Second, StaleAfter: 3, VerifyInterval: 5 * time.Minute, VerifyPerRound: 100}
}

// Validate checks the section; messages name the key.
func (c SyncConfig) Validate() error {
	if c.ReloadInterval < 100*time.Millisecond {
		return errors.New("reload_interval: at least 100ms")
	}
	if c.StaleAfter < 1 {
		return errors.New("stale_after: at least 1")
	}
	if c.VerifyInterval < 100*time.Millisecond {
		return errors.New("verify_interval: at least 100ms")
	}
	if c.VerifyPerRound < 1 {
		return errors.New("verify_per_round: at least 1")
	}
	return nil
}

// BroadcastTopic is the cluster topic of tenant change announcements; the
// payload is the new version (uvarint), a hint only: receivers reload from
// the store.
const BroadcastTopic = "tenants"

// SnapshotFile is the name of the local snapshot in data_dir.
const SnapshotFile = "tenants.snapshot.json"

// healthComponent is the readiness component the syncer reports as.
const healthComponent = "tenants"

// Loader reads the tenant data from the store.
type Loader interface {
	Load(ctx context.Context) (Data, error)
}

// Syncer keeps a Directory current: it loads from the store at start (or
// from the local snapshot file when the store is down), reloads whenever
// Trigger is called (a local write or a cluster announcement) and every
// ReloadInterval, and writes each new snapshot to the file.
type Syncer struct {
	cfg     SyncConfig
	loader  Loader
	static  []*Domain
	file    string
	timeout time.Duration
	dir     *Directory
	health  *health.Registry
	log     *slog.Logger
	trigger chan struct{}
	now     func() time.Time

	mu sync.Mutex
	// confirmed is when the snapshot was last known to match the store.
	confirmed time.Time
	hasData   bool
}

// SyncOptions are a Syncer's dependencies.
type SyncOptions struct {
	Loader Loader
	// Static domains (from the YAML config) win over the store's.
	Static []*Domain
	// DataDir holds the snapshot file.
	DataDir string
	// Timeout bounds one load from the store.
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
		cfg: cfg, loader: opts.Loader, static: opts.Static,
		file: filepath.Join(opts.DataDir, SnapshotFile), timeout: opts.Timeout,
		health: opts.Health, log: opts.Log, trigger: make(chan struct{}, 1), now: time.Now,
	}
	s.confirmed = s.now()
	if s.timeout <= 0 {
		s.timeout = 5 * time.Second
	}
	snap, err := NewSnapshot(0, s.static)
	if err != nil {
		return nil, err
	}
	s.dir = NewDirectory(snap)
	promauto.With(opts.Registry).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxgrid_tenant_config_version",
		Help: "Tenant config version this node serves (0: static domains only).",
	}, func() float64 { return float64(s.dir.Snapshot().Version) })
	promauto.With(opts.Registry).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxgrid_tenant_config_age_seconds",
		Help: "Seconds since the served tenant snapshot was last confirmed current against the store.",
	}, func() float64 { return s.Age().Seconds() })

	if err := s.Reload(ctx); err != nil {
		s.log.Warn("tenant store unavailable at start; trying the local snapshot", "err", err)
		if err := s.loadFile(); err != nil {
			s.log.Warn("no usable tenant snapshot file", "file", s.file, "err", err)
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

// Reload loads from the store and swaps the snapshot when the version
// moved; on failure the current snapshot stays.
func (s *Syncer) Reload(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	data, err := s.loader.Load(lctx)
	if err != nil {
		return fmt.Errorf("load tenants: %w", err)
	}
	cur := s.dir.Snapshot()
	if !s.hasDataNow() || data.Version != cur.Version {
		domains, err := Resolve(data)
		if err != nil {
			return err
		}
		snap, err := s.build(data.Version, domains)
		if err != nil {
			return err
		}
		s.dir.Swap(snap)
		s.log.Info("tenant snapshot loaded", "version", data.Version, "domains", snap.Len())
		if err := s.writeFile(data.Version, domains); err != nil {
			// Serving is unaffected; only a restart during an outage is.
			s.log.Error("writing the tenant snapshot file", "file", s.file, "err", err)
		}
	}
	s.mu.Lock()
	s.confirmed = s.now()
	s.hasData = true
	s.mu.Unlock()
	s.report()
	return nil
}

func (s *Syncer) hasDataNow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hasData
}

// build merges the static domains over the store's: the config file is
// what the operator on this machine asked for, so it wins, loudly.
func (s *Syncer) build(version uint64, stored []*Domain) (*Snapshot, error) {
	static := make(map[string]bool, len(s.static))
	for _, d := range s.static {
		static[d.Name] = true
	}
	all := append([]*Domain(nil), s.static...)
	for _, d := range stored {
		if static[d.Name] {
			s.log.Warn("domain is both in the config file and in the tenant store; the config file wins", "domain", d.Name)
			continue
		}
		all = append(all, d)
	}
	return NewSnapshot(version, all)
}

// report sets readiness: no data at all and no static domains is not
// ready (every recipient would be refused); data older than StaleAfter
// reload intervals is degraded.
func (s *Syncer) report() {
	if s.health == nil {
		return
	}
	s.mu.Lock()
	hasData, age := s.hasData, s.now().Sub(s.confirmed)
	s.mu.Unlock()
	stale := time.Duration(s.cfg.StaleAfter) * s.cfg.ReloadInterval
	switch {
	case !hasData && len(s.static) == 0:
		s.health.Set(healthComponent, health.NotReady, "no tenant snapshot: the store is unreachable and there is no snapshot file")
	case !hasData:
		s.health.Set(healthComponent, health.Degraded, "tenant store unreachable and no snapshot file: serving the config file's domains only")
	case age > stale:
		s.health.Set(healthComponent, health.Degraded, fmt.Sprintf("tenant snapshot version %d not confirmed for %s: the store is unreachable", s.dir.Snapshot().Version, age.Round(time.Second)))
	default:
		s.health.Set(healthComponent, health.OK, "")
	}
}

// Resolve turns store data into domains with their effective policies
// (domain over customer over reseller).
func Resolve(data Data) ([]*Domain, error) {
	resellers := make(map[int64]Policy, len(data.Resellers))
	for _, r := range data.Resellers {
		resellers[r.ID] = r.Policy
	}
	customers := make(map[int64]Policy, len(data.Customers))
	suspended := make(map[int64]bool)
	for _, c := range data.Customers {
		customers[c.ID] = c.Policy.Over(resellers[c.ResellerID])
		suspended[c.ID] = c.Suspended
	}
	out := make([]*Domain, 0, len(data.Domains))
	for _, dr := range data.Domains {
		if suspended[dr.CustomerID] {
			// Not in the snapshot: the sender gets 550 5.7.1 like for an
			// unknown domain, and nothing reaches the customer's server.
			continue
		}
		if dr.Status == StatusPending {
			// Unproven: refused at RCPT exactly like an unknown domain.
			continue
		}
		d, fe := newDomain(domainSpec{ID: dr.ID, CustomerID: dr.CustomerID, Source: "store",
			Name: dr.Name, Route: dr.Route, TLS: dr.TLS, Routes: dr.Routes,
			Recipients: data.Recipients[dr.ID], Policy: dr.Policy, Inherited: customers[dr.CustomerID]})
		if len(fe) > 0 {
			return nil, fmt.Errorf("domain %s: %w", dr.Name, fe)
		}
		out = append(out, d)
	}
	return out, nil
}

// snapshotFile is the on-disk form: the resolved domains, so a node can
// serve from it without the hierarchy.
type snapshotFile struct {
	Version uint64       `json:"version"`
	Saved   time.Time    `json:"saved"`
	Domains []fileDomain `json:"domains"`
}

type fileDomain struct {
	Name       string   `json:"name"`
	ID         int64    `json:"id,omitempty"`
	CustomerID int64    `json:"customer_id,omitempty"`
	Route      string   `json:"route"`
	TLS        string   `json:"tls"`
	Recipients []string `json:"recipients,omitempty"`
	// Routes keep rules without tls as they are, so they follow TLS here
	// as they do in the store.
	Routes []RouteRule `json:"routes,omitempty"`
	Policy Policy      `json:"policy"`
}

// writeFile replaces the snapshot file atomically (temp file, fsync,
// rename), so a crash mid-write leaves the previous snapshot intact.
func (s *Syncer) writeFile(version uint64, domains []*Domain) error {
	f := snapshotFile{Version: version, Saved: s.now().UTC(), Domains: make([]fileDomain, len(domains))}
	for i, d := range domains {
		fd := fileDomain{Name: d.Name, ID: d.ID, CustomerID: d.CustomerID, Route: d.Route.Addr, TLS: string(d.Route.TLS), Routes: d.Routes.normalized(), Policy: d.Policy}
		for l := range d.Recipients {
			fd.Recipients = append(fd.Recipients, l)
		}
		sort.Strings(fd.Recipients)
		f.Domains[i] = fd
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.file), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.file), SnapshotFile+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.file)
}

// loadFile serves the snapshot file. The version is kept, so the first
// successful reload after the outage swaps only if the store moved on.
func (s *Syncer) loadFile() error {
	b, err := os.ReadFile(s.file)
	if err != nil {
		return err
	}
	var f snapshotFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("%s: %w", s.file, err)
	}
	domains := make([]*Domain, 0, len(f.Domains))
	for _, fd := range f.Domains {
		// The file holds the effective policy, hence nothing inherited.
		d, fe := newDomain(domainSpec{ID: fd.ID, CustomerID: fd.CustomerID, Source: "store",
			Name: fd.Name, Route: fd.Route, TLS: fd.TLS, Routes: fd.Routes, Recipients: fd.Recipients, Policy: fd.Policy})
		if len(fe) > 0 {
			return fmt.Errorf("%s: domain %s: %w", s.file, fd.Name, fe)
		}
		domains = append(domains, d)
	}
	snap, err := s.build(f.Version, domains)
	if err != nil {
		return err
	}
	s.dir.Swap(snap)
	s.mu.Lock()
	s.hasData = true
	s.confirmed = f.Saved
	s.mu.Unlock()
	s.log.Info("serving the local tenant snapshot", "file", s.file, "version", f.Version, "saved", f.Saved, "domains", snap.Len())
	return nil
}
