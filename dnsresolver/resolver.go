// Package dnsresolver is the node's one DNS client: every check that looks
// something up (SPF, DKIM, DMARC, DNSBL) shares it, so a single setting
// points all of them at the operator's recursive resolver (or a test's
// loopback server), and a single cache and timeout apply.
//
// It wraps the standard library's pure-Go resolver. Errors are always
// *net.DNSError, unwrapped, and either IsNotFound or temporary:
// blitiri.com.ar/go/spf and go-msgauth classify failures with type
// assertions (err.(*net.DNSError), err.(net.Error)), not errors.As, so a
// wrapped error would turn "no such record" into permerror and a timeout
// into a hard failure.
package dnsresolver

import (
	"container/list"
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/sync/singleflight"

	"github.com/mxgrid/mxgrid/internal/periodic"
)

// Resolver is the lookup surface the checks use. Its method set matches
// *net.Resolver, so spf.WithResolver accepts it as is, and a test can pass a
// plain *net.Resolver.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var (
	_ Resolver = (*Cached)(nil)
	_ Resolver = (*net.Resolver)(nil)
)

// Cached is a Resolver with a timeout per lookup, an LRU cache and
// deduplication of identical lookups in flight. Safe for concurrent use.
type Cached struct {
	res     *net.Resolver
	server  string
	timeout time.Duration
	ttl     time.Duration
	negTTL  time.Duration
	now     func() time.Time

	// flight and reach are shared with the Routes view, which has a
	// cache of its own.
	flight *singleflight.Group
	reach  *reach
	// prefix starts the keys of this view's lookups, so that a lookup in
	// flight fills the cache of the view that asked.
	prefix string
	routes *Cached

	mu    sync.Mutex
	size  int
	lru   *list.List // of *entry, most recently used first
	items map[string]*list.Element

	lookups   *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	cache     *prometheus.CounterVec
	fastFails prometheus.Counter
	// hits is cache's "hit" counter, made on the first hit as the other
	// results' are (no series shows before it counts) and kept: looking
	// it up by label for every answer from the cache cost more than the
	// answer.
	hits func() prometheus.Counter
}

type entry struct {
	key     string
	val     any // the answer slice
	err     *net.DNSError
	expires time.Time
}

// Fresh asks the configured server with no cache, for answers that must
// be fresh (a domain's ownership proof just published), where a cached
// "not found" would hide it for negative_ttl. Names are asked as given,
// rooted: "example.com" never as "example.com.<search domain>", which
// resolv.conf's search list (ndots:5 in Kubernetes) tries first, so that
// a wildcard record of the operator's search domain cannot answer for a
// tenant's name.
type Fresh struct{ res freshLookups }

// freshLookups is what Fresh asks of a *net.Resolver.
type freshLookups interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
}

// Uncached returns the Fresh resolver of cfg.
func Uncached(cfg Config) Fresh { return Fresh{res: plainResolver(cfg)} }

// LookupTXT returns the TXT strings of name.
func (f Fresh) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return f.res.LookupTXT(ctx, absolute(name))
}

// LookupMX returns the MX records of name.
func (f Fresh) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return validRecords(f.res.LookupMX(ctx, absolute(name)))
}

// validRecords takes the records the Go resolver returns beside an error
// as the answer: it drops the records of an answer whose names are not
// valid (a space, a byte past ASCII) and returns the others with an error,
// "DNS response contained records which contain invalid names". One
// mistyped MX of a domain failed all of them: SPF's mx mechanism gave
// temperror, an MX ownership proof failed as if DNS had. PTR answers are
// cut the same way.
func validRecords[T any](v []T, err error) ([]T, error) {
	if err != nil && len(v) > 0 {
		return v, nil
	}
	return v, err
}

// plainResolver asks cfg's server, or the system's, with no cache.
func plainResolver(cfg Config) *net.Resolver {
	server := cfg.Server
	// The Go resolver dials the servers of /etc/resolv.conf; replacing
	// the address (keeping udp or tcp, since it retries truncated answers
	// over tcp) points every query at the configured server.
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		if server != "" {
			address = server
		}
		return dial(ctx, network, address)
	}}
}

// New builds the resolver from a validated config. Metrics go to reg.
func New(cfg Config, reg prometheus.Registerer) *Cached {
	res := plainResolver(cfg)
	f := promauto.With(reg)
	c := &Cached{
		res:     res,
		server:  cfg.Server,
		timeout: cfg.Timeout,
		ttl:     cfg.CacheTTL,
		negTTL:  cfg.NegativeTTL,
		now:     time.Now,
		flight:  new(singleflight.Group),
		reach:   new(reach),
		size:    cfg.CacheSize,
		lru:     list.New(),
		items:   make(map[string]*list.Element),
		lookups: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_dns_lookups_total",
			Help: "DNS lookups sent to the server, by type (txt, mx, ip, ptr) and result (ok, not_found, timeout, error).",
		}, []string{"type", "result"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mxgrid_dns_lookup_duration_seconds",
			Help:    "Time of DNS lookups sent to the server, by type (txt, mx, ip, ptr).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"type"}),
		cache: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_dns_cache_requests_total",
			Help: "DNS answers asked of the cache, by result (hit, miss, and stale: an expired answer served because the server gave none).",
		}, []string{"result"}),
		fastFails: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_dns_unreachable_fails_total",
			Help: "Lookups failed at once, without asking, because the DNS server had stopped answering.",
		}),
	}
	c.hits = sync.OnceValue(func() prometheus.Counter { return c.cache.WithLabelValues("hit") })
	c.routes = &Cached{
		res: res, server: c.server, timeout: c.timeout, ttl: c.ttl, negTTL: c.negTTL, now: time.Now,
		flight: c.flight, reach: c.reach, prefix: "route\x00",
		size: c.size, lru: list.New(), items: make(map[string]*list.Element),
		lookups: c.lookups, duration: c.duration, cache: c.cache, fastFails: c.fastFails, hits: c.hits,
	}
	c.routes.routes = c.routes
	c.reach.now = time.Now
	c.reach.serverAnswers = func() bool { return answered(c.rootLookup(context.Background())) }
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxgrid_dns_reachable",
		Help: "1 while the DNS server answers, 0 after consecutive lookups got no answer (lookups then fail fast as temporary errors).",
	}, func() float64 {
		if c.reach.up() {
			return 1
		}
		return 0
	})
	return c
}

// rootLookup asks the server for the root's NS records, which it answers
// whenever it works at all, whatever the names senders make us look up.
func (c *Cached) rootLookup(ctx context.Context) *net.DNSError {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, err := c.res.LookupNS(ctx, ".")
	return asDNSError(err, ".")
}

// Run probes a server known down, as a lookup after the backoff would,
// until ctx ends: only lookups probed it, so a node no mail reached said
// in /readyz that DNS was down for as long as it stayed idle after the
// server was back. One Run serves the Routes view too (they share the
// breaker).
func (c *Cached) Run(ctx context.Context) error {
	periodic.Every(ctx, minBackoff, nil, func(ctx context.Context) {
		if c.reach.up() || !c.reach.allow() {
			return
		}
		c.reach.done(c.rootLookup(ctx))
	})
	return nil
}

// Routes returns the resolver for the relay's route names: the same
// server, timeout, breaker and metrics, and a cache of its own, of
// cache_size answers. The answers it keeps are served for up to maxStale
// while DNS gives none, which is all that keeps mail flowing to a
// customer whose route is a name; in the cache the checks share, the
// names senders choose (their SPF, DMARC, DKIM and DNSBL lookups, a few
// per message) evicted a quiet customer's route within a few dozen
// messages, and once DNS failed its mail got 451.
func (c *Cached) Routes() *Cached { return c.routes }

// OnReachabilityChange calls fn whenever the server stops or starts
// answering (for readiness). Call it before the first lookup.
func (c *Cached) OnReachabilityChange(fn func(up bool)) { c.reach.onChange = fn }

// LookupTXT returns the TXT records of name, one string per record (the
// record's character-strings concatenated, as RFC 7208 section 3.3 and
// RFC 6376 section 3.6.2.2 want).
func (c *Cached) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return lookup(ctx, c, query{kind: "txt", name: name, root: true}, lookupTXT)
}

// LookupMX returns the MX records of name.
func (c *Cached) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return lookup(ctx, c, query{kind: "mx", name: name, root: true}, lookupMX)
}

// LookupIPAddr returns the A and AAAA records of host.
func (c *Cached) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return lookup(ctx, c, query{kind: "ip", qual: "ipaddr", name: host, root: true}, lookupIPAddr)
}

// LookupNetIP returns the addresses of host for network "ip", "ip4" or
// "ip6"; DNSBL queries use "ip4" to send one A query instead of A and AAAA.
func (c *Cached) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return lookup(ctx, c, query{kind: "ip", qual: network, name: host, root: true}, lookupNetIP)
}

// LookupAddr returns the PTR names of addr.
func (c *Cached) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return lookup(ctx, c, query{kind: "ptr", name: addr}, lookupAddr)
}

// query is one lookup: its kind (the metrics' type label), a qualifier
// of its answer's type (LookupNetIP's network), and the name, to be asked
// rooted or, a PTR's address, as given.
type query struct {
	kind, qual, name string
	root             bool
}

// The lookups' calls of the Go resolver are functions, not closures, so
// that a lookup the cache answers makes none.

func lookupTXT(ctx context.Context, res *net.Resolver, q query) ([]string, error) {
	return res.LookupTXT(ctx, absolute(q.name))
}

func lookupMX(ctx context.Context, res *net.Resolver, q query) ([]*net.MX, error) {
	return res.LookupMX(ctx, absolute(q.name))
}

func lookupIPAddr(ctx context.Context, res *net.Resolver, q query) ([]net.IPAddr, error) {
	return res.LookupIPAddr(ctx, rooted(q.name))
}

func lookupNetIP(ctx context.Context, res *net.Resolver, q query) ([]netip.Addr, error) {
	return res.LookupNetIP(ctx, q.qual, rooted(q.name))
}

func lookupAddr(ctx context.Context, res *net.Resolver, q query) ([]string, error) {
	return res.LookupAddr(ctx, q.name)
}

// appendKey appends q's cache key to b: the view's prefix, the kind, the
// qualifier of an address lookup and the (rooted) name, the parts after the prefix
// ended by NULs. A lookup the cache answers finds its entry by these bytes
// and makes no string of them.
func (c *Cached) appendKey(b []byte, q query) []byte {
	b = append(b, c.prefix...)
	b = append(b, q.kind...)
	b = append(b, 0)
	if q.kind == "ip" {
		// Written even if empty (LookupNetIP's network ""), so that no
		// name puts an answer of one type under the other's key.
		b = append(b, q.qual...)
		b = append(b, 0)
	}
	b = append(b, q.name...)
	if q.root && (q.kind == "ip" && needsRoot(q.name) || q.kind != "ip" && needsDot(q.name)) {
		b = append(b, '.')
	}
	return b
}

// rooted adds the trailing dot so the resolver never tries the search
// domains of resolv.conf: "_dmarc.example.org" must not become
// "_dmarc.example.org.corp.local". IP literals are left alone: an address
// lookup answers one without DNS.
func rooted(name string) string {
	if needsRoot(name) {
		return name + "."
	}
	return name
}

// absolute is rooted for the records only names have (TXT, MX): there a
// name shaped like an address is a name, a sender's domain "192.0.2.1"
// for one, and left unrooted it walked the search domains (first, under
// Kubernetes' ndots:5), where an operator's wildcard could answer its
// SPF.
func absolute(name string) string {
	if needsDot(name) {
		return name + "."
	}
	return name
}

// needsDot reports whether name is not yet absolute.
func needsDot(name string) bool { return name != "" && !strings.HasSuffix(name, ".") }

// needsRoot reports whether rooted adds a dot to name.
func needsRoot(name string) bool {
	if !needsDot(name) {
		return false
	}
	if MayBeIP(name) {
		if _, err := netip.ParseAddr(name); err == nil {
			return false
		}
	}
	return true
}

// MayBeIP reports whether s could parse as an IP address (netip.ParseAddr,
// net.ParseIP): an IPv6 one has a colon, an IPv4 one only digits and
// dots. Names, all but every lookup, skip ParseAddr, which allocates the
// error it returns for them.
func MayBeIP(s string) bool {
	if strings.IndexByte(s, ':') >= 0 {
		return true
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

// keyBytes holds the key of any lookup on the stack: a name of 253
// bytes, its dot, and the prefix, kind and qualifier.
const keyBytes = 320

// lookup serves from the cache, or runs fn once for all concurrent callers
// of the same key (see appendKey). The shared lookup runs under the
// resolver's own timeout, detached from the first caller's cancellation so
// one impatient caller does not fail the others; each caller still stops
// waiting at its own deadline.
func lookup[T any](ctx context.Context, c *Cached, q query, fn func(context.Context, *net.Resolver, query) ([]T, error)) ([]T, error) {
	var buf [keyBytes]byte
	kb := c.appendKey(buf[:0], q)
	e, fresh := c.get(kb)
	if fresh {
		c.hits().Inc()
		if e.err != nil {
			errCopy := *e.err
			return nil, &errCopy
		}
		return slices.Clone(e.val.([]T)), nil
	}
	key := string(kb)
	if p, ok := ctx.Value(cacheOnlyKey{}).(*CacheProbe); ok {
		p.missed.Store(true)
		return nil, &net.DNSError{Err: "not in the cache", Name: nameOf(key), IsTemporary: true}
	}
	if c.size > 0 {
		c.cache.WithLabelValues("miss").Inc()
	}
	// stale serves an expired answer (e, if any) in place of a lookup
	// that got none (RFC 8767): a route's name is looked up for every
	// relayed message, and without it all mail to a customer whose route
	// is a name stopped cache_ttl after the DNS server did.
	stale := func(err *net.DNSError) ([]T, error) {
		if e != nil {
			c.cache.WithLabelValues("stale").Inc()
			return slices.Clone(e.val.([]T)), nil
		}
		return nil, err
	}
	if !c.reach.allow() {
		c.fastFails.Inc()
		return stale(unreachableError(nameOf(key)))
	}
	keep := ctx.Value(passingKey{}) == nil
	ch := c.flight.DoChan(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		start := time.Now()
		v, err := validRecords(fn(lctx, c.res, q))
		c.duration.WithLabelValues(q.kind).Observe(time.Since(start).Seconds())
		derr := asDNSError(err, key)
		if derr != nil && c.server != "" {
			// The Go resolver names the resolv.conf server it thought it
			// dialled; say which one really answered.
			derr.Server = c.server
		}
		c.lookups.WithLabelValues(q.kind, resultLabel(derr)).Inc()
		c.reach.done(derr)
		if derr != nil && !derr.IsNotFound {
			// Anything but "no such record" is no answer, to ask again
			// later (RFC 7208 4.4: every RCODE but 0 and 3 is
			// temperror). The Go resolver calls a REFUSED reply (a
			// resolver limiting its clients' rate), one it cannot parse
			// and a lame referral permanent; SPF, DKIM and DMARC read
			// permerror, which DMARC does not excuse: a p=reject domain's
			// own mail was refused for a lookup refused. Marked after
			// reach.done, for which these are answers.
			derr.IsTemporary = true
		}
		switch {
		case !keep:
		case derr == nil:
			if answerBytes(v) <= maxCachedAnswer {
				c.put(key, v, nil, c.ttl)
			}
		case derr.IsNotFound:
			c.put(key, nil, derr, c.negTTL)
		}
		if derr != nil {
			return v, derr
		}
		return v, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			errCopy := *r.Err.(*net.DNSError)
			if errCopy.IsNotFound {
				return nil, &errCopy
			}
			return stale(&errCopy)
		}
		return slices.Clone(r.Val.([]T)), nil
	case <-ctx.Done():
		return stale(&net.DNSError{
			Err:         "lookup abandoned: " + ctx.Err().Error(),
			Name:        nameOf(key),
			IsTimeout:   errors.Is(ctx.Err(), context.DeadlineExceeded),
			IsTemporary: true,
		})
	}
}

// CacheProbe records whether a lookup made under CacheOnly wanted an
// answer the cache did not have.
type CacheProbe struct{ missed atomic.Bool }

// Missed reports whether some lookup found no fresh answer in the cache.
func (p *CacheProbe) Missed() bool { return p.missed.Load() }

type cacheOnlyKey struct{}

// CacheOnly returns a context under which a Cached resolver answers from
// its cache alone: a lookup without a fresh answer there fails at once as
// temporary, asks no server, and is recorded in p. Work that may wait for
// DNS can so be tried where it is, and given a goroutine of its own (and
// run again) only when it would have waited: most of a busy node's
// answers are cached, and a goroutine to start and wake costs more than
// the lookups.
func CacheOnly(ctx context.Context, p *CacheProbe) context.Context {
	return context.WithValue(ctx, cacheOnlyKey{}, p)
}

type passingKey struct{}

// Passing returns a context under which a Cached resolver keeps no answer
// it looks up (it still answers from its cache), for a name asked once in
// passing. A route being set is checked through the route names' cache,
// as the relay will reach it; kept there, the names a reseller sets (20
// changes a second) evicted the other customers' routes, whose last
// answers keep their mail flowing while DNS gives none.
func Passing(ctx context.Context) context.Context {
	return context.WithValue(ctx, passingKey{}, true)
}

// maxStale is how long past its expiry an answer may still be served
// when the server gives none (RFC 8767 suggests one to three days).
const maxStale = 24 * time.Hour

// maxCachedAnswer bounds the bytes of one cached answer, since cache_size
// counts answers: an attacker's wildcard with thousands of records per name
// and random names under it would otherwise fill the cache with hundreds of
// megabytes. 4 KiB holds any legitimate SPF, DKIM (4096-bit keys are under
// 1 KiB), DMARC, MX or DNSBL answer; bigger ones are looked up again.
const maxCachedAnswer = 4 << 10

// answerBytes estimates the memory an answer holds.
func answerBytes[T any](v []T) int {
	n := 0
	switch a := any(v).(type) {
	case []string:
		for _, s := range a {
			n += len(s)
		}
	case []*net.MX:
		for _, mx := range a {
			n += len(mx.Host) + 2
		}
	case []net.IPAddr:
		for _, ip := range a {
			n += len(ip.IP) + len(ip.Zone)
		}
	case []netip.Addr:
		n = 16 * len(a)
	}
	return n
}

// asDNSError makes every failure a *net.DNSError (see the package comment).
func asDNSError(err error, key string) *net.DNSError {
	if err == nil {
		return nil
	}
	var derr *net.DNSError
	if errors.As(err, &derr) {
		return derr
	}
	return &net.DNSError{
		Err:         err.Error(),
		Name:        nameOf(key),
		IsTimeout:   errors.Is(err, context.DeadlineExceeded),
		IsTemporary: true,
	}
}

func nameOf(key string) string {
	return key[strings.LastIndexByte(key, 0)+1:]
}

func resultLabel(err *net.DNSError) string {
	switch {
	case err == nil:
		return "ok"
	case err.IsNotFound:
		return "not_found"
	case err.IsTimeout:
		return "timeout"
	}
	return "error"
}

// get returns key's entry and whether it is fresh. An expired answer
// (never a "no such record") is kept and returned, not fresh, for up to
// maxStale past its expiry: lookup serves it if the server gives none.
func (c *Cached) get(key []byte) (*entry, bool) {
	if c.size == 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[string(key)]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	now := c.now()
	if now.Before(e.expires) {
		c.lru.MoveToFront(el)
		return e, true
	}
	if e.err == nil && now.Before(e.expires.Add(maxStale)) {
		return e, false
	}
	c.lru.Remove(el)
	delete(c.items, e.key)
	return nil, false
}

func (c *Cached) put(key string, val any, err *net.DNSError, ttl time.Duration) {
	if c.size == 0 || ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &entry{key: key, val: val, err: err, expires: c.now().Add(ttl)}
	if el, ok := c.items[key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.items[key] = c.lru.PushFront(e)
	for c.lru.Len() > c.size {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.items, oldest.Value.(*entry).key)
	}
}
