// Package node assembles one scan node from its configuration: the store,
// the tenant directory, the scan pipeline, the relay, the SMTP front end and
// the HTTP side. It is the only place that knows every part; `mxgrid serve`,
// `mxgrid demo` and the end-to-end tests all build nodes through it.
package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/cluster"
	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/dnsresolver"
	"github.com/mxgrid/mxgrid/domainstats"
	"github.com/mxgrid/mxgrid/events"
	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/geo"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/memlimit"
	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/internal/ratelimit"
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/mxgrid/mxgrid/notify"
	"github.com/mxgrid/mxgrid/panel"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/auth"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
	"github.com/mxgrid/mxgrid/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Options are what a caller may supply instead of the defaults.
type Options struct {
	Log *slog.Logger
	// Registry receives every metric; a fresh one when nil.
	Registry *prometheus.Registry
	// Stages replaces the configured scan stages (tests inject failing or
	// slow checks this way); nil means build them from the config.
	Stages []scanner.Stage
	// Version is the build's version, gossiped to the other nodes.
	Version string
	// MemoryLimit makes the node keep the process's soft memory limit
	// (internal/memlimit) for as long as it runs. The limit is the
	// process's, so only a process running one node sets it (serve), not
	// tests or the demo that run several.
	MemoryLimit bool

	// failAfter, when set, makes New fail right after the named build
	// step: tests check that a failed New releases what it made.
	failAfter string
}

// Runner is a long-running part of a node. Run blocks until ctx ends or
// the part fails, and returns once the part has stopped.
type Runner interface {
	Run(ctx context.Context) error
}

// RunFunc adapts a function to Runner.
type RunFunc func(ctx context.Context) error

// Run calls f.
func (f RunFunc) Run(ctx context.Context) error { return f(ctx) }

// part is a named Runner; the name is for logs.
type part struct {
	name string
	Runner
}

// Node is one scan node: New builds it (nothing runs yet but the bound
// sockets and memberlist), Run runs it.
type Node struct {
	cfg     config.Config
	log     *slog.Logger
	health  *health.Registry
	smtp    *smtpd.Server
	web     *web.Server
	cluster *cluster.Cluster

	smtpListener net.Listener
	httpListener net.Listener
	mgmtListener net.Listener
	// parts are the background runners (syncer, watchers, recorders,
	// schedulers…) in build order; Run starts the HTTP side and the
	// cluster before them and SMTP after them, and stops all in reverse.
	parts []part
	// closers release what New acquired (sockets, memberlist, files, the
	// database), in reverse order, when Run ends or New fails.
	closers []func() error
}

// builder carries what one build step makes for a later one, so that the
// Node keeps only what Run and its accessors use.
type builder struct {
	*Node
	opts     Options
	registry *prometheus.Registry
	store    *store.Store
	static   []*tenant.Domain

	directory  *tenant.Directory
	tenants    *store.Tenants
	syncer     *tenant.Syncer
	resolver   *dnsresolver.Cached
	guard      *netguard.Guard
	pipeline   *scanner.Pipeline
	recorder   smtpd.Recorder
	tracker    quarantine.Tracker // nil when tracking is off; smtpd.Tracker too
	quarantine *quarantine.Service
	service    *admin.Service
	// clients tells an HTTP request's client address
	// (http.trusted_proxies).
	clients *clientip.Resolver
	// misses limits, per client address, the public lookups (API tokens,
	// map scopes, logos) that find nothing: one budget for them all.
	misses *ratelimit.Misses
	// linkKeys sign the digests and their links, and verify the digests
	// that come back through this node (one random key when none is set).
	linkKeys [][]byte
}

// buildSteps are New's steps in order. Each may add parts and closers;
// none starts a goroutine (memberlist, started by the cluster step, is
// the exception, and its closer stops it).
var buildSteps = []struct {
	name string
	run  func(b *builder, ctx context.Context) error
}{
	{"data dir", (*builder).prepareDataDir},
	{"store", (*builder).openStore},
	{"tenants", (*builder).buildTenants},
	{"scanner", (*builder).buildScanner},
	{"events", (*builder).buildEvents},
	{"smtp", (*builder).buildSMTP},
	{"listen", (*builder).listen},
	{"cluster", (*builder).startCluster},
	{"admin", (*builder).mountAdmin},
	{"panel", (*builder).mountPanel},
	{"map", (*builder).mountMap},
}

// errInjected is the failure Options.failAfter injects.
var errInjected = errors.New("injected build failure")

// New builds a node and binds its listeners, so the ports are known (and
// taken) when it returns. Run starts serving. When New fails it releases
// everything it made.
func New(ctx context.Context, cfg config.Config, opts Options) (_ *Node, err error) {
	b := &builder{Node: &Node{cfg: cfg, log: opts.Log, health: health.New()}, opts: opts, registry: opts.Registry}
	if b.log == nil {
		b.log = slog.Default()
	}
	if b.registry == nil {
		b.registry = prometheus.NewRegistry()
		b.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	b.health.Register(b.registry)
	b.log = b.log.With("node", cfg.Node.Name)
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	for _, step := range buildSteps {
		if err := step.run(b, ctx); err != nil {
			return nil, err
		}
		if step.name == opts.failAfter {
			return nil, fmt.Errorf("after %s: %w", step.name, errInjected)
		}
	}
	return b.Node, nil
}

// run adds a background part.
func (n *Node) run(name string, r Runner) { n.parts = append(n.parts, part{name, r}) }

// onClose adds a closer.
func (n *Node) onClose(fn func() error) { n.closers = append(n.closers, fn) }

// prepareDataDir: the data directory and its files are the node's alone
// (locked, so a second node given it is refused); a data directory from an
// older version is tightened, with a warning.
func (b *builder) prepareDataDir(context.Context) error {
	if err := fsperm.PrivateDir(b.cfg.DataDir, b.log); err != nil {
		return err
	}
	var inUse *dataDirInUseError
	switch release, err := lockDataDir(b.cfg.DataDir); {
	case errors.As(err, &inUse):
		return err
	case err != nil:
		// A read-only or full data_dir: mail flow goes on without it.
		b.log.Warn("data_dir not locked: a second node given it would not be refused", "err", err)
	default:
		b.onClose(release)
	}
	return b.privateFiles()
}

// lockFile in data_dir is held (flock) by the node using the directory.
const lockFile = "mxgrid.lock"

// dataDirInUseError: another process holds lockFile.
type dataDirInUseError struct{ dir, pid string }

func (e *dataDirInUseError) Error() string {
	return fmt.Sprintf("data_dir %s is in use by another mxgrid node (pid %s): each node needs a data directory of its own", e.dir, e.pid)
}

// openStore opens the store, which holds tenants, events and maps. It
// connects lazily: mail flow must not depend on it, and a node whose
// database is down keeps filtering from the configured domains and its
// snapshot. Only a misconfigured store fails here.
func (b *builder) openStore(ctx context.Context) error {
	st, err := store.Open(b.cfg.Store, b.cfg.DataDir)
	if err != nil {
		return err
	}
	b.store = st
	b.onClose(st.Close)
	return b.prepareStore(ctx)
}

// buildTenants builds the directory: the store's domains (or, while it is
// unreachable, the last snapshot file) with the config file's over them.
func (b *builder) buildTenants(ctx context.Context) error {
	var err error
	if b.static, err = b.cfg.StaticDomains(); err != nil {
		return err
	}
	b.tenants = store.NewTenants(b.store)
	b.tenants.DefaultQuota = b.cfg.Tenants.DefaultQuota
	b.syncer, err = tenant.NewSyncer(ctx, b.cfg.Tenants, tenant.SyncOptions{
		Loader: b.tenants, Static: b.static, DataDir: b.cfg.DataDir, Store: b.cfg.Store.Identity(), Timeout: b.cfg.Store.Timeout,
		Health: b.health, Log: b.log.With("component", "tenants"), Registry: b.registry,
	})
	if err != nil {
		return err
	}
	b.directory = b.syncer.Directory()
	b.run("tenant syncer", b.syncer)
	if b.directory.Snapshot().Len() == 0 {
		b.log.Warn("no domains configured: every recipient will be refused with 550 5.7.1")
	}
	return nil
}

// buildScanner builds the route guard and the scan pipeline, which share
// one resolver (the guard its Routes view).
func (b *builder) buildScanner(context.Context) error {
	b.resolver = dnsresolver.New(b.cfg.DNS, b.registry)
	// Stages reports only a resolver it builds itself: this one, given to
	// it, must be watched here, or a DNS outage never reached /readyz.
	b.resolver.OnReachabilityChange(func(up bool) { reportDNS(b.health, up) })
	reportDNS(b.health, true)
	b.run("dns prober", b.resolver)
	allowed, err := netguard.ParseAllowedNetworks(b.cfg.Relay.AllowedRouteNetworks)
	if err != nil {
		return fmt.Errorf("relay: allowed_route_networks%w", err)
	}
	// Route names get a cache of their own, out of reach of the names
	// senders make the checks look up.
	b.guard = netguard.New(b.resolver.Routes(), allowed)
	stages := b.opts.Stages
	if stages == nil {
		stages, err = Stages(&b.cfg, StageEnv{Log: b.log, Registry: b.registry, Health: b.health, Resolver: b.resolver, Run: b.run})
		if err != nil {
			return err
		}
	}
	b.pipeline = scanner.NewPipeline(stages, b.cfg.Scanner.Timeout, b.log.With("component", "scanner"), b.registry)
	return nil
}

// buildEvents builds the spam-source path: the GeoIP Locator (it runs
// without a database, saying so in the log and /readyz) and the Recorder
// the SMTP sessions hand events to (it buffers while the store is down).
func (b *builder) buildEvents(context.Context) error {
	loc, err := geo.New(b.cfg.Geo, geo.Options{Registerer: b.registry, Logger: b.log, Health: b.health})
	if err != nil {
		return err
	}
	b.onClose(loc.Close)
	b.run("geo", loc)
	rec, err := events.NewRecorder(b.cfg.Events, events.Options{
		Store: b.store, Locator: loc, Registerer: b.registry, Logger: b.log, Health: b.health,
	})
	if err != nil {
		return err
	}
	b.recorder = rec
	b.run("events", logLoss("events", b.log, rec))
	if !b.cfg.Tracking.Enabled {
		return nil
	}
	trk, err := tracking.NewRecorder(b.cfg.Tracking, b.store, b.registry, b.log, b.health)
	if err != nil {
		return err
	}
	b.tracker = trk
	b.run("tracking", logLoss("tracking", b.log, trk))
	// The cluster is built after this step; the gauge asks at run time.
	leader := func() bool { return b.cluster != nil && b.cluster.IsLeader() }
	b.run("deferral view", tracking.NewWaitingGauge(b.store, leader, b.cfg.Tracking.DeferralWindow,
		b.cfg.Tracking.DeferralInterval, b.registry, b.log.With("component", "tracking")))
	return nil
}

// quarantineDir is where held mail takes this node's disk: SQLite's
// directory; none on PostgreSQL, whose disk is the database server's.
func (b *builder) quarantineDir() string {
	if b.cfg.Store.Driver != store.SQLite {
		return ""
	}
	return filepath.Dir(store.SQLitePath(b.cfg.Store, b.cfg.DataDir))
}

// whyURL is the prefix of the links to the /why page quoted in refusals:
// only with tracking (the page reads its records) and a public URL.
func (b *builder) whyURL() string {
	if b.tracker == nil {
		return ""
	}
	return b.cfg.HTTP.WhyURL()
}

// logLoss runs a store writer whose only error is records lost at
// shutdown: worth a log line, not a failed exit.
func logLoss(what string, log *slog.Logger, r Runner) RunFunc {
	return func(ctx context.Context) error {
		if err := r.Run(ctx); err != nil {
			log.Error(what, "err", err)
		}
		return nil
	}
}

// withoutOurAuthResults removes inbound Authentication-Results fields that
// claim our authserv-id or a cluster member's host name, as
// smtpd.Deps.PrepareHeader: a copy is edited only when the header has such
// a field. A member's name is every other node's authserv-id by default,
// and a customer trusting our results trusts each: the cluster is one
// ADMD (RFC 8601 §5), and a sender must not bring a member's results to
// another member.
func withoutOurAuthResults(authServID string, guard *netguard.Guard) func(textproto.Header) (textproto.Header, bool) {
	ours := func(id string) bool { return guard.IsClusterName(id, authServID) }
	return func(h textproto.Header) (textproto.Header, bool) {
		if !h.Has(auth.HeaderField) {
			return h, false
		}
		c := h.Copy()
		if auth.StripOurAuthResults(&c, ours) == 0 {
			return h, false
		}
		return c, true
	}
}

// buildSMTP builds the relay and the SMTP front end.
func (b *builder) buildSMTP(context.Context) error {
	// Ten seconds of counts per batch: the panel is that far behind.
	outcomes := domainstats.New(b.store, 10*time.Second, b.log.With("component", "domainstats"))
	b.run("domain stats", outcomes)
	// Inbound Authentication-Results fields that claim our name or a
	// member's are forged and removed before relaying (RFC 8601 §5).
	authServID := b.cfg.AuthServID()
	rel := relay.New(b.cfg.Relay, b.cfg.SMTP.Hostname, b.guard, b.log.With("component", "relay"), b.registry)
	// Stopped after SMTP (parts stop in reverse), so its idle downstream
	// sessions are closed once no transaction can want one.
	b.run("relay connection cache", rel)
	// Any node releases through its own relay to the domain's current
	// route; any node prunes (idempotent deletes).
	b.quarantine = quarantine.New(b.cfg.Quarantine, b.store, smtpd.Releaser{Directory: b.directory, Relay: smtpd.Relay{Relay: rel}}, nil)
	b.quarantine.ShareOpensAmong(b.store)
	if b.tracker != nil {
		b.quarantine.TrackReleases(b.tracker)
	}
	b.quarantine.LogTo(b.log.With("component", "quarantine"))
	b.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxgrid_quarantine_release_records_pending",
		Help: "Releases this node delivered (or that failed) whose outcome the store did not answer to record; the node records them when it answers again, or gives each up 30 minutes after its release began (logged).",
	}, func() float64 { return float64(b.quarantine.PendingRecords()) }))
	b.run("quarantine release records", RunFunc(func(ctx context.Context) error {
		periodic.Every(ctx, storeRetryInterval, nil, b.quarantine.RecordPending)
		// The node stops, its HTTP requests (the releases) ended first:
		// a last round, and what the store still does not take is lost
		// with the node, which says so.
		last, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeRetryInterval)
		defer cancel()
		b.quarantine.RecordPending(last)
		b.quarantine.GiveUpPending("the node stopped")
		return nil
	}))
	b.run("quarantine pruning", RunFunc(func(ctx context.Context) error {
		periodic.Every(ctx, b.cfg.Quarantine.PruneInterval, nil, func(ctx context.Context) {
			if n, err := b.quarantine.Prune(ctx); err != nil {
				b.log.Warn("pruning the quarantine", "err", err)
			} else if n > 0 {
				b.log.Info("pruned the quarantine", "deleted", n)
			}
		})
		return nil
	}))
	var err error
	if b.linkKeys, err = b.cfg.Notify.Keys(); err != nil {
		return fmt.Errorf("notify.%w", err)
	}
	b.smtp, err = smtpd.New(b.cfg.SMTP, smtpd.Deps{
		SpoolDir:           filepath.Join(b.cfg.DataDir, "spool"),
		Outcomes:           outcomes,
		Recorder:           b.recorder,
		Tracker:            b.tracker,
		Quarantine:         b.quarantine,
		QuarantineDir:      b.quarantineDir(),
		QuarantineReusable: b.store.ReusableBytes,
		OwnMail: func(rcpt string, h textproto.Header, body func() io.Reader) bool {
			return notify.Owns(b.linkKeys, b.cfg.Notify.LinkTTL, time.Now(), rcpt, h, body)
		},
		WhyURL:        b.whyURL(),
		Directory:     b.directory,
		Parser:        scanner.NewParser(b.cfg.Scanner.Weights).WithLimits(b.cfg.Scanner.Limits),
		AuthServID:    authServID,
		PrepareHeader: withoutOurAuthResults(authServID, b.guard),
		Scanner:       b.pipeline,
		Relay:         smtpd.Relay{Relay: rel},
		Policy:        b.cfg.Scanner.Policy(),
		Node:          b.cfg.Node.Name,
		Provider:      b.cfg.Node.Provider,
		Health:        b.health,
		Log:           b.log,
		Registry:      b.registry,
	})
	if err != nil {
		return err
	}
	b.run("smtp tls certificate", RunFunc(b.smtp.WatchCertificate))
	b.run("quarantine readiness", RunFunc(func(ctx context.Context) error {
		periodic.Every(ctx, storeRetryInterval, nil, b.smtp.RecheckQuarantine)
		return nil
	}))
	if b.opts.MemoryLimit {
		b.run("memory limit", &memlimit.Tuner{Budget: b.cfg.SMTP.MemoryBudget, Reserved: b.smtp.MemoryReserved, Log: b.log})
	}
	lim := web.DefaultLimits()
	lim.MaxConns, lim.MaxConnsPerClient = b.cfg.HTTP.MaxConnections, b.cfg.HTTP.MaxConnectionsPerIP
	// A release from the quarantine, delivering within its request, gets
	// the grace an SMTP transaction gets.
	lim.ShutdownGrace = max(lim.ShutdownGrace, b.cfg.SMTP.ShutdownGrace)
	if lim.Exempt, err = clientip.ParseTrusted(b.cfg.HTTP.TrustedProxies); err != nil {
		return fmt.Errorf("http.trusted_proxies%w", err)
	}
	b.clients = clientip.New(lim.Exempt)
	b.misses = ratelimit.NewMisses(b.registry)
	if all := clientip.Everyone(lim.Exempt); len(all) > 0 {
		b.log.Warn("http.trusted_proxies trusts every address: any client can name itself in X-Forwarded-For and escape the per-client limits; list your proxies' networks", "networks", fmt.Sprint(all))
	}
	b.web = web.New(b.health, b.registry, b.log.With("component", "http"), lim)
	if b.cfg.HTTP.Pprof {
		b.web.MountPprof()
	}
	return nil
}

// listen binds the SMTP, public HTTP and management HTTP listeners.
func (b *builder) listen(context.Context) error {
	var err error
	if b.smtpListener, err = b.smtp.Listen(); err != nil {
		return err
	}
	b.onClose(closeListener(b.smtpListener))
	if self, err := netip.ParseAddrPort(b.smtpListener.Addr().String()); err == nil {
		b.guard.SetSelf(self)
	}
	if b.httpListener, err = b.web.Listen(b.cfg.HTTP.Listen); err != nil {
		return err
	}
	b.onClose(closeListener(b.httpListener))
	if b.mgmtListener, err = b.web.ListenManagement(b.cfg.HTTP.ManagementListen); err != nil {
		return err
	}
	b.onClose(closeListener(b.mgmtListener))
	return nil
}

// closeListener closes l unless serving closed it already.
func closeListener(l net.Listener) func() error {
	return func() error {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	}
}

// startCluster binds the gossip port and starts memberlist (alone until
// Run joins), and serves the cluster's management endpoints.
func (b *builder) startCluster(context.Context) error {
	var err error
	b.cluster, err = cluster.New(b.cfg.Cluster, cluster.NodeInfo{
		Name: b.cfg.Node.Name, Provider: b.cfg.Node.Provider, Region: b.cfg.Node.Region,
		Version: b.opts.Version, Started: time.Now(),
		ConfigVersion: func() uint64 { return b.directory.Snapshot().Version },
		Load:          b.smtp.MessagesPerSecond,
		// Prometheus discovers the nodes' metrics through the cluster.
		HTTPAddr: b.ManagementAddr(),
		// The others' relays recognise this node by its greeting.
		SMTPHostname: b.cfg.SMTP.Hostname,
	}, b.health, b.log, b.registry)
	if err != nil {
		return err
	}
	b.onClose(b.cluster.Close)
	b.guard.SetMembers(b.memberIPs)
	b.guard.SetMemberHostnames(b.memberHostnames)
	b.web.HandleManagement("GET /api/v1/cluster", web.ClusterAPI(b.cluster))
	b.web.HandleManagement("GET /cluster", web.ClusterPage(b.cluster))
	b.web.HandleManagement("GET /api/v1/cluster/prometheus-sd", web.PrometheusSD(b.cluster))
	// A committed change is announced to every node, this one included;
	// each reloads from the store (the announcement is only a hint).
	b.cluster.Subscribe(tenant.BroadcastTopic, func([]byte, string) { b.syncer.Trigger() })
	return nil
}

// mountAdmin builds the tenant service and serves its API; its domain
// ownership verifier runs on the cluster's leader.
func (b *builder) mountAdmin(context.Context) error {
	operatorToken, err := admin.ReadTokenFile(b.cfg.Admin.OperatorTokenFile, b.log)
	if err != nil {
		return err
	}
	svcOpts := admin.ServiceOptions{
		OperatorToken: operatorToken,
		Changed: func(version uint64) {
			b.syncer.Trigger()
			if err := b.cluster.Broadcast(tenant.BroadcastTopic, binary.AppendUvarint(nil, version)); err != nil {
				b.log.Warn("announcing a tenant change; the other nodes pick it up at their next periodic reload", "err", err)
			}
		},
		Log:        b.log.With("component", "api"),
		Panel:      b.tenants,
		Activity:   b.store,
		Messages:   b.store,
		Quarantine: b.quarantine,
		CheckRoute: func(ctx context.Context, route string) error {
			return b.guard.CheckRoute(dnsresolver.Passing(ctx), route)
		},
		Ownership: admin.OwnershipOptions{
			DNS:             dnsresolver.Uncached(b.cfg.DNS),
			MXHosts:         b.cfg.Cluster.MXHosts,
			Reserved:        reservedDomains(b.cfg, b.static),
			PendingClaimTTL: b.cfg.Tenants.PendingClaimTTL,
		},
	}
	svc := admin.NewService(b.tenants, svcOpts)
	b.service = svc
	cfg, isLeader := b.cfg.Tenants, b.cluster.IsLeader
	b.run("domain verifier", RunFunc(func(ctx context.Context) error {
		svc.RunVerifier(ctx, cfg.VerifyInterval, cfg.VerifyPerRound, isLeader)
		return nil
	}))
	web.MountAdminAPI(b.web.Handle, svc, b.clients, b.misses, b.log.With("component", "api"))
	return nil
}

// mountPanel serves the reseller panel.
func (b *builder) mountPanel(context.Context) error {
	trusted, err := clientip.ParseTrusted(b.cfg.HTTP.TrustedProxies)
	if err != nil {
		return fmt.Errorf("http.trusted_proxies%w", err)
	}
	opts := panel.Options{Service: b.service, DataDir: b.cfg.DataDir, SMTPHostname: b.cfg.SMTP.Hostname, Guard: b.guard,
		Log: b.log.With("component", "panel"), ClientIP: clientip.New(trusted), Misses: b.misses, Sessions: b.store.PanelSessions()}
	pnl, err := panel.New(b.cfg.Panel, opts)
	if err != nil {
		return err
	}
	pnl.Mount(b.web.Handle)
	if b.cfg.Notify.Smarthost != "" {
		if err := b.mountDigests(); err != nil {
			return err
		}
	}
	if b.tracker != nil {
		// The "why was I refused" page reads tracking's refusals; the
		// links in SMTP replies are given only when it is served.
		b.web.Handle("GET /why/{ref}", web.NewWhyHandler(b.store, web.WhyOptions{
			MaxAge: b.cfg.Tracking.Retention, Burst: whyBurst, Interval: whyInterval,
			Clients: clientip.New(trusted), Log: b.log.With("component", "why"),
		}))
	}
	return nil
}

// mountDigests runs the quarantine digests (the leader, under a lease)
// and serves their links on every node.
func (b *builder) mountDigests() error {
	leader := func() bool { return b.cluster != nil && b.cluster.IsLeader() }
	d, err := notify.New(b.cfg.Notify, notify.Options{Store: b.store, Items: b.quarantine, Domains: b.directory, Keys: b.linkKeys, BaseURL: b.cfg.HTTP.PublicURL,
		Hostname: b.cfg.SMTP.Hostname, Holder: b.cfg.Node.Name, Leader: leader, Log: b.log, Registerer: b.registry})
	if err != nil {
		return err
	}
	if len(b.cfg.Notify.LinkKeys) == 0 {
		b.log.Warn("notify.link_keys is empty: this node's digest links stop working when it restarts, and other nodes cannot serve them")
	}
	if linksInClear(b.cfg.HTTP.PublicURL) {
		b.log.Warn("http.public_url is http://: digest links, which release held mail, travel in clear text; put a TLS proxy in front and make it https://", "public_url", b.cfg.HTTP.PublicURL)
	}
	b.run("digests", d)
	notify.NewLinks(d.Keys(), b.quarantine, b.store, b.directory, b.clients, b.registry, nil, b.log.With("component", "digest-links")).Mount(b.web.Handle)
	return nil
}

// linksInClear reports whether links under publicURL cross a network in
// clear text: a digest link releases a message or opts its recipient out
// for whoever holds it, and on http:// anyone on the path does. Loopback
// (a test, a proxy on the same machine being set up) is not a network.
func linksInClear(publicURL string) bool {
	u, err := url.Parse(publicURL)
	if err != nil || u.Scheme != "http" {
		return false
	}
	if strings.EqualFold(u.Hostname(), "localhost") {
		return false
	}
	ip, err := netip.ParseAddr(u.Hostname())
	return err != nil || !ip.IsLoopback()
}

// The /why page's limit per client address (IPv6 by /64): a person reads
// a few refusals; a crawler of references is slowed to one per interval.
const (
	whyBurst    = 10
	whyInterval = 6 * time.Second
)

// memberIPs are the cluster members' addresses, for the guard: a route to
// one of them at our SMTP port leads back into the cluster, and at any
// other port to the operator's services.
func (n *Node) memberIPs() []netip.Addr { return memberAddrs(n.cluster.Members()) }

// memberAddrs are the addresses members gossip: each one's gossip address
// and its management listener's, which the docs advise putting on a
// private address apart from the public one. A loopback address is a
// machine's own: it counts only for another member that gossips on
// loopback, so on this machine. This node's own listeners are known
// exactly (Guard.SetSelf), and its default loopback gossip and management
// addresses made a static route to a local server at 127.0.0.1 and our
// SMTP port (a local MTA behind the node on the public address) a loop;
// the default 127.0.0.1:8026 of a member elsewhere is that machine's.
func memberAddrs(members []cluster.Member) []netip.Addr {
	ips := make([]netip.Addr, 0, 2*len(members))
	for _, m := range members {
		gossip, ok := hostIP(m.Addr)
		if !ok {
			continue
		}
		onThisMachine := gossip.IsLoopback() && !m.Self
		addrs := []netip.Addr{gossip}
		if mgmt, ok := hostIP(m.HTTPAddr); ok {
			addrs = append(addrs, mgmt)
		}
		for _, ip := range addrs {
			if !ip.IsLoopback() || onThisMachine {
				ips = append(ips, ip)
			}
		}
	}
	return ips
}

// hostIP is the IP of host:port (or of a bare address).
func hostIP(addr string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, err := netip.ParseAddr(host)
	return ip, err == nil
}

// memberHostnames are the cluster members' smtp.hostname, for the loop
// check: a downstream that greets with one is a member.
func (n *Node) memberHostnames() []string {
	members := n.cluster.Members()
	names := make([]string, 0, len(members))
	for _, m := range members {
		if m.SMTPHostname != "" {
			names = append(names, m.SMTPHostname)
		}
	}
	return names
}

// SMTPAddr, HTTPAddr and ManagementAddr are the bound listener addresses.
func (n *Node) SMTPAddr() string       { return n.smtpListener.Addr().String() }
func (n *Node) HTTPAddr() string       { return n.httpListener.Addr().String() }
func (n *Node) ManagementAddr() string { return n.mgmtListener.Addr().String() }

// Health is the node's readiness registry.
func (n *Node) Health() *health.Registry { return n.health }

// Run serves until ctx is cancelled or a part fails, then stops the parts
// in reverse order of their start: SMTP first, draining (in-flight
// transactions get smtp.shutdown_grace to finish) while the recorders,
// counters and the HTTP side still run, so /readyz keeps saying
// "draining" to the load balancer; the node leaves the cluster last. It
// returns nil on a clean shutdown, and releases what New acquired.
func (n *Node) Run(ctx context.Context) error {
	defer n.close()
	n.log.Info("node started", "smtp", n.SMTPAddr(), "http", n.HTTPAddr(), "management", n.ManagementAddr(), "provider", n.cfg.Node.Provider, "region", n.cfg.Node.Region)
	// Parts stop in reverse: SMTP drains first, then HTTP, whose requests
	// use the other parts (a release delivers through the relay and is
	// recorded in message tracking): stopped last, a release finishing
	// in its grace found the relay's sessions closed and its record
	// unwritten, the message log saying held what was delivered.
	parts := slices.Concat(
		[]part{{"cluster", n.cluster}},
		n.parts,
		[]part{{"http", RunFunc(func(ctx context.Context) error { return n.web.Serve(ctx, n.httpListener, n.mgmtListener) })},
			{"smtp", RunFunc(n.serveSMTP)}})
	failed := make(chan error, len(parts))
	stops := make([]func(), len(parts))
	for i, p := range parts {
		// Each part has its own context, so that parts stop one by one,
		// not all when ctx ends.
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := p.Run(pctx); err != nil {
				if pctx.Err() == nil {
					failed <- fmt.Errorf("%s: %w", p.name, err)
				} else {
					n.log.Warn("stopping", "part", p.name, "err", err)
				}
			}
		}()
		stops[i] = func() { cancel(); <-done }
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-failed:
		n.log.Error("node failing", "err", err)
	}
	n.log.Info("shutting down", "grace", n.cfg.SMTP.ShutdownGrace)
	// Readiness 503 and "draining" in gossip before SMTP stops.
	n.cluster.Drain()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.log.Info("node stopped")
	return nil
}

// serveSMTP serves SMTP until ctx ends, then drains it within
// smtp.shutdown_grace.
func (n *Node) serveSMTP(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- n.smtp.Serve(n.smtpListener) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), n.cfg.SMTP.ShutdownGrace)
	defer cancel()
	err := n.smtp.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		n.log.Warn("shutdown grace expired, remaining sessions closed")
		err = nil
	}
	// go-smtp closes only the listeners Serve has registered: stopped
	// right after start, before Serve got that far, it would go on
	// accepting and never return. Closing ours ends it either way.
	n.smtpListener.Close()
	return errors.Join(err, <-served)
}

func (n *Node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		if err := n.closers[i](); err != nil {
			n.log.Warn("close", "err", err)
		}
	}
	n.closers = nil
}

// mountMap serves the attack map. Only the cluster's leader renders it;
// every node serves the stored bytes, so all answer with one ETag.
func (b *builder) mountMap(context.Context) error {
	world, err := spammap.LoadWorld()
	if err != nil {
		return fmt.Errorf("map: %w", err)
	}
	sched, err := spammap.NewScheduler(b.cfg.Map, world, spammap.StoreEvents{Store: b.store}, b.store, b.cluster, b.registry, b.log.With("component", "map"))
	if err != nil {
		return fmt.Errorf("map: %w", err)
	}
	b.run("map", sched)
	b.web.MountMap(sched, web.MapOptions{FrameAncestors: b.cfg.Map.FrameAncestors, Log: b.log.With("component", "map"),
		Scoped: panel.ScopedMaps(b.service, sched), Misses: b.misses, Clients: b.clients, Operator: web.OperatorOnly(b.service, b.clients, b.misses, b.log.With("component", "api"))})
	return nil
}

// prepareStore brings the schemas of events, maps and panel statistics up
// to date. A database that is down now (a node started during an outage)
// is retried in the background: their writers buffer and retry meanwhile,
// so the node catches up instead of running without them until restarted.
// A database a newer mxgrid migrated (a rollback) stops the start: this
// version would run on tables it does not know. Found only once a database
// that was down is back, it leaves the store failing in /readyz instead.
func (b *builder) prepareStore(ctx context.Context) error {
	migrate := func(ctx context.Context) error {
		for _, m := range []func(context.Context) error{b.store.CheckSchema, b.store.MigrateEvents, b.store.MigrateMaps, b.store.MigrateDomainStats, b.store.MigratePanelSessions, b.store.MigrateTracking, b.store.MigrateQuarantine, b.store.MigrateNotify} {
			mctx, cancel := context.WithTimeout(ctx, b.store.Timeout)
			err := m(mctx)
			cancel()
			if err != nil {
				return err
			}
		}
		return nil
	}
	err := migrate(ctx)
	var tooNew *store.SchemaTooNewError
	if err == nil || errors.As(err, &tooNew) {
		return err
	}
	b.log.Error("store unavailable; mail keeps flowing, events wait in their buffer, retrying", "err", err)
	b.health.Set("store", health.Degraded, err.Error())
	b.run("store reconnect", RunFunc(func(ctx context.Context) error {
		ctx, reached := context.WithCancel(ctx)
		defer reached()
		periodic.Every(ctx, storeRetryInterval, nil, func(ctx context.Context) {
			if err := migrate(ctx); err != nil {
				level := health.Degraded
				if errors.As(err, &tooNew) {
					level = health.NotReady
				}
				b.health.Set("store", level, err.Error())
				return
			}
			b.log.Info("store reachable again")
			b.health.Set("store", health.OK, "")
			reached()
		})
		return nil
	}))
	return nil
}

// privateFiles restricts the database, the tenant snapshot and the panel
// key to the node's user.
func (b *builder) privateFiles() error {
	var files []string
	if b.cfg.Store.Driver == store.SQLite {
		db := store.SQLitePath(b.cfg.Store, b.cfg.DataDir)
		files = append(files, db, db+"-wal", db+"-shm")
	}
	files = append(files, filepath.Join(b.cfg.DataDir, tenant.SnapshotFile), filepath.Join(b.cfg.DataDir, tenant.SnapshotJournal),
		filepath.Join(b.cfg.DataDir, panel.KeyFile))
	return fsperm.PrivateFiles(b.log, files...)
}

// storeRetryInterval paces reconnection attempts to a database that was
// down at start.
const storeRetryInterval = 5 * time.Second

// reservedDomains are the names no reseller may claim: the configured ones,
// the node's own hostname and the static config's domains.
func reservedDomains(cfg config.Config, static []*tenant.Domain) []string {
	out := append([]string{cfg.SMTP.Hostname}, cfg.Tenants.ReservedDomains...)
	for _, d := range static {
		out = append(out, d.Name)
	}
	return out
}
