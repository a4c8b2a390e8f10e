// Package smtpd is mxgrid's SMTP front end: it accepts mail only for
// provisioned domains and recipients, scans it, and relays it to the
// customer's server before answering the sender, so the sender's 250 is the
// customer's 250 and no node ever queues a message.
package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/events"
	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/bytebudget"
	"github.com/mxgrid/mxgrid/internal/ratelimit"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/negcache"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// Directory finds the domain a recipient belongs to.
type Directory interface {
	Lookup(domain string) (*tenant.Domain, bool)
}

// partialDirectory is a Directory that can say it may lack domains
// (tenant.Directory while the store has not confirmed it lately).
type partialDirectory interface {
	Partial() bool
}

// unservableDirectory is a Directory that knows the provisioned domains it
// cannot serve (tenant.Directory: records damaged or refused on load).
type unservableDirectory interface {
	Unservable(domain string) (reason string, ok bool)
}

// unservable reports why domain is provisioned but cannot be served.
func (s *Server) unservable(domain string) (string, bool) {
	u, ok := s.deps.Directory.(unservableDirectory)
	if !ok {
		return "", false
	}
	return u.Unservable(domain)
}

func (s *Server) directoryPartial() bool {
	p, ok := s.deps.Directory.(partialDirectory)
	return ok && p.Partial()
}

// Scanner decides what happens to a message.
type Scanner interface {
	Scan(ctx context.Context, env *scanner.Envelope, msg *scanner.Message, policy scanner.Policy) scanner.Verdict
}

// Relayer opens downstream transactions: the relay, or in tests a fake that
// fails where the test wants. A failure is best a *relay.Error, which
// carries the reply the sender should hear; any other error is a 451.
type Relayer interface {
	Open(ctx context.Context, route relay.Route, from mailaddr.Address, opts relay.MailOptions) (Transaction, error)
}

// Transaction is one open downstream transaction, driven step by step by
// the session: a recipient at each accepted RCPT, the message once the scan
// has passed, Close when the inbound transaction ends (it must not deliver
// anything the session has not sent).
type Transaction interface {
	Rcpt(to mailaddr.Address) error
	// Recipients is how many recipients the downstream accepted.
	Recipients() int
	// TLS reports whether the downstream session is encrypted.
	TLS() bool
	// Data returns the downstream's final reply text; only a nil error
	// means the customer's server took the message. eightBit is asked
	// about msg's bytes >= 0x80 only when the customer's server lacks
	// 8BITMIME or SMTPUTF8 (relay.Transaction.Data).
	Data(msg io.Reader, eightBit relay.EightBit) (reply string, err error)
	Close()
}

// Relay adapts *relay.Relay to Relayer. Go has no covariant results, so
// relay's Begin, which returns its concrete *relay.Transaction, cannot
// satisfy Relayer by itself.
type Relay struct{ *relay.Relay }

// Open begins a downstream transaction through the relay.
func (r Relay) Open(ctx context.Context, route relay.Route, from mailaddr.Address, opts relay.MailOptions) (Transaction, error) {
	tx, err := r.Begin(ctx, route, from, opts)
	if err != nil {
		// Not tx: a nil *relay.Transaction in an interface is not nil.
		return nil, err
	}
	return tx, nil
}

// Recorder takes spam and virus sources; Record must never block.
type Recorder interface {
	Record(events.Event)
}

// Deps are the parts a Server talks to.
type Deps struct {
	Directory Directory
	Scanner   Scanner
	Relay     Relayer
	// Recorder may be nil (no events recorded).
	Recorder Recorder
	// Tracker may be nil (no message tracking).
	Tracker Tracker
	// Quarantine may be nil: tag_action quarantine then tags and delivers.
	Quarantine Quarantiner
	// QuarantineDir, when set, is where the quarantine's store writes on
	// this node's disk (SQLite's, in data_dir, beside the spool): a message
	// is held only while that disk keeps smtp.spool_min_free besides it.
	QuarantineDir string
	// QuarantineReusable, when set with QuarantineDir, is the space the
	// store's file holds free for its next writes (SQLite's free pages):
	// held mail that left the store gave its pages back to the file, not
	// to the disk, and a hold that fits in them takes no more of the disk.
	QuarantineReusable func(context.Context) (int64, error)
	// OwnMail, when set, reports whether a message for rcpt (header h,
	// body read from what body returns) is mail this cluster wrote, a
	// quarantine digest coming back through its recipient's MX, which is
	// then delivered as an allow-listed client's: a digest lists held
	// spam's subjects and senders, and scored as any mail it was tagged,
	// or held in the quarantine it reports on.
	OwnMail func(rcpt string, h textproto.Header, body func() io.Reader) bool
	// WhyURL, when set, is the public "why was I refused" page's prefix
	// (http.public_url + "/why/"), quoted with the reference in refusals.
	WhyURL string
	// Outcomes, when set, counts each transaction's outcome per domain
	// (the reseller panel's statistics).
	Outcomes interface {
		Count(domainID int64, outcome Outcome)
	}
	// Parser parses messages once for every check; nil means default
	// symbol weights.
	Parser *scanner.Parser
	// Policy is the node default, overridden per domain.
	Policy scanner.Policy
	// Node and Provider label recorded events.
	Node, Provider string
	// PrepareHeader, when set, edits the inbound header before our fields
	// are added (for example removing forged Authentication-Results that
	// claim our authserv-id). h is the scanned message's and is not to be
	// modified: it returns h itself when nothing changes, or an edited
	// copy and true.
	PrepareHeader func(h textproto.Header) (textproto.Header, bool)
	// AuthServID names us in Authentication-Results (RFC 8601 §2.5);
	// defaults to the SMTP hostname.
	AuthServID string
	Health     *health.Registry
	Log        *slog.Logger
	Registry   prometheus.Registerer
	// SpoolDir holds bodies past smtp.spool_threshold (data_dir/spool);
	// files left there by an earlier run are removed by New.
	SpoolDir string
}

// maxLineLength bounds a command line, which go-smtp buffers whole. A
// body's lines are not limited (the go-smtp fork lifts the limit for DATA
// and BDAT), as Postfix takes them: real mail (machine-generated HTML, a
// data: image) breaks RFC 5321's 1000 octets by far.
const maxLineLength = 64 << 10

// maxTrackedClients bounds the clients whose refused recipients are
// counted (about 10 MB); past it the refilled ones are forgotten first.
const maxTrackedClients = 100_000

// Server is one SMTP listener with its sessions.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *metrics
	smtp    *smtp.Server
	// negCache answers repeats of recipients the customer's server refused.
	negCache *negcache.Cache
	// unknownByClient spends a token per refused recipient of a client
	// (smtp.client_unknown_recipients); nil when off.
	unknownByClient *ratelimit.Limiter[clientTenant]
	trusted         []netip.Prefix
	// cert is smtp.tls_cert's, reloaded when replaced; nil without TLS.
	cert *certWatcher

	// parser is set in New and only read after.
	parser *scanner.Parser
	// rate has its own lock; transactions synchronises itself.
	rate         rate
	budget       *bytebudget.Budget
	spool        *spool
	transactions transactions
	// quarantineHealth is the quarantine's condition in /readyz.
	quarantineHealth quarantineHealth
	// txBase parents every transaction's context; abortTx cancels them
	// all when the shutdown grace runs out. Both are set in New.
	txBase  context.Context
	abortTx context.CancelFunc
	// addr is set by Listen; Addr is for callers that have seen Listen
	// return.
	addr net.Addr

	// mu guards perIP and conns, the connection accounting. perIP is
	// keyed by ratelimit.ClientKey: an IPv6 host holds a whole /64, and
	// counted per address it could take every slot of max_connections.
	mu    sync.Mutex
	perIP map[netip.Prefix]int
	conns map[*gateConn]struct{}
	// stressed is set while conns is past the high-water mark
	// (stress.go), written under mu; stressOn and stressOff are the
	// marks.
	stressed            atomic.Bool
	stressOn, stressOff int
}

// New builds a server; Serve starts it.
func New(cfg Config, deps Deps) (*Server, error) {
	trusted, err := cfg.proxyPrefixes()
	if err != nil {
		return nil, err
	}
	if deps.SpoolDir == "" {
		return nil, errors.New("smtp: no spool directory")
	}
	sp, err := newSpool(deps.SpoolDir, cfg.SpoolThreshold, cfg.SpoolMinFree, deps.Registry, deps.Log)
	if err != nil {
		return nil, err
	}
	if all := clientip.Everyone(trusted); len(all) > 0 {
		deps.Log.Warn("smtp.trusted_proxies trusts every address: any client can send a PROXY header naming any address as its own (DNSBL, per-address limits, logs); list your load balancers' networks", "component", "smtp", "networks", fmt.Sprint(all))
	}
	budget := bytebudget.New(cfg.MemoryBudget)
	s := &Server{
		spool:   sp,
		cfg:     cfg,
		deps:    deps,
		log:     deps.Log.With("component", "smtp"),
		metrics: newMetrics(deps.Registry, budget),
		budget:  budget,
		trusted: trusted,
		parser:  deps.Parser,
		perIP:   make(map[netip.Prefix]int),
		conns:   make(map[*gateConn]struct{}),
	}
	s.stressOn, s.stressOff = stressMarks(cfg.MaxConnections)
	s.negCache = negcache.New(negcache.Config{
		TTL:       cfg.NegativeCacheTTL,
		Memcached: cfg.NegativeCacheMemcached,
		Timeout:   cfg.NegativeCacheTimeout,
	}, deps.Health, s.log, deps.Registry)
	if n := cfg.ClientUnknownRecipients; n > 0 {
		s.unknownByClient = ratelimit.New[clientTenant](n, cfg.ClientUnknownWindow/time.Duration(n), maxTrackedClients)
	}
	s.txBase, s.abortTx = context.WithCancel(context.Background())
	if s.parser == nil {
		s.parser = scanner.NewParser(nil)
	}
	s.parser = s.parser.ForSMTP()
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = cfg.Hostname
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	srv.MaxJunkCommands = cfg.MaxJunkCommands
	srv.Stressed = s.stressedConn
	srv.StressJunkCommands = stressJunkCommands
	srv.ForbidUnauthPipelining = cfg.ForbidUnauthPipelining
	srv.ImproperPipelining = s.improperPipelining
	srv.MaxLineLength = maxLineLength
	srv.WriteTimeout = cfg.CommandTimeout
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = slogAdapter{s.log}
	if cfg.TLSCert != "" {
		cert, err := loadCert(cfg.TLSCert, cfg.TLSKey, s.log, certState(deps.Registry, deps.Health, cfg.TLSCert, cfg.TLSKey))
		if err != nil {
			return nil, err
		}
		fsperm.WarnShared(s.log, "smtp.tls_key", cfg.TLSKey)
		s.cert = cert
		registerCertExpiry(deps.Registry, cert)
		srv.TLSConfig = &tls.Config{GetCertificate: cert.certificate, MinVersion: tls.VersionTLS12}
		// From the handshake on, a goodbye in clear text would corrupt
		// the stream; newSession learns of TLS only at the next EHLO.
		srv.StartingTLS = func(nc net.Conn) {
			if gate, ok := nc.(*gateConn); ok {
				gate.tls.Store(true)
			}
		}
	}
	s.smtp = srv
	return s, nil
}

// Listen binds the configured address; separate from Serve so the caller
// knows the port is open (and which, for ":0") before it reports ready.
func (s *Server) Listen() (net.Listener, error) {
	// No TCP keep-alive: every read and write of a session has a deadline
	// (command_timeout, data_timeout), which finds a dead peer sooner, and
	// Go's keep-alive costs four setsockopt calls per accepted connection,
	// which at thousands of connections a second is measurable. Postfix's
	// smtpd does not set it either.
	lc := net.ListenConfig{KeepAlive: -1}
	l, err := lc.Listen(context.Background(), "tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("smtp listen %s: %w", s.cfg.Listen, err)
	}
	s.addr = l.Addr()
	return l, nil
}

// Addr is the bound address once Listen has run.
func (s *Server) Addr() net.Addr { return s.addr }

// WatchCertificate reloads smtp.tls_cert and smtp.tls_key when they are
// replaced, until ctx ends; without TLS it returns at once.
func (s *Server) WatchCertificate(ctx context.Context) error {
	if s.cert != nil {
		s.cert.run(ctx)
	}
	return nil
}

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	l = newProxyListener(l, s.trusted, s.cfg.ProxyHeaderTimeout)
	if s.deps.Health != nil {
		s.deps.Health.Set("smtp", health.OK, "")
	}
	err := s.smtp.Serve(&gateListener{Listener: l, srv: s})
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, answers 421 4.3.2 to idle clients
// and new transactions, and waits up to ctx for transactions in flight to
// finish (their sender gets the downstream's real answer), then closes
// everything that is left.
func (s *Server) Shutdown(ctx context.Context) error {
	idle := s.transactions.drain()
	if s.deps.Health != nil {
		s.deps.Health.Set("smtp", health.NotReady, "shutting down")
	}
	done := make(chan error, 1)
	go func() { done <- s.smtp.Shutdown(ctx) }()
	s.closeIdle()
	select {
	case <-idle:
		// Sessions that finished their transaction get 421 at their next
		// MAIL; close what remains rather than wait for their QUIT.
		s.closeIdle()
	case <-ctx.Done():
	}
	// go-smtp's Shutdown returns once every connection has ended, or
	// with ctx's error. Its Close is no help after it: it does nothing
	// once Shutdown has begun, and would call Logout from this goroutine
	// while the session's own goroutine may still be in Data.
	err := <-done
	if err != nil {
		// Grace expired. Cancelling the transactions closes their
		// downstream connections before the customer's 250, so nothing
		// is delivered that the sender was not told about; the sender,
		// its connection closed, retries another MX.
		s.abortTx()
		s.closeAll()
		<-idle
	}
	return err
}

// closeAll closes every connection, idle or not.
func (s *Server) closeAll() {
	s.mu.Lock()
	all := make([]*gateConn, 0, len(s.conns))
	for c := range s.conns {
		all = append(all, c)
	}
	s.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
}

// closeIdle tells every connection that is between transactions that we are
// going away (RFC 5321 §3.8: 421 before closing); go-smtp then closes it.
func (s *Server) closeIdle() {
	s.mu.Lock()
	idle := make([]*gateConn, 0, len(s.conns))
	for c := range s.conns {
		if c.idle.Load() {
			idle = append(idle, c)
		}
	}
	s.mu.Unlock()
	for _, c := range idle {
		// Wake the session's pending read: it says goodbye itself, so the
		// 421 cannot interleave with a reply go-smtp is writing.
		c.goingAway.Store(true)
		c.Conn.SetReadDeadline(time.Now())
	}
}

func (s *Server) acquire(c *gateConn) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.closed.Load() {
		// Closed (by Shutdown) before its greeting: counting it now
		// would leak its slot, as its Close has already run.
		return false, "refused_closed"
	}
	if len(s.conns) >= s.cfg.MaxConnections {
		return false, "refused_total_limit"
	}
	key := ratelimit.ClientKey(c.ip)
	if s.perIP[key] >= s.cfg.MaxConnectionsPerIP {
		return false, "refused_ip_limit"
	}
	s.perIP[key]++
	s.conns[c] = struct{}{}
	s.metrics.active.Inc()
	s.updateStress(len(s.conns))
	return true, ""
}

func (s *Server) release(c *gateConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	key := ratelimit.ClientKey(c.ip)
	if s.perIP[key]--; s.perIP[key] <= 0 {
		delete(s.perIP, key)
	}
	s.metrics.active.Dec()
	s.updateStress(len(s.conns))
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(format string, v ...interface{}) {
	a.log.Warn("smtp server", "detail", fmt.Sprintf(format, v...))
}

func (a slogAdapter) Println(v ...interface{}) {
	a.log.Warn("smtp server", "detail", fmt.Sprint(v...))
}
