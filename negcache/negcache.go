// Package negcache remembers, for a few minutes, the recipients a customer's
// server refused as nonexistent, so that a dictionary attack repeating them
// (from this session, another connection or, with memcached, another node)
// is answered without contacting the customer's server again.
//
// The cache is an optimisation and a shield, never a dependency: memcached
// down or hung costs at most one timeout per back-off period, and the local
// cache and the customer's server still answer.
package negcache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/mxgrid/mxgrid/health"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// maxLocal bounds the in-process cache: a dictionary attack must not grow
// it without limit. Beyond it the oldest-expiring half is not worth the
// bookkeeping; expired entries are swept, then arbitrary ones dropped
// until a tenth of it is free. Dropping just the one to make room let a
// dictionary attack keep the cache full of live refusals, and each of its
// refusals then swept the whole table under the lock every RCPT takes (a
// quarter of the node's CPU in a flood from fresh IPv6 /64s).
const maxLocal = 100_000

// backoff is how long memcached is skipped after a failure, so a hung
// server costs one timeout per period instead of one per recipient.
const backoff = 5 * time.Second

// healthComponent names the cache in /readyz.
const healthComponent = "negative_cache"

// Config is the part of the `smtp:` section the cache uses.
type Config struct {
	TTL       time.Duration
	Memcached []string
	Timeout   time.Duration
}

// Reply is the customer server's refusal, given again to repeats.
type Reply struct {
	Code     int
	Enhanced [3]int
	Message  string
}

// Cacheable reports permanent refusals that mean "this mailbox does not
// exist" (see NoSuchMailbox). Anything else (policy, a refusal of the
// sender, greylisting) may depend on the transaction and is not remembered.
func (r Reply) Cacheable() bool {
	return r.Code >= 500 && r.Code < 600 && r.Enhanced[0] == 5 && NoSuchMailbox(r.Enhanced)
}

// NoSuchMailbox reports the enhanced codes, of either class, that say the
// mailbox does not exist (RFC 3463 X.1.1 bad mailbox, X.1.2 bad system,
// X.1.3 bad syntax, X.1.6 moved, X.1.10 null MX): the answer a directory
// harvester wants, whether the customer's server gives it as 550 or, as
// Postfix's reject_unverified_recipient does by default, as 450.
func NoSuchMailbox(enhanced [3]int) bool {
	if enhanced[1] != 1 {
		return false
	}
	switch enhanced[2] {
	case 1, 2, 3, 6, 10:
		return true
	}
	return false
}

func (r Reply) encode() []byte {
	return fmt.Appendf(nil, "%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Message)
}

func decode(b []byte) (Reply, error) {
	code, rest, ok1 := strings.Cut(string(b), " ")
	enh, msg, ok2 := strings.Cut(rest, " ")
	parts := strings.Split(enh, ".")
	if !ok1 || !ok2 || len(parts) != 3 {
		return Reply{}, errors.New("negcache: malformed entry")
	}
	var r Reply
	var err error
	if r.Code, err = strconv.Atoi(code); err != nil {
		return Reply{}, fmt.Errorf("negcache: code: %w", err)
	}
	for i, p := range parts {
		if r.Enhanced[i], err = strconv.Atoi(p); err != nil {
			return Reply{}, fmt.Errorf("negcache: enhanced code: %w", err)
		}
	}
	r.Message = msg
	if !r.Cacheable() {
		return Reply{}, errors.New("negcache: entry is not a cacheable refusal")
	}
	return r, nil
}

type entry struct {
	reply   Reply
	expires time.Time
}

// Cache is safe for concurrent use.
type Cache struct {
	cfg    Config
	log    *slog.Logger
	health *health.Registry
	mc     *memcache.Client
	now    func() time.Time

	mu    sync.Mutex
	local map[string]entry
	// downUntil is when memcached may be tried again (unix nanos).
	downUntil atomic.Int64

	lookups *prometheus.CounterVec
}

// New returns a cache; with cfg.Memcached empty it is local to the node.
// health may be nil.
func New(cfg Config, h *health.Registry, log *slog.Logger, reg prometheus.Registerer) *Cache {
	c := &Cache{
		cfg:    cfg,
		log:    log,
		health: h,
		now:    time.Now,
		local:  make(map[string]entry),
		lookups: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_smtp_negative_cache_lookups_total",
			Help: "Negative recipient cache lookups by layer (local, memcached) and result (hit, miss, error, skipped).",
		}, []string{"layer", "result"}),
	}
	if len(cfg.Memcached) > 0 {
		c.mc = memcache.New(cfg.Memcached...)
		c.mc.Timeout = cfg.Timeout
		c.mc.MaxIdleConns = 16
		c.setHealth(nil)
	}
	return c
}

// Key is the cache key of a recipient at a route: the same mailbox behind
// two customer servers is two facts.
func Key(route, rcpt string) string {
	return route + "\x00" + rcpt
}

// memcachedKey hashes the key: recipients hold characters memcached keys
// may not, and the shared cache need not show who was probed.
func memcachedKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "mxgrid:neg:" + hex.EncodeToString(sum[:20])
}

// Get returns the remembered refusal of key, if any.
func (c *Cache) Get(key string) (Reply, bool) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.local[key]
	if ok && !now.Before(e.expires) {
		delete(c.local, key)
		ok = false
	}
	c.mu.Unlock()
	if ok {
		c.lookups.WithLabelValues("local", "hit").Inc()
		return e.reply, true
	}
	c.lookups.WithLabelValues("local", "miss").Inc()
	if c.mc == nil {
		return Reply{}, false
	}
	if now.UnixNano() < c.downUntil.Load() {
		c.lookups.WithLabelValues("memcached", "skipped").Inc()
		return Reply{}, false
	}
	item, err := c.mc.Get(memcachedKey(key))
	switch {
	case errors.Is(err, memcache.ErrCacheMiss):
		c.setHealth(nil)
		c.lookups.WithLabelValues("memcached", "miss").Inc()
		return Reply{}, false
	case err != nil:
		c.failed(err)
		c.lookups.WithLabelValues("memcached", "error").Inc()
		return Reply{}, false
	}
	c.setHealth(nil)
	r, err := decode(item.Value)
	if err != nil {
		c.lookups.WithLabelValues("memcached", "error").Inc()
		return Reply{}, false
	}
	c.lookups.WithLabelValues("memcached", "hit").Inc()
	c.store(key, r, now)
	return r, true
}

// Add remembers a refusal; replies that are not Cacheable are ignored. The
// memcached write runs in the background: the sender is not kept waiting
// for it.
func (c *Cache) Add(key string, r Reply) {
	if !r.Cacheable() || c.cfg.TTL <= 0 {
		return
	}
	now := c.now()
	c.store(key, r, now)
	if c.mc == nil || now.UnixNano() < c.downUntil.Load() {
		return
	}
	go func() {
		err := c.mc.Set(&memcache.Item{Key: memcachedKey(key), Value: r.encode(), Expiration: int32(max(c.cfg.TTL/time.Second, 1))})
		if err != nil {
			c.failed(err)
			return
		}
		c.setHealth(nil)
	}()
}

func (c *Cache) store(key string, r Reply, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.local) >= maxLocal {
		for k, e := range c.local {
			if !now.Before(e.expires) {
				delete(c.local, k)
			}
		}
		for k := range c.local {
			if len(c.local) < maxLocal*9/10 {
				break
			}
			delete(c.local, k)
		}
	}
	c.local[key] = entry{reply: r, expires: now.Add(c.cfg.TTL)}
}

func (c *Cache) failed(err error) {
	c.downUntil.Store(c.now().Add(backoff).UnixNano())
	c.setHealth(err)
}

func (c *Cache) setHealth(err error) {
	if c.health == nil {
		return
	}
	if err != nil {
		c.log.Warn("negative cache: memcached unavailable, using the local cache", "err", err)
		c.health.Set(healthComponent, health.Degraded, "memcached unreachable (smtp.negative_cache_memcached): "+err.Error())
		return
	}
	c.health.Set(healthComponent, health.OK, "")
}
