package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// CacheConfig is the `relay.cache:` section: downstream sessions kept open
// between transactions, as Postfix's smtp client does with
// smtp_connection_cache_*. A new connection costs a TCP handshake, the
// greeting, EHLO (twice with STARTTLS) and the TLS handshake; a reused one
// costs nothing after a transaction that ended with its final reply, and
// an RSET sent with its next MAIL after one left open.
type CacheConfig struct {
	Enabled bool `yaml:"enabled"`
	// MaxIdlePerRoute bounds the idle sessions kept for one route, so a
	// burst does not leave the customer's server holding hundreds of
	// connections we will not use.
	MaxIdlePerRoute int `yaml:"max_idle_per_route"`
	// MaxIdle bounds the idle sessions kept for all routes together:
	// routes are a tenant's to make (a domain each, a rule each, names
	// or ports of its own server), and each of its routes could keep
	// MaxIdlePerRoute sessions, ~35 KB and a file descriptor each.
	MaxIdle int `yaml:"max_idle"`
	// IdleTimeout is how long an idle session is kept (Postfix:
	// smtp_connection_cache_time_limit). Customer servers drop idle
	// clients after a few minutes at most (RFC 5321 §4.5.3.2.7).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxReuse is how many transactions one session carries before it is
	// closed (Postfix: smtp_connection_reuse_count_limit), so that a
	// session's server-side state (per-connection limits, a stale TLS
	// session) does not live for ever.
	MaxReuse int `yaml:"max_reuse"`
}

// DefaultCacheConfig returns the defaults: on, 50 idle sessions per route
// and 1,000 in all, 5 s idle, 100 transactions per session.
func DefaultCacheConfig() CacheConfig {
	return CacheConfig{Enabled: true, MaxIdlePerRoute: 50, MaxIdle: 1000, IdleTimeout: 5 * time.Second, MaxReuse: 100}
}

// maxIdleTimeout: RFC 5321 servers may close a client silent for 5
// minutes, so a session idle longer would fail at reuse anyway.
const maxIdleTimeout = 5 * time.Minute

// Validate checks the section; messages name the key.
func (c CacheConfig) Validate() error {
	switch {
	case c.MaxIdlePerRoute < 1:
		return errors.New("max_idle_per_route: must be at least 1")
	case c.MaxIdle < 1:
		return errors.New("max_idle: must be at least 1")
	case c.IdleTimeout < 2*periodic.MinInterval || c.IdleTimeout > maxIdleTimeout:
		// The sweep runs every half of it.
		return fmt.Errorf("idle_timeout: between %s and 5m", 2*periodic.MinInterval)
	case c.MaxReuse < 1:
		return errors.New("max_reuse: must be at least 1")
	}
	return nil
}

// quitTimeout bounds the courtesy QUIT of a session we close.
const quitTimeout = 2 * time.Second

// cacheKey is what makes two sessions interchangeable: the same server
// reached the same way (TLS mode, guard rules for trusted routes) with the
// same EHLO name.
type cacheKey struct {
	route Route
	helo  string
}

// session is one downstream SMTP connection after EHLO (and STARTTLS). A
// Transaction borrows it; the cache keeps it between transactions.
type session struct {
	key    cacheKey
	client *smtp.Client
	conn   net.Conn
	// raw is the TCP connection under conn, whose socket unread asks
	// through peek.
	raw  net.Conn
	peek socketPeek
	// tls: STARTTLS succeeded; a reused session keeps it.
	tls bool
	// uses counts the transactions begun on the session.
	uses int
	// inTransaction: MAIL was sent and no final DATA reply has ended the
	// transaction since, so its next MAIL goes after RSET.
	inTransaction bool
	idleSince     time.Time
	// closeConn closes conn when a transaction's context ends: made once
	// for the connection, not for every transaction on it.
	closeConn func()
}

// unread reports whether the server sent anything since the last reply
// read: a reply nobody asked for (a second reply to a command, one sent
// while idle, one before the end of the data), or its close. That is never
// sound: the next command would read it as its own, and every reply after
// it one command late. Under TLS a record in the socket may carry no reply
// (a session ticket a server sends late, a key update), so it is read, for
// at most recordWait, to tell: taken for a reply, the relay would have
// refused every message to such a server before its end of data.
//
// Under TLS the socket and the client's buffer do not tell all: the TLS
// layer reads from the socket whatever has arrived, and gives one record
// at a time, so a reply the server wrote in a record of its own, sent
// with the previous reply's, waits there, in neither. It is asked too,
// without reading the socket (a wait of 0).
func (s *session) unread() bool {
	if s.client.Buffered() > 0 {
		return true
	}
	if s.peek.pending(s.raw) {
		return !s.tls || s.client.ReplyWaiting(recordWait)
	}
	return s.tls && s.client.ReplyWaiting(0)
}

// recordWait bounds the read that tells a TLS record in the socket from a
// reply: the record is there whole or nearly.
const recordWait = 20 * time.Millisecond

// quit ends a sound session politely: QUIT is a courtesy, its failure
// changes nothing for any sender. (go-smtp's client sets each command's
// deadline from CommandTimeout, so that is what bounds it.)
func (s *session) quit() {
	s.client.CommandTimeout = quitTimeout
	_ = s.client.Quit()
	s.client.Close()
}

// cacheMetrics are registered whether or not the cache is on, so a
// dashboard shows zeros rather than gaps.
type cacheMetrics struct {
	hits, misses, stale prometheus.Counter
	idle                prometheus.Gauge
}

func newCacheMetrics(f promauto.Factory) cacheMetrics {
	return cacheMetrics{
		hits: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_relay_cache_hits_total",
			Help: "Downstream transactions begun on a cached session.",
		}),
		misses: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_relay_cache_misses_total",
			Help: "Downstream transactions that found no idle session for their route and connected (with the cache off: every one).",
		}),
		stale: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_relay_cache_stale_total",
			Help: "Cached sessions that failed before MAIL was accepted (closed by the server, RSET or MAIL refused), or held input nobody asked for when taken (a stray reply, the server's close); the transaction was retried once on a new connection.",
		}),
		idle: f.NewGauge(prometheus.GaugeOpts{
			Name: "mxgrid_relay_cache_idle_sessions",
			Help: "Downstream sessions idle in the connection cache.",
		}),
	}
}

// cache holds idle sessions per key, most recently used last: reusing the
// freshest leaves the oldest to time out, so an idle route shrinks to
// nothing.
type cache struct {
	cfg     CacheConfig
	metrics cacheMetrics

	mu   sync.Mutex
	idle map[cacheKey][]*session
	// n is how many sessions idle holds, all routes together.
	n      int
	closed bool
}

func newCache(cfg CacheConfig, m cacheMetrics) *cache {
	return &cache{cfg: cfg, metrics: m, idle: make(map[cacheKey][]*session)}
}

// get takes the freshest idle session for key, or nil. Sessions found
// past their idle time are closed, and so, without QUIT, are those holding
// input nobody asked for: handed to another sender's transaction, a stray
// reply was read as its MAIL's, and each later reply as the command's
// after (a refused recipient answered 250, the refusal then given to the
// next recipient).
func (c *cache) get(key cacheKey) *session {
	var expired []*session
	defer func() {
		if len(expired) > 0 {
			// Not on the caller's time: it has a sender waiting.
			go closeAll(expired)
		}
	}()
	for {
		s := c.pop(key)
		switch {
		case s == nil:
			return nil
		case time.Since(s.idleSince) > c.cfg.IdleTimeout:
			expired = append(expired, s)
		case s.unread():
			// Asked outside the lock: under TLS it may read the
			// socket for a while, and every route's transactions wait
			// on the lock.
			c.metrics.stale.Inc()
			s.client.Close()
		default:
			return s
		}
	}
}

// pop takes the freshest idle session for key, or nil. The list is kept
// even when emptied: the session comes back to it when its transaction
// ends, and a deleted list was a new array for every message on a route
// with one idle session. expire drops the lists still empty at its next
// run.
func (c *cache) pop(key cacheKey) *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.idle[key]
	if len(list) == 0 {
		c.store(key, list)
		return nil
	}
	s := list[len(list)-1]
	list[len(list)-1] = nil
	c.idle[key] = list[:len(list)-1]
	c.n--
	c.metrics.idle.Dec()
	return s
}

func (c *cache) store(key cacheKey, list []*session) {
	if len(list) == 0 {
		delete(c.idle, key)
		return
	}
	c.idle[key] = list
}

// room reports whether a session could be kept: the cache is open, the
// session has transactions left, and its route and the cache have room.
func (c *cache) room(s *session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.uses < c.cfg.MaxReuse && c.hasRoom(s.key)
}

func (c *cache) hasRoom(key cacheKey) bool {
	return !c.closed && len(c.idle[key]) < c.cfg.MaxIdlePerRoute && c.n < c.cfg.MaxIdle
}

// put keeps s idle; false when it has no room (any more). A full cache
// keeps none: the sessions it holds expire within idle_timeout, and a
// transaction that finds none connects, as without the cache.
func (c *cache) put(s *session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hasRoom(s.key) {
		return false
	}
	s.idleSince = time.Now()
	c.idle[s.key] = append(c.idle[s.key], s)
	c.n++
	c.metrics.idle.Inc()
	return true
}

// expire closes the sessions idle for longer than the idle timeout.
func (c *cache) expire(now time.Time) {
	var expired []*session
	c.mu.Lock()
	for key, list := range c.idle {
		// Oldest first: the expired ones are a prefix.
		n := 0
		for n < len(list) && now.Sub(list[n].idleSince) > c.cfg.IdleTimeout {
			n++
		}
		expired = append(expired, list[:n]...)
		c.store(key, append(list[:0:0], list[n:]...))
	}
	c.n -= len(expired)
	c.metrics.idle.Sub(float64(len(expired)))
	c.mu.Unlock()
	closeAll(expired)
}

// close closes every idle session; sessions handed back later are closed
// instead of kept.
func (c *cache) close() {
	var all []*session
	c.mu.Lock()
	c.closed = true
	for _, list := range c.idle {
		all = append(all, list...)
	}
	c.idle = make(map[cacheKey][]*session)
	c.n = 0
	c.metrics.idle.Sub(float64(len(all)))
	c.mu.Unlock()
	closeAll(all)
}

// run expires idle sessions until ctx ends, then closes the cache.
func (c *cache) run(ctx context.Context) {
	defer c.close()
	periodic.Every(ctx, c.cfg.IdleTimeout/2, nil, func(context.Context) { c.expire(time.Now()) })
}

// closeAll quits sessions concurrently: one unresponsive server must not
// hold up the others' QUIT by its quitTimeout.
func closeAll(sessions []*session) {
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(s.quit)
	}
	wg.Wait()
}
