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
	"github.com/emersion/go-message/textproto"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"time"

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
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/mxgrid/mxgrid/panel"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/auth"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
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
}

// Node is one running scan node.
type Node struct {
	cfg      config.Config
	log      *slog.Logger
	registry *prometheus.Registry
	health   *health.Registry
	store    *store.Store

	directory *tenant.Directory
	tenants   *store.Tenants
	syncer    *tenant.Syncer
	pipeline  *scanner.Pipeline
	smtp      *smtpd.Server
	web       *web.Server
	cluster   *cluster.Cluster
	geo       *geo.Locator
	recorder  *events.Recorder // nil without a store
	guard     *netguard.Guard

	smtpListener net.Listener
	httpListener net.Listener
	mgmtListener net.Listener
	// runners are the long-running parts started by Run besides the two
	// servers, each returning when ctx is cancelled.
	runners []func(ctx context.Context) error
	closers []func() error
}

// New builds a node and binds its listeners, so the ports are known (and
// taken) when it returns. Run starts serving.
func New(ctx context.Context, cfg config.Config, opts Options) (*Node, error) {
	n := &Node{cfg: cfg, log: opts.Log, registry: opts.Registry, health: health.New()}
	if n.log == nil {
		n.log = slog.Default()
	}
	if n.registry == nil {
		n.registry = prometheus.NewRegistry()
		n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	n.log = n.log.With("node", cfg.Node.Name)
	ok := false
	defer func() {
		if !ok {
			for _, l := range []net.Listener{n.smtpListener, n.httpListener, n.mgmtListener} {
				if l != nil {
					l.Close()
				}
			}
			n.close()
		}
	}()

	// The data directory and its files are the node's alone; a data
	// directory from an older version is tightened, with a warning.
	if err := fsperm.PrivateDir(cfg.DataDir, n.log); err != nil {
		return nil, err
	}
	if err := n.privateFiles(); err != nil {
		return nil, err
	}

	// The store holds tenants, events and maps, but mail flow must not
	// depend on it: a node without its database keeps filtering from the
	// configured domains and its snapshot.
	st, err := store.Open(ctx, cfg.Store, cfg.DataDir)
	if st != nil {
		n.store = st
		n.closers = append(n.closers, st.Close)
		n.prepareStore(ctx)
	} else {
		n.log.Error("store unavailable; mail keeps flowing, events and maps are not stored", "err", err)
		n.health.Set("store", health.Degraded, err.Error())
	}

	domains, err := cfg.StaticDomains()
	if err != nil {
		return nil, err
	}
	// Tenants: the store's domains (or, while it is unreachable, the last
	// snapshot file) with the config file's domains over them.
	n.tenants = store.NewTenants(n.store, cfg.Store, cfg.DataDir)
	n.closers = append(n.closers, n.tenants.Close)
	n.syncer, err = tenant.NewSyncer(ctx, cfg.Tenants, tenant.SyncOptions{
		Loader: n.tenants, Static: domains, DataDir: cfg.DataDir, Timeout: cfg.Store.Timeout,
		Health: n.health, Log: n.log.With("component", "tenants"), Registry: n.registry,
	})
	if err != nil {
		return nil, err
	}
	n.directory = n.syncer.Directory()
	n.runners = append(n.runners, n.syncer.Run)
	if n.directory.Snapshot().Len() == 0 {
		n.log.Warn("no domains configured: every recipient will be refused with 550 5.7.1")
	}
	operatorToken, err := admin.ReadTokenFile(cfg.Admin.OperatorTokenFile)
	if err != nil {
		return nil, err
	}

	// One resolver for the checks and the relay's route guard.
	res := dnsresolver.New(cfg.DNS, n.registry)
	allowed, err := netguard.ParsePrefixes(cfg.Relay.AllowedRouteNetworks)
	if err != nil {
		return nil, fmt.Errorf("relay: allowed_route_networks%w", err)
	}
	n.guard = netguard.New(res, allowed)

	stages := opts.Stages
	if stages == nil {
		stages, err = Stages(ctx, &n.cfg, StageEnv{Log: n.log, Registry: n.registry, Health: n.health, Resolver: res})
		if err != nil {
			return nil, err
		}
	}
	n.pipeline = scanner.NewPipeline(stages, cfg.Scanner.Timeout, n.log.With("component", "scanner"), n.registry)

	// Inbound Authentication-Results fields that claim our name are forged
	// and removed before relaying (RFC 8601 §5).
	authServID := n.cfg.AuthServID()
	rel := relay.New(cfg.Relay, cfg.SMTP.Hostname, n.guard, n.log.With("component", "relay"), n.registry)
	recorder, err := n.startEvents()
	if err != nil {
		return nil, err
	}
	var outcomes *domainstats.Counter
	if n.store != nil {
		// Ten seconds of counts per batch: the panel is that far behind.
		outcomes = domainstats.New(n.store, 10*time.Second, n.log.With("component", "domainstats"))
		n.runners = append(n.runners, outcomes.Run)
	}
	n.smtp, err = smtpd.New(cfg.SMTP, smtpd.Deps{
		Outcomes:      outcomeCounter(outcomes),
		Recorder:      recorder,
		Directory:     n.directory,
		Parser:        scanner.NewParser(cfg.Scanner.Weights),
		AuthServID:    authServID,
		PrepareHeader: func(h *textproto.Header) bool { return auth.StripOurAuthResults(h, authServID) > 0 },
		Scanner:       n.pipeline,
		Relay:         smtpd.Relay{Relay: rel},
		Policy:        cfg.Scanner.Policy(),
		Node:          cfg.Node.Name,
		Provider:      cfg.Node.Provider,
		Health:        n.health,
		Log:           n.log,
		Registry:      n.registry,
	})
	if err != nil {
		return nil, err
	}
	n.web = web.New(n.health, n.registry, n.log.With("component", "http"), web.DefaultLimits())

	if n.smtpListener, err = n.smtp.Listen(); err != nil {
		return nil, err
	}
	if self, err := netip.ParseAddrPort(n.smtpListener.Addr().String()); err == nil {
		n.guard.SetSelf(self)
	}
	if n.httpListener, err = n.web.Listen(cfg.HTTP.Listen); err != nil {
		return nil, err
	}
	if n.mgmtListener, err = n.web.Listen(cfg.HTTP.ManagementListen); err != nil {
		return nil, err
	}
	// Last, as nothing after it can fail: a started cluster must be left.
	n.cluster, err = cluster.New(cfg.Cluster, cluster.NodeInfo{
		Name: cfg.Node.Name, Provider: cfg.Node.Provider, Region: cfg.Node.Region,
		Version: opts.Version, Started: time.Now(),
		ConfigVersion: func() uint64 { return n.directory.Snapshot().Version },
		Load:          n.smtp.MessagesPerSecond,
		// Prometheus discovers the nodes' metrics through the cluster.
		HTTPAddr: n.ManagementAddr(),
	}, n.health, n.log, n.registry)
	if err != nil {
		return nil, err
	}
	n.guard.SetMembers(n.memberIPs)
	n.web.HandleManagement("GET /api/v1/cluster", web.ClusterAPI(n.cluster))
	n.web.HandleManagement("GET /cluster", web.ClusterPage(n.cluster))
	n.web.HandleManagement("GET /api/v1/cluster/prometheus-sd", web.PrometheusSD(n.cluster))
	// A committed change is announced to every node, this one included;
	// each reloads from the store (the announcement is only a hint).
	n.cluster.Subscribe(tenant.BroadcastTopic, func([]byte, string) { n.syncer.Trigger() })
	svcOpts := admin.ServiceOptions{
		OperatorToken: operatorToken,
		Changed: func(version uint64) {
			n.syncer.Trigger()
			if err := n.cluster.Broadcast(tenant.BroadcastTopic, binary.AppendUvarint(nil, version)); err != nil {
				n.log.Warn("announcing a tenant change; the other nodes pick it up at their next periodic reload", "err", err)
			}
		},
		Log:        n.log.With("component", "api"),
		Panel:      n.tenants,
		CheckRoute: n.guard.CheckRoute,
		Ownership: admin.OwnershipOptions{
			DNS:      dnsresolver.Uncached(cfg.DNS),
			MXHosts:  cfg.Cluster.MXHosts,
			Reserved: reservedDomains(cfg, domains),
		},
	}
	if n.store != nil {
		svcOpts.Activity = n.store
	}
	svc := admin.NewService(n.tenants, svcOpts)
	n.runners = append(n.runners, func(ctx context.Context) error {
		svc.RunVerifier(ctx, cfg.Tenants.VerifyInterval, cfg.Tenants.VerifyPerRound, n.cluster.IsLeader)
		return nil
	})
	web.MountAdminAPI(n.web.Handle, svc, n.log.With("component", "api"))
	trusted, err := clientip.ParseTrusted(cfg.HTTP.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("http.trusted_proxies: %w", err)
	}
	pnlOpts := panel.Options{Service: svc, DataDir: cfg.DataDir, SMTPHostname: cfg.SMTP.Hostname, Guard: n.guard,
		Log: n.log.With("component", "panel"), ClientIP: clientip.New(trusted)}
	if n.store != nil {
		pnlOpts.Sessions = n.store.PanelSessions()
	}
	pnl, err := panel.New(cfg.Panel, pnlOpts)
	if err != nil {
		return nil, err
	}
	pnl.Mount(n.web.Handle)
	if err := n.startMap(svc); err != nil {
		return nil, err
	}
	ok = true
	return n, nil
}

// memberIPs are the cluster members' addresses, for the loop check: a
// route to one of them at our SMTP port leads back into the cluster.
func (n *Node) memberIPs() []netip.Addr {
	members := n.cluster.Members()
	ips := make([]netip.Addr, 0, len(members))
	for _, m := range members {
		host, _, err := net.SplitHostPort(m.Addr)
		if err != nil {
			host = m.Addr
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			ips = append(ips, ip)
		}
	}
	return ips
}

// SMTPAddr, HTTPAddr and ManagementAddr are the bound listener addresses.
func (n *Node) SMTPAddr() string       { return n.smtpListener.Addr().String() }
func (n *Node) HTTPAddr() string       { return n.httpListener.Addr().String() }
func (n *Node) ManagementAddr() string { return n.mgmtListener.Addr().String() }

// Health is the node's readiness registry.
func (n *Node) Health() *health.Registry { return n.health }

// Run serves until ctx is cancelled, then drains: SMTP stops accepting,
// in-flight transactions get smtp.shutdown_grace to finish, and the HTTP
// side stays up until SMTP is done so /readyz keeps saying "draining" to
// the load balancer. It returns nil on a clean shutdown.
func (n *Node) Run(ctx context.Context) error {
	defer n.close()
	n.log.Info("node started", "smtp", n.SMTPAddr(), "http", n.HTTPAddr(), "management", n.ManagementAddr(), "provider", n.cfg.Node.Provider, "region", n.cfg.Node.Region)
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	// The cluster outlives SMTP too: the node leaves once its mail is done.
	clusterCtx, stopCluster := context.WithCancel(context.Background())
	defer stopCluster()
	// The recorder too: draining sessions still record their verdicts.
	eventsCtx, stopEvents := context.WithCancel(context.Background())
	defer stopEvents()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.smtp.Serve(n.smtpListener) })
	g.Go(func() error { return n.web.Serve(httpCtx, n.httpListener, n.mgmtListener) })
	g.Go(func() error { return n.cluster.Run(clusterCtx) })
	for _, r := range n.runners {
		g.Go(func() error { return r(gctx) })
	}
	if n.recorder != nil {
		g.Go(func() error {
			// Its only error is events lost at shutdown: worth a log line,
			// not a failed exit.
			if err := n.recorder.Run(eventsCtx); err != nil {
				n.log.Error("events", "err", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		n.log.Info("shutting down", "grace", n.cfg.SMTP.ShutdownGrace)
		// Readiness 503 and "draining" in gossip before SMTP stops.
		n.cluster.Drain()
		sctx, cancel := context.WithTimeout(context.Background(), n.cfg.SMTP.ShutdownGrace)
		defer cancel()
		err := n.smtp.Shutdown(sctx)
		if errors.Is(err, context.DeadlineExceeded) {
			n.log.Warn("shutdown grace expired, remaining sessions closed")
			err = nil
		}
		stopEvents() // the recorder writes what it holds, within events.shutdown_timeout
		lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
		if lerr := n.cluster.Leave(lctx); lerr != nil {
			n.log.Warn("leaving the cluster; the others will see this node fail instead", "err", lerr)
		}
		lcancel()
		stopCluster()
		stopHTTP()
		return err
	})
	err := g.Wait()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("node: %w", err)
	}
	n.log.Info("node stopped")
	return nil
}

func (n *Node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		if err := n.closers[i](); err != nil {
			n.log.Warn("close", "err", err)
		}
	}
	n.closers = nil
}

// startMap serves the attack map. Only the cluster's leader renders it;
// every node serves the stored bytes, so all answer with one ETag. Without a
// store there is nothing to draw from, and the map is simply not served.
func (n *Node) startMap(svc *admin.Service) error {
	world, err := spammap.LoadWorld()
	if err != nil {
		return fmt.Errorf("map: %w", err)
	}
	if n.store == nil {
		return nil
	}
	sched, err := spammap.NewScheduler(n.cfg.Map, world, spammap.StoreEvents{Store: n.store}, n.store, n.cluster, n.registry, n.log.With("component", "map"))
	if err != nil {
		return fmt.Errorf("map: %w", err)
	}
	n.runners = append(n.runners, sched.Run)
	n.web.MountMap(sched, web.MapOptions{FrameAncestors: n.cfg.Map.FrameAncestors, Log: n.log.With("component", "map"),
		Scoped: panel.ScopedMaps(svc, sched), Operator: web.OperatorOnly(svc, n.log.With("component", "api"))})
	return nil
}

// outcomeCounter keeps a nil *Counter from becoming a non-nil interface
// that smtpd would call.
func outcomeCounter(c *domainstats.Counter) interface {
	Count(domainID int64, outcome smtpd.Outcome)
} {
	if c == nil {
		return nil
	}
	return c
}

// startEvents builds the spam-source path: the GeoIP Locator (it runs
// without a database, saying so in the log and /readyz) and, when the store
// is up, the Recorder the SMTP sessions hand events to. The result is nil
// (no recording) without a store.
func (n *Node) startEvents() (smtpd.Recorder, error) {
	loc, err := geo.New(n.cfg.Geo, geo.Options{Registerer: n.registry, Logger: n.log, Health: n.health})
	if err != nil {
		return nil, err
	}
	n.geo = loc
	n.closers = append(n.closers, loc.Close)
	n.runners = append(n.runners, loc.Run)
	if n.store == nil {
		return nil, nil
	}
	rec, err := events.NewRecorder(n.cfg.Events, events.Options{
		Store: n.store, Locator: loc, Registerer: n.registry, Logger: n.log, Health: n.health,
	})
	if err != nil {
		return nil, err
	}
	n.recorder = rec
	return rec, nil
}

// prepareStore brings the schemas of events, maps and panel statistics up
// to date. A database that is down now (a node started during an outage)
// is retried in the background: their writers buffer and retry meanwhile,
// so the node catches up instead of running without them until restarted.
func (n *Node) prepareStore(ctx context.Context) {
	migrate := func(ctx context.Context) error {
		for _, m := range []func(context.Context) error{n.store.MigrateEvents, n.store.MigrateMaps, n.store.MigrateDomainStats, n.store.MigratePanelSessions} {
			mctx, cancel := context.WithTimeout(ctx, n.store.Timeout)
			err := m(mctx)
			cancel()
			if err != nil {
				return err
			}
		}
		return nil
	}
	err := migrate(ctx)
	if err == nil {
		return
	}
	n.log.Error("store unavailable; mail keeps flowing, events wait in their buffer, retrying", "err", err)
	n.health.Set("store", health.Degraded, err.Error())
	n.runners = append(n.runners, func(ctx context.Context) error {
		t := time.NewTicker(storeRetryInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			if err := migrate(ctx); err != nil {
				n.health.Set("store", health.Degraded, err.Error())
				continue
			}
			n.log.Info("store reachable again")
			n.health.Set("store", health.OK, "")
			return nil
		}
	})
}

// privateFiles restricts the database, the tenant snapshot and the panel
// key to the node's user.
func (n *Node) privateFiles() error {
	var files []string
	if n.cfg.Store.Driver == store.SQLite {
		db := store.SQLitePath(n.cfg.Store, n.cfg.DataDir)
		files = append(files, db, db+"-wal", db+"-shm")
	}
	files = append(files, filepath.Join(n.cfg.DataDir, tenant.SnapshotFile), filepath.Join(n.cfg.DataDir, panel.KeyFile))
	return fsperm.PrivateFiles(n.log, files...)
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
