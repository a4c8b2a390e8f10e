// Package cluster keeps the nodes of an mxgrid deployment, possibly spread
// over several providers, aware of each other: who is up, who is ready for
// mail, who leads the cluster-wide periodic jobs, and it carries small
// announcements (a new tenant config version) to every node.
//
// Liveness is memberlist's (SWIM probes; alive, suspect, dead). Readiness is
// ours: each node gossips compact, versioned metadata (provider, region,
// version, ready/draining with reasons, load, config version) kept under
// memberlist's 512-byte limit, and refreshed with UpdateNode when its health
// registry changes. This package is the only one that imports memberlist;
// the rest of the program sees Member, Status, Event and the broadcast API.
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/periodic"
)

// State is a member's liveness as this node sees it.
type State string

const (
	StateAlive   State = "alive"
	StateSuspect State = "suspect" // a probe of ours got no ack; not yet declared dead
	StateDead    State = "dead"    // failed without saying goodbye
	StateLeft    State = "left"    // said it was leaving, then went
)

// Health registry components this package reports.
const (
	componentDrain = "cluster"       // NotReady while draining
	componentPeers = "cluster.peers" // Degraded while no join target answers
	componentName  = "cluster.name"  // NotReady while an older node goes by this node's name
)

const (
	// forgetAfter is how long dead and left members stay listed, so the
	// page shows what went away overnight, and a node replaced under a new
	// name eventually stops being reported.
	forgetAfter = time.Hour
	// loadRefresh limits re-gossiping meta when only the load changed:
	// every UpdateNode is a broadcast to the whole cluster.
	loadRefresh = 10 * time.Second
	// updateTimeout bounds the wait for a meta update's first transmission.
	updateTimeout = 2 * time.Second
	// leaveTimeout bounds Leave when Run's context ends without one.
	leaveTimeout = 5 * time.Second
	// nameMissedPings is how many pings in a row (one a second) the node
	// that goes by this node's name must miss to be taken for gone.
	nameMissedPings = 3
	// maxClaimants bounds the names remembered as claimed from a second
	// address.
	maxClaimants = 64
	// inboxSize bounds work queued from memberlist's goroutines (messages,
	// membership events) for this package's dispatcher.
	inboxSize = 1024
)

// NodeInfo describes this node. Load and ConfigVersion are read on every
// meta refresh (about once a second); nil reports zero.
type NodeInfo struct {
	Name     string // unique in the cluster; memberlist's node name
	Provider string
	Region   string
	Version  string
	Started  time.Time
	// Load returns messages per second over the last minute.
	Load func() float64
	// ConfigVersion returns the tenant config version this node serves.
	ConfigVersion func() uint64
	// HTTPAddr is the node's bound management listener
	// (http.management_listen), gossiped so that any node can list every
	// node's /metrics for Prometheus.
	HTTPAddr string
	// SMTPHostname is the node's smtp.hostname, gossiped so that every
	// node's relay recognises the others' greetings (a route that reaches
	// a member by an address the cluster does not know is a loop).
	SMTPHostname string
}

// Member is a node as this node knows it.
type Member struct {
	Name     string `json:"name"`
	Addr     string `json:"addr"`
	State    State  `json:"state"`
	Provider string `json:"provider"`
	Region   string `json:"region"`
	Version  string `json:"version"`
	// Started is the node's process start, to the second.
	Started time.Time `json:"started"`
	// Ready is true when the member is alive (or only suspect) and says it
	// should receive mail. A dead member's last word does not count.
	Ready    bool `json:"ready"`
	Draining bool `json:"draining"`
	// Reasons are the member's non-OK health conditions, "component: reason",
	// possibly truncated to fit gossip; OmittedReasons counts those dropped.
	Reasons        []string `json:"reasons,omitempty"`
	OmittedReasons int      `json:"omitted_reasons,omitempty"`
	// Load is messages per second over the last minute.
	Load          float64 `json:"load"`
	ConfigVersion uint64  `json:"config_version"`
	// HTTPAddr is where the member's management listener answers
	// (/metrics, /readyz): its gossiped address, with an unspecified host
	// (0.0.0.0, ::) replaced by the member's gossip address. Empty when
	// the member does not say (an older version).
	HTTPAddr string `json:"http_addr,omitempty"`
	// SMTPHostname is the member's smtp.hostname; empty when it does not
	// say (an older version, or a name over 128 bytes).
	SMTPHostname string    `json:"smtp_hostname,omitempty"`
	LastChange   time.Time `json:"last_change"`
	Leader       bool      `json:"leader"`
	Self         bool      `json:"self"`
}

// up says whether the member can take mail and lead. Suspect counts: a
// single missed probe must not move leadership back and forth.
func (m Member) up() bool {
	return (m.State == StateAlive || m.State == StateSuspect) && m.ready()
}

func (m Member) ready() bool { return m.Ready && !m.Draining }

// EventType says what happened to a member.
type EventType string

const (
	EventJoin    EventType = "join"
	EventUpdate  EventType = "update" // its metadata changed
	EventSuspect EventType = "suspect"
	EventAlive   EventType = "alive" // back from suspect
	EventDead    EventType = "dead"
	EventLeft    EventType = "left"
)

// Event is a change in membership, with the member as it is after it.
type Event struct {
	Type   EventType
	Member Member
}

// Cluster is this node's membership in the cluster. Create it with New,
// then call Run.
type Cluster struct {
	cfg    Config
	self   NodeInfo
	health *health.Registry
	log    *slog.Logger
	now    func() time.Time

	ml        *memberlist.Memberlist
	queue     *memberlist.TransmitLimitedQueue
	metrics   *metrics
	inbox     chan func()
	kick      chan struct{}
	forgetAge time.Duration

	// updMu serializes everything that makes memberlist announce this node
	// (UpdateNode, Leave, Shutdown): an UpdateNode after Leave would
	// announce the node alive again, and Leave after Shutdown panics.
	updMu    sync.Mutex
	left     bool
	stopped  bool
	metaSent time.Time
	metaKey  []byte // localMeta encoded with zero load, to spot load-only changes

	// closing is set before memberlist shuts down, for its log (see
	// logWriter.closing).
	closing atomic.Bool

	mu        sync.Mutex
	localMeta []byte
	draining  bool
	leaving   bool
	members   map[string]*record
	handlers  map[string][]func(payload []byte, from string)
	watchers  []func(Event)
	seen      map[uint64]time.Time // broadcast ids already delivered

	// nameHolder is the older node at another address that claims this
	// node's name, if any (see checkNameConflict).
	nameHolder nameHolder
	// claimants are the addresses that claimed a member's name while it
	// was taken, by name: joined once the member is dead (see joinUnlisted).
	claimants map[string]string

	// joinAttempted is set once the first join of cluster.join has been
	// tried: before it, a starting node that sees only itself would claim
	// leadership and run singleton work (the hourly map) beside the real
	// leader. A node that finds nobody still leads itself after that try.
	joinAttempted atomic.Bool
}

// nameHolder is an older node that goes by this node's name.
type nameHolder struct {
	addr     string
	started  time.Time
	missed   int  // pings unanswered in a row
	reported bool // this node is not ready for it
}

// record is the member table's entry: memberlist's view plus decoded meta.
type record struct {
	addr       string
	state      State
	meta       meta
	lastChange time.Time
}

// New validates cfg, binds the gossip port and starts memberlist, so a port
// in use or a bad key fails at startup. The node is alone until Run joins.
// reg receives the cluster's health conditions and supplies the readiness
// gossiped in this node's meta.
func New(cfg Config, self NodeInfo, reg *health.Registry, logger *slog.Logger, promReg prometheus.Registerer) (*Cluster, error) {
	return newCluster(cfg, self, reg, logger, promReg, options{})
}

// options are what tests change: memberlist's timers, shortened to converge
// in milliseconds, and the clock.
type options struct {
	tune func(*memberlist.Config)
	now  func() time.Time
}

func newCluster(cfg Config, self NodeInfo, reg *health.Registry, logger *slog.Logger, promReg prometheus.Registerer, opts options) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if self.Name == "" {
		return nil, errors.New("cluster: node name is empty")
	}
	keys, err := cfg.keys()
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if cfg.SecretKeyFile != "" {
		fsperm.WarnShared(logger, "cluster.secret_key_file", cfg.SecretKeyFile)
	}
	mc, err := cfg.memberlistConfig()
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	bind, err := parseIPPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("cluster: bind: %w", err)
	}
	logger = logger.With("pkg", "cluster")
	if opts.now == nil {
		opts.now = time.Now
	}
	c := &Cluster{
		cfg:       cfg,
		self:      self,
		health:    reg,
		log:       logger,
		now:       opts.now,
		inbox:     make(chan func(), inboxSize),
		kick:      make(chan struct{}, 1),
		forgetAge: forgetAfter,
		members:   make(map[string]*record),
		handlers:  make(map[string][]func([]byte, string)),
		seen:      make(map[uint64]time.Time),
		claimants: make(map[string]string),
	}
	// A node with no one to join leads itself from the start.
	c.joinAttempted.Store(len(cfg.Join) == 0)
	c.queue = &memberlist.TransmitLimitedQueue{NumNodes: c.numUp, RetransmitMult: mc.RetransmitMult}
	c.metrics = newMetrics(promReg, c)
	reg.Set(componentDrain, health.OK, "")
	c.localMeta = c.currentMeta().encode(memberlist.MetaMaxSize)

	stdlog := log.New(newLogWriter(logger.With("lib", "memberlist"), c.observeLog, c.closing.Load, c.now), "", 0)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{bind.Addr().String()},
		BindPort:  int(bind.Port()),
		Logger:    stdlog,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: bind %s: %w", cfg.Bind, err)
	}
	in, out := c.metrics.gossipBytes.WithLabelValues("in"), c.metrics.gossipBytes.WithLabelValues("out")
	transport := newCountingTransport(nt,
		func(n int) { in.Add(float64(n)) },
		func(n int) { out.Add(float64(n)) },
		func(reason string) { c.metrics.streamsRefused.WithLabelValues(reason).Inc() },
		c.isMemberAddr)

	mc.Name = self.Name
	mc.BindAddr = bind.Addr().String()
	mc.BindPort = nt.GetAutoBindPort()
	if cfg.Advertise != "" {
		ap, err := parseIPPort(cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("cluster: advertise: %w", err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ap.Addr().String(), int(ap.Port())
	}
	mc.Transport = transport
	if len(keys) > 0 {
		if mc.Keyring, err = memberlist.NewKeyring(keys, keys[0]); err != nil {
			return nil, fmt.Errorf("cluster: keys: %w", err)
		}
	}
	mc.Logger = stdlog
	mc.Delegate = delegate{c}
	mc.Events = eventDelegate{c}
	mc.Ping = pingDelegate{c}
	if len(keys) == 0 && len(cfg.Join) == 0 && !cfg.InsecureNoKey {
		// Unencrypted gossip on loopback is open to every local user:
		// without a key, only a node that opted in takes members.
		solo := soloDelegate{self: self.Name}
		mc.Alive, mc.Merge = solo, solo
	}
	if opts.tune != nil {
		opts.tune(mc)
	}
	mc.Conflict = conflictDelegate{c}
	c.ml, err = memberlist.Create(mc)
	if err != nil {
		_ = transport.Shutdown()
		return nil, fmt.Errorf("cluster: start memberlist on %s: %w", cfg.Bind, err)
	}
	return c, nil
}

// Run joins the cluster (retrying in the background), keeps this node's
// meta current and delivers broadcasts and events until ctx ends; then it
// leaves the cluster (if Leave was not called already) and shuts down.
func (c *Cluster) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { c.dispatch(ctx) })
	wg.Go(func() { c.joinLoop(ctx) })
	wg.Go(func() { c.refreshLoop(ctx) })
	<-ctx.Done()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
	if err := c.Leave(lctx); err != nil {
		// The others will notice the node dead instead of left; nothing
		// more to do about it on the way out.
		c.log.Warn("leaving the cluster", "err", err)
	}
	cancel()
	wg.Wait()
	return c.Close()
}

// Close stops memberlist and releases the gossip port. Run closes on its
// way out; the owner of a cluster whose Run never ran (a node that failed
// to build after New) must. Closing again is harmless.
func (c *Cluster) Close() error {
	c.updMu.Lock()
	defer c.updMu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	c.closing.Store(true)
	if err := c.ml.Shutdown(); err != nil {
		return fmt.Errorf("cluster: shutdown: %w", err)
	}
	return nil
}

// Drain marks this node as draining: its readiness turns NotReady
// ("draining"), so /readyz answers 503, and the other nodes see it in its
// meta within a gossip round; it stops being the leader, since the leader
// must be ready. It stays a member until Leave. Safe to call more than once.
func (c *Cluster) Drain() {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	c.health.Set(componentDrain, health.NotReady, "draining")
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Leave drains the node, tells the others it is leaving on purpose (so they
// list it as left, not dead) and leaves the cluster, waiting until ctx ends
// at most for the announcements to go out. Call it before cancelling Run's
// context; calling it more than once is harmless.
func (c *Cluster) Leave(ctx context.Context) error {
	c.Drain()
	c.mu.Lock()
	c.leaving = true
	c.mu.Unlock()
	timeout := leaveTimeout
	if d, ok := ctx.Deadline(); ok {
		// memberlist reads a zero or negative timeout as "wait forever".
		timeout = max(time.Until(d), 100*time.Millisecond)
	}
	c.updMu.Lock()
	defer c.updMu.Unlock()
	if c.stopped {
		return errors.New("cluster: leave after shutdown")
	}
	if c.left {
		return nil
	}
	// The leaving flag must go out before memberlist's leave message:
	// memberlist's NotifyLeave cannot tell a departure from a failure.
	c.updateMetaLocked(timeout/2, true)
	c.left = true
	if err := c.ml.Leave(timeout / 2); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	return nil
}

// Status is a consistent snapshot of the member table.
type Status struct {
	Self   string
	Leader string // "" when no member is up and ready
	// Members sorted by provider, then name.
	Members []Member
}

// Status returns the members as this node sees them.
func (c *Cluster) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statusLocked()
}

func (c *Cluster) statusLocked() Status {
	s := Status{Self: c.self.Name, Members: make([]Member, 0, len(c.members))}
	for name, r := range c.members {
		s.Members = append(s.Members, c.memberLocked(name, r))
	}
	sort.Slice(s.Members, func(i, j int) bool {
		a, b := s.Members[i], s.Members[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.Name < b.Name
	})
	// Deterministic from the member list alone, so every node that sees
	// the same members names the same leader without talking about it.
	for _, m := range s.Members {
		if m.up() && (s.Leader == "" || m.Name < s.Leader) {
			s.Leader = m.Name
		}
	}
	for i := range s.Members {
		s.Members[i].Leader = s.Members[i].Name == s.Leader
	}
	return s
}

func (c *Cluster) memberLocked(name string, r *record) Member {
	alive := r.state == StateAlive || r.state == StateSuspect
	return Member{
		Name:           name,
		Addr:           r.addr,
		State:          r.state,
		Provider:       r.meta.Provider,
		Region:         r.meta.Region,
		Version:        r.meta.Version,
		Started:        r.meta.Started,
		Ready:          alive && r.meta.Ready,
		Draining:       r.meta.Draining,
		Reasons:        r.meta.Reasons,
		OmittedReasons: r.meta.OmittedReason,
		Load:           r.meta.Load,
		ConfigVersion:  r.meta.ConfigVersion,
		HTTPAddr:       reachableHTTP(r.meta.HTTPAddr, r.addr),
		SMTPHostname:   r.meta.SMTPHostname,
		LastChange:     r.lastChange,
		Self:           name == c.self.Name,
	}
}

// reachableHTTP turns a member's management listener into an address others
// can dial: a wildcard bind (0.0.0.0:8026 in containers) takes the host of the
// member's gossip address, which is what the other nodes reach it on.
func reachableHTTP(listen, gossipAddr string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip, perr := netip.ParseAddr(host); host != "" && (perr != nil || !ip.IsUnspecified()) {
		return listen
	}
	gh, _, err := net.SplitHostPort(gossipAddr)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(gh, port)
}

// isMemberAddr reports whether ip is the gossip address of a member this
// node knows, gone ones included (they come back from there).
func (c *Cluster) isMemberAddr(ip netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.members {
		if ap, err := netip.ParseAddrPort(r.addr); err == nil && ap.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}

// Members returns the members as this node sees them, dead and left ones
// included for an hour after they went.
func (c *Cluster) Members() []Member { return c.Status().Members }

// Leader returns the name of the member that runs cluster-wide periodic
// jobs: the lowest name among members that are up and ready, or "".
func (c *Cluster) Leader() string { return c.Status().Leader }

// IsLeader reports whether this node is the leader. Check it right before
// each run of a periodic job: leadership moves when members come and go.
func (c *Cluster) IsLeader() bool {
	return c.joinAttempted.Load() && c.Leader() == c.self.Name
}

// Watch registers fn for membership events. fn runs on the cluster's
// dispatcher goroutine, one event at a time; a slow fn delays broadcasts.
func (c *Cluster) Watch(fn func(Event)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watchers = append(c.watchers, fn)
}

// currentMeta gathers what this node says about itself now.
func (c *Cluster) currentMeta() meta {
	level, conds := c.health.Report()
	reasons := make([]string, 0, len(conds))
	for _, cd := range conds {
		reasons = append(reasons, cd.Component+": "+cd.Reason)
	}
	c.mu.Lock()
	m := meta{
		Provider:     c.self.Provider,
		Region:       c.self.Region,
		Version:      c.self.Version,
		Started:      c.self.Started,
		Ready:        level < health.NotReady,
		Draining:     c.draining,
		Leaving:      c.leaving,
		Reasons:      reasons,
		HTTPAddr:     c.self.HTTPAddr,
		SMTPHostname: c.self.SMTPHostname,
	}
	c.mu.Unlock()
	if c.self.Load != nil {
		m.Load = c.self.Load()
	}
	if c.self.ConfigVersion != nil {
		m.ConfigVersion = c.self.ConfigVersion()
	}
	return m
}

// updateMetaLocked re-gossips this node's meta if it changed (a load-only
// change waits for loadRefresh unless force). The caller holds updMu.
func (c *Cluster) updateMetaLocked(timeout time.Duration, force bool) {
	if c.left || c.stopped {
		return
	}
	m := c.currentMeta()
	b := m.encode(memberlist.MetaMaxSize)
	m.Load = 0
	key := m.encode(memberlist.MetaMaxSize)
	now := c.now()
	c.mu.Lock()
	same := bytes.Equal(b, c.localMeta)
	loadOnly := bytes.Equal(key, c.metaKey)
	if same || (loadOnly && !force && now.Sub(c.metaSent) < loadRefresh) {
		c.mu.Unlock()
		return
	}
	c.localMeta = b
	c.mu.Unlock()
	c.metaKey, c.metaSent = key, now
	if err := c.ml.UpdateNode(timeout); err != nil {
		// Only the wait timed out; the update is queued and goes out with
		// the next gossip.
		c.log.Debug("meta update not yet transmitted", "err", err)
	}
}

func (c *Cluster) refreshLoop(ctx context.Context) {
	periodic.Every(ctx, time.Second, c.kick, func(context.Context) {
		c.updMu.Lock()
		c.updateMetaLocked(updateTimeout, false)
		c.updMu.Unlock()
		c.prune()
		c.checkNameConflict()
	})
}

// prune forgets members gone for longer than forgetAge and broadcast ids
// too old to arrive again.
func (c *Cluster) prune() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, r := range c.members {
		if (r.state == StateDead || r.state == StateLeft) && now.Sub(r.lastChange) > c.forgetAge {
			delete(c.members, name)
		}
	}
	for id, t := range c.seen {
		if now.Sub(t) > seenTTL {
			delete(c.seen, id)
		}
	}
}

// joinLoop joins the configured peers, and joins again whenever this node
// finds itself alone (all peers restarted, or a partition healed after
// memberlist forgot the dead), backing off while nobody answers; with
// peers, it joins the listed nodes that are not members.
func (c *Cluster) joinLoop(ctx context.Context) {
	if len(c.cfg.Join) == 0 {
		return
	}
	const (
		minWait   = time.Second
		maxWait   = 30 * time.Second
		checkWait = 10 * time.Second
	)
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		// The first join is always made, whoever is up: a peer that
		// joined this node before this loop first ran made it count two
		// members, and the join list was never tried. The pair then stayed
		// a cluster of its own, apart from the members only the list
		// reaches, and this node never set joinAttempted, so neither
		// could lead: nobody ran the singleton jobs.
		if up := c.numUp(); c.joinAttempted.Load() && up > 1 {
			c.health.Set(componentPeers, health.OK, "")
			wait = checkWait
			c.joinUnlisted(ctx, up)
			continue
		}
		n, err := c.ml.Join(c.cfg.Join)
		if err == nil && c.numUp() == 1 {
			// Only this node answered (it is in its own join list), and
			// memberlist keeps the other entries' errors to itself when
			// one answers: a wrong key was never named. Those alone tell.
			if others := c.unjoined(ctx); len(others) > 0 {
				n, err = c.ml.Join(others)
			}
		}
		c.joinAttempted.Store(true)
		if err == nil && c.numUp() > 1 {
			c.log.Info("joined the cluster", "answered", n, "members", c.numUp())
			c.health.Set(componentPeers, health.OK, "")
			wait = checkWait
			continue
		}
		reason := "no other cluster member reachable (join: " + strings.Join(c.cfg.Join, ", ") + ")"
		c.health.Set(componentPeers, health.Degraded, reason)
		wait = min(max(2*wait, minWait), maxWait)
		if err == nil {
			// Only this node answered (it is in its own join list).
			c.log.Info("no other member answered yet; retrying", "join", c.cfg.Join, "retry_in", wait)
			continue
		}
		c.log.Warn("joining the cluster failed; retrying", "join", c.cfg.Join, "err", explainJoinError(err), "retry_in", wait)
	}
}

// joinUnlisted joins the entries of the join list that are not members
// while this node has peers. Having peers is no proof of having joined:
// a node whose first join found its list down, then was joined by a node
// listing it, stayed in a cluster of the two for good, and a partition
// that outlasted memberlist's memory of the dead (GossipToTheDeadTime)
// left two clusters, each with its own leader. An entry at an address no
// member advertises (NAT, a name of several nodes) is joined at each check:
// one state exchange, harmless.
//
// It also joins the node that claimed a member's name from another address
// once that member is dead: a crashed node started again at a new address
// before the others noticed the crash was refused as a name conflict, and
// nothing told them of it again until its next push/pull (30 s on lan,
// 60 s on wan), while it led beside their leader.
func (c *Cluster) joinUnlisted(ctx context.Context, up int) {
	missing := c.unjoined(ctx)
	c.mu.Lock()
	for name, addr := range c.claimants {
		r, ok := c.members[name]
		switch {
		case ok && r.addr == addr:
			delete(c.claimants, name)
		case !ok || r.state == StateDead || r.state == StateLeft:
			missing = append(missing, addr)
			delete(c.claimants, name)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return
	}
	if _, err := c.ml.Join(missing); err != nil {
		c.log.Debug("a listed node is not a member and did not answer", "join", missing, "err", err)
		return
	}
	if n := c.numUp(); n > up {
		c.log.Info("joined listed nodes that were not members", "join", missing, "members", n)
	}
}

// unjoined is the entries of the join list at which no live member is.
func (c *Cluster) unjoined(ctx context.Context) []string {
	members := map[netip.AddrPort]bool{}
	c.mu.Lock()
	for _, r := range c.members {
		if ap, err := netip.ParseAddrPort(r.addr); err == nil && (r.state == StateAlive || r.state == StateSuspect) {
			members[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = true
		}
	}
	c.mu.Unlock()
	var missing []string
	for _, j := range c.cfg.Join {
		host, port, _ := net.SplitHostPort(j) // Validate checked the form
		p, _ := parsePort(port)
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		joined := err == nil
		for _, ip := range ips {
			joined = joined && members[netip.AddrPortFrom(ip.Unmap(), p)]
		}
		if !joined {
			missing = append(missing, j)
		}
	}
	return missing
}

// explainJoinError adds the likely cause to memberlist's join errors whose
// wording does not point at the configuration.
func explainJoinError(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no installed keys could decrypt"),
		strings.Contains(msg, "message authentication failed"):
		return msg + " (cluster.secret_key differs from the peer's)"
	case strings.Contains(msg, "encryption is not configured"):
		return msg + " (the peer uses gossip encryption: set cluster.secret_key)"
	case strings.Contains(msg, "EOF"), strings.Contains(msg, "connection reset"):
		return msg + " (the peer hung up: different cluster.secret_key, or not an mxgrid gossip port?)"
	}
	return msg
}

// numUp counts members memberlist still considers alive (suspect
// included), this node too; the broadcast queue scales retransmits by it.
func (c *Cluster) numUp() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.members {
		if r.state == StateAlive || r.state == StateSuspect {
			n++
		}
	}
	return n
}

// post hands fn to the dispatcher without ever blocking the caller, which
// is one of memberlist's goroutines: a full inbox drops fn and counts it.
func (c *Cluster) post(fn func()) {
	select {
	case c.inbox <- fn:
	default:
		c.metrics.dropped.Inc()
	}
}

func (c *Cluster) dispatch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case fn := <-c.inbox:
			fn()
		}
	}
}

func (c *Cluster) emit(t EventType, name string, r *record) {
	ev := Event{Type: t, Member: c.memberLocked(name, r)}
	watchers := c.watchers
	c.post(func() {
		for _, w := range watchers {
			w(ev)
		}
	})
}

// setStateLocked moves a member to state, counting and announcing the
// transition when it is one.
func (c *Cluster) setStateLocked(name string, r *record, s State, ev EventType) {
	if r.state == s {
		return
	}
	r.state = s
	r.lastChange = c.now()
	c.metrics.transitions.WithLabelValues(string(s)).Inc()
	c.emit(ev, name, r)
}
