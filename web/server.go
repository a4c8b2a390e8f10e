// Package web serves the node's HTTP side: health for load balancers and
// the handlers other packages contribute (the map, the admin API, the
// panel) on the public listener; Prometheus metrics and the cluster page on
// the management listener.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Limits bound what one client can hold of a listener: a slow or silent
// client is cut off by the timeouts, a large one by the byte caps, one
// holding many connections by the per-client cap, and a crowd by the
// connection cap (further connections wait in the kernel's accept queue
// rather than costing a goroutine and buffers each).
type Limits struct {
	ReadHeaderTimeout time.Duration
	// ReadTimeout covers the whole request, body included: a client that
	// sends one byte every few seconds is cut off when it expires.
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
	MaxHeaderBytes int
	// MaxBodyBytes caps every request body; handlers may cap lower.
	MaxBodyBytes int64
	// MaxConns is the number of connections served at once per listener;
	// at it, the one idle longest gives its place to a new one.
	MaxConns int
	// MaxConnsPerClient is the number of those one client address (an
	// IPv6 /64) may hold; more are closed at once, as nginx's limit_conn
	// and Postfix's smtpd_client_connection_count_limit do. Without it one
	// client holding MaxConns idle keep-alive connections shut everyone
	// else out for IdleTimeout, and again as soon as it reconnected; a
	// request read whole keeps its place until answered, so MaxConns over
	// it is how many addresses it takes to hold every place with slow
	// bodies or slow reads.
	MaxConnsPerClient int
	// Exempt are the trusted proxies (http.trusted_proxies): all their
	// clients come over their connections.
	Exempt []netip.Prefix
	// ShutdownGrace is how long requests in flight may finish once the
	// server stops. A release from the quarantine delivers the message
	// within its request: cut by the process's exit, it was left neither
	// released nor held, and could never be released again.
	ShutdownGrace time.Duration
}

// DefaultLimits fit the largest legitimate request (a recipient CSV import
// or a backup upload over a slow link) with room to spare.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ShutdownGrace:     5 * time.Second,
		MaxBodyBytes:      40 << 20,
		MaxConns:          1024,
		// A browser opens at most 6 connections to a host: this is a few
		// behind one NAT, and 32 addresses to fill MaxConns.
		MaxConnsPerClient: 32,
	}
}

// Server is the node's two HTTP listeners: the public one (map, panel, API,
// health) and the management one (metrics, cluster status), which binds to
// loopback by default because what it shows helps an attacker map the
// cluster.
type Server struct {
	mux     *http.ServeMux
	mgmt    *http.ServeMux
	health  *health.Registry
	log     *slog.Logger
	limits  Limits
	metrics *connMetrics
}

// connMetrics count what the connection caps do, by listener.
type connMetrics struct {
	conns     *prometheus.CounterVec
	reclaimed *prometheus.CounterVec
	active    *prometheus.GaugeVec
}

func newConnMetrics(reg prometheus.Registerer) *connMetrics {
	f := promauto.With(reg)
	return &connMetrics{
		conns: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_http_connections_total",
			Help: "HTTP connections by listener (public, management) and result: accepted, refused_ip_limit (closed at once: its client address, an IPv6 /64, held http.max_connections_per_ip), refused_full (closed at once at http.max_connections with no place to take: its client held one already).",
		}, []string{"listener", "result"}),
		reclaimed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_http_connections_reclaimed_total",
			Help: "HTTP connections closed at http.max_connections to give their place to a new one, by listener and state: idle (between requests), first_request (still reading its first request's header, of the client holding the most places).",
		}, []string{"listener", "state"}),
		active: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mxgrid_http_connections_active",
			Help: "HTTP connections holding a place under http.max_connections now, by listener.",
		}, []string{"listener"}),
	}
}

// listenerMetrics are one listener's series of connMetrics.
type listenerMetrics struct {
	accepted, refusedIP, refusedFull, reclaimedIdle, reclaimedNew prometheus.Counter
	active                                                        prometheus.Gauge
}

func (m *connMetrics) of(listener string) *listenerMetrics {
	return &listenerMetrics{
		accepted:      m.conns.WithLabelValues(listener, "accepted"),
		refusedIP:     m.conns.WithLabelValues(listener, "refused_ip_limit"),
		refusedFull:   m.conns.WithLabelValues(listener, "refused_full"),
		reclaimedIdle: m.reclaimed.WithLabelValues(listener, "idle"),
		reclaimedNew:  m.reclaimed.WithLabelValues(listener, "first_request"),
		active:        m.active.WithLabelValues(listener),
	}
}

// New builds the server with /healthz and /readyz on both listeners and
// /metrics (reg's, the server's own among them) on the management one.
// The public /readyz, which load balancers and anyone else can ask, names
// what is degraded but not why: the reasons carry internal addresses,
// database users and error text.
func New(h *health.Registry, reg *prometheus.Registry, log *slog.Logger, limits Limits) *Server {
	s := &Server{mux: http.NewServeMux(), mgmt: http.NewServeMux(), health: h, log: log, limits: limits,
		metrics: newConnMetrics(reg)}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.Handle("GET /readyz", s.readyz(false))
	s.mgmt.HandleFunc("GET /healthz", s.healthz)
	s.mgmt.Handle("GET /readyz", s.readyz(true))
	s.mgmt.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	return s
}

// Handle mounts h at pattern (http.ServeMux syntax, e.g. "GET /map") on the
// public listener.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// HandleManagement mounts h on the management listener only.
func (s *Server) HandleManagement(pattern string, h http.Handler) { s.mgmt.Handle(pattern, h) }

// MountPprof serves Go's profiler under /debug/pprof/ on the management
// listener only (http.pprof).
func (s *Server) MountPprof() {
	s.mgmt.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mgmt.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mgmt.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mgmt.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mgmt.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// Handler returns the public root handler (what Serve serves).
func (s *Server) Handler() http.Handler { return canonicalOnly(apiUnrouted(s.mux)) }

// ManagementHandler returns the management root handler.
func (s *Server) ManagementHandler() http.Handler { return canonicalOnly(s.mgmt) }

// canonicalOnly answers 404 to a request on a path that is not in
// canonical form (a ".", ".." or empty segment) which would change
// something (any method but GET and HEAD) or which names an admin API
// object. The mux redirects such a request to the cleaned path with 307,
// which clients follow with the same method: a recipient named "..",
// deleted as the CLI sends it, DELETE /api/v1/domains/5/recipients/..,
// came back as DELETE /api/v1/domains/5 and deleted the domain, and a GET
// of it answered the domain. A page or map GET is still redirected: it
// changes nothing, and a browser resolves dot segments itself anyway.
func canonicalOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		readOnly := r.Method == http.MethodGet || r.Method == http.MethodHead
		if (!readOnly || strings.HasPrefix(p, "/api/")) && p != cleanPath(p) {
			if strings.HasPrefix(p, "/api/") {
				writeJSON(w, http.StatusNotFound, apiError{Error: "not found"})
			} else {
				http.NotFound(w, r)
			}
			return
		}
		h.ServeHTTP(w, r)
	})
}

// apiUnrouted answers in JSON, as every API route does, a request under
// /api/ that no route takes: the mux's own 404 and 405 are text/plain,
// which an API client reads as a broken answer rather than an error.
func apiUnrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			mux.ServeHTTP(w, r)
			return
		}
		// Handler only looks the route up (ServeHTTP also sets the path
		// values a route reads); for no route, what it returns only sets
		// a status and Allow, or redirects, which is passed on as it is.
		h, pattern := mux.Handler(r)
		var rec statusRecorder
		if pattern == "" {
			h.ServeHTTP(&rec, r)
		}
		if rec.code != http.StatusNotFound && rec.code != http.StatusMethodNotAllowed {
			mux.ServeHTTP(w, r)
			return
		}
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		writeJSON(w, rec.code, apiError{Error: strings.ToLower(http.StatusText(rec.code))})
	})
}

// statusRecorder keeps what a handler answered but its body.
type statusRecorder struct {
	header http.Header
	code   int
}

func (r *statusRecorder) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return len(b), nil
}

// cleanPath is the path the mux would redirect p to, as net/http cleans
// it: rooted, dot segments resolved, a trailing slash kept.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// Listen binds the public listener's addr with the connection caps
// applied.
func (s *Server) Listen(addr string) (net.Listener, error) { return s.listen("public", addr) }

// ListenManagement binds the management listener's addr alike.
func (s *Server) ListenManagement(addr string) (net.Listener, error) {
	return s.listen("management", addr)
}

func (s *Server) listen(name, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	m := s.metrics.of(name)
	if s.limits.MaxConnsPerClient > 0 {
		l = &clientCapListener{Listener: l, max: s.limits.MaxConnsPerClient, exempt: s.limits.Exempt, n: map[netip.Prefix]int{}, refused: m.refusedIP}
	}
	if s.limits.MaxConns > 0 {
		// Outside the per-client cap, so a refused connection takes no
		// place.
		l = newCapListener(l, s.limits.MaxConns, m)
	}
	return l, nil
}

// capListener serves at most max connections at once. At the cap, a new
// connection takes the place of the one idle longest between requests
// (http.StateIdle, which a client must expect to lose at any time, RFC
// 9112 §9.3.1); with none idle, of the oldest still reading its first
// request's header (http.StateNew: nothing of it has been served) of the
// client holding the most places, if that client holds more than one
// beyond the newcomer's own; with neither it waits for a place, and the
// ones behind it in the kernel's accept queue, unless its client holds a
// place already: then it is closed at once. Without reclaiming, a few
// addresses' worth of keep-alive connections, one request each and then
// nothing, shut every other client out for IdleTimeout, renewed by
// reconnecting; so did first requests trickled within ReadHeaderTimeout.
// net/http reports a keep-alive connection idle until the next request's
// header has been read whole, so one trickling that header in is taken
// too. A request read whole keeps its place until answered, bounded by
// the timeouts; the per-client cap keeps a few addresses from holding
// every place that way.
type capListener struct {
	net.Listener
	places chan struct{}
	// becameIdle wakes an Accept waiting for a place when a connection
	// goes idle, which it may then take.
	becameIdle chan struct{}
	closed     chan struct{}
	closeOnce  sync.Once
	metrics    *listenerMetrics
	mu         sync.Mutex
	conns      map[*capConn]struct{}
}

func newCapListener(l net.Listener, max int, m *listenerMetrics) *capListener {
	return &capListener{Listener: l, places: make(chan struct{}, max), becameIdle: make(chan struct{}, 1),
		closed: make(chan struct{}), metrics: m, conns: map[*capConn]struct{}{}}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var client netip.Prefix // none for a trusted proxy, which carries many
		if cc, ok := c.(*clientCapConn); ok {
			client = cc.key
		}
		if cc, err := l.place(c, client); cc != nil || err != nil {
			return cc, err
		}
	}
}

// place admits c once it has a place, or closes it and returns nil when
// there is none to take and its client holds one already: waiting, it held
// up every connection behind it in the accept queue, among them clients
// holding nothing, which would have taken a place at once.
func (l *capListener) place(c net.Conn, client netip.Prefix) (net.Conn, error) {
	for {
		select {
		case l.places <- struct{}{}:
			return l.admit(c, client), nil
		default:
		}
		reclaimed, holds := l.reclaim(client)
		if reclaimed {
			continue
		}
		if holds > 0 {
			l.metrics.refusedFull.Inc()
			c.Close()
			return nil, nil
		}
		select {
		case l.places <- struct{}{}:
			return l.admit(c, client), nil
		case <-l.becameIdle:
		case <-l.closed:
			c.Close()
			return nil, net.ErrClosed
		}
	}
}

func (l *capListener) admit(c net.Conn, client netip.Prefix) *capConn {
	cc := &capConn{Conn: c, l: l, client: client, state: http.StateNew, since: time.Now()}
	l.mu.Lock()
	l.conns[cc] = struct{}{}
	l.mu.Unlock()
	l.metrics.accepted.Inc()
	l.metrics.active.Inc()
	return cc
}

// reclaim closes the connection a newcomer from client takes the place
// of, if any; holds is how many places client holds (none counted for a
// trusted proxy).
func (l *capListener) reclaim(client netip.Prefix) (reclaimed bool, holds int) {
	l.mu.Lock()
	var idle *capConn
	held := map[netip.Prefix]int{}
	for c := range l.conns {
		if c.state == http.StateIdle && (idle == nil || c.since.Before(idle.since)) {
			idle = c
		}
		if c.client.IsValid() {
			held[c.client]++
		}
	}
	victim := idle
	if victim == nil {
		most := held[client] + 1
		for c := range l.conns {
			n := held[c.client]
			if c.state == http.StateNew && c.client.IsValid() && (n > most || n == most && victim != nil && c.since.Before(victim.since)) {
				victim, most = c, n
			}
		}
	}
	l.mu.Unlock()
	if victim == nil {
		return false, held[client]
	}
	if victim == idle {
		l.metrics.reclaimedIdle.Inc()
	} else {
		l.metrics.reclaimedNew.Inc()
	}
	victim.Close()
	return true, held[client]
}

func (l *capListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// setState records c's state (http.Server.ConnState).
func (l *capListener) setState(c *capConn, state http.ConnState) {
	l.mu.Lock()
	if _, open := l.conns[c]; open {
		c.state, c.since = state, time.Now()
	}
	l.mu.Unlock()
	if state == http.StateIdle {
		select {
		case l.becameIdle <- struct{}{}:
		default:
		}
	}
}

type capConn struct {
	net.Conn
	l      *capListener
	client netip.Prefix
	once   sync.Once
	// Under l.mu.
	state http.ConnState
	since time.Time
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		<-c.l.places
		c.l.metrics.active.Dec()
	})
	return err
}

// trackState is the http.Server.ConnState that tells a capListener what
// its connections are doing.
func trackState(c net.Conn, state http.ConnState) {
	if cc, ok := c.(*capConn); ok {
		cc.l.setState(cc, state)
	}
}

// clientCapListener closes a client's connections past max.
type clientCapListener struct {
	net.Listener
	max     int
	exempt  []netip.Prefix
	refused prometheus.Counter
	mu      sync.Mutex
	n       map[netip.Prefix]int
}

func (l *clientCapListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		// Without its zone: a trusted proxy on a link-local address is
		// named with its interface, which no prefix contains.
		if err != nil || l.isExempt(ap.Addr().Unmap().WithZone("")) {
			return c, nil
		}
		key := ratelimit.ClientKey(ap.Addr())
		l.mu.Lock()
		full := l.n[key] >= l.max
		if !full {
			l.n[key]++
		}
		l.mu.Unlock()
		if full {
			l.refused.Inc()
			c.Close()
			continue
		}
		return &clientCapConn{Conn: c, key: key, release: func() { l.release(key) }}, nil
	}
}

func (l *clientCapListener) isExempt(a netip.Addr) bool {
	for _, p := range l.exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (l *clientCapListener) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key]--; l.n[key] <= 0 {
		delete(l.n, key)
	}
}

type clientCapConn struct {
	net.Conn
	key     netip.Prefix
	once    sync.Once
	release func()
}

func (c *clientCapConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Serve serves the public listener l and the management listener mgmt
// (nil: none) until ctx is cancelled, then shuts both down within the
// limits' ShutdownGrace.
func (s *Server) Serve(ctx context.Context, l, mgmt net.Listener) error {
	servers := []*http.Server{s.server(s.Handler())}
	listeners := []net.Listener{l}
	if mgmt != nil {
		servers = append(servers, s.server(s.ManagementHandler()))
		listeners = append(listeners, mgmt)
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	select {
	case err := <-errc:
		for _, srv := range servers {
			srv.Close()
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.limits.ShutdownGrace)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	for range servers {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Server) server(h http.Handler) *http.Server {
	lim := s.limits
	framed := h
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http drops a Content-Length sent along with Transfer-Encoding
		// before any handler sees it and reads the body chunked; a proxy in
		// front that framed it by the Content-Length takes what follows the
		// chunks for another request. So a chunked request ends its
		// connection (RFC 9112 §6.1); browsers never send one.
		if len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
		}
		framed.ServeHTTP(w, r)
	})
	if lim.MaxBodyBytes > 0 {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, lim.MaxBodyBytes)
			inner.ServeHTTP(w, r)
		})
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ConnState:         trackState,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// healthz is liveness only: the process answers. Restarting a node because
// clamd or the database is down would only make things worse.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

type readiness struct {
	Status     string             `json:"status"`
	Conditions []health.Condition `json:"conditions"`
}

// readyz says whether this node should get mail now: 503 when it should not
// (draining, SMTP down, no tenant snapshot), 200 otherwise, with degraded
// conditions listed so an operator sees what protection is missing; their
// reasons only with reasons set.
func (s *Server) readyz(reasons bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		level, conds := s.health.Report()
		if conds == nil {
			conds = []health.Condition{}
		}
		if !reasons {
			for i := range conds {
				conds[i].Reason = ""
			}
		}
		code := http.StatusOK
		if level == health.NotReady {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(readiness{Status: level.String(), Conditions: conds})
	})
}
