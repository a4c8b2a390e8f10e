// Package ratelimit is a token bucket per key: burst tokens, one more
// every interval. Keys may come from the internet (client addresses): the
// table is bounded, and buckets that have refilled (their key spent
// nothing for burst intervals) are forgotten first.
package ratelimit

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mxgrid/mxgrid/netguard"
)

// ClientKey is the key of a client address: the address itself for IPv4,
// its /64 for IPv6, the share one host gets (an IPv6 host holds a whole
// /64 and could otherwise take a fresh key per request). An IPv6 address
// that carries an IPv4 one is keyed as that IPv4 address (netguard.Embedded):
// a 6to4 site (2002::/16) is one IPv4 host's 65,536 /64s, each a fresh key,
// and the IPv4 clients a translator brings to an IPv6-only node under
// NAT64's prefix (64:ff9b::/96) all shared one /64.
func ClientKey(a netip.Addr) netip.Prefix {
	a = netguard.Embedded(a)
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p
	}
	p, _ := a.Prefix(32)
	return p
}

// Limiter is safe for concurrent use.
type Limiter[K comparable] struct {
	burst    float64
	interval time.Duration
	maxKeys  int

	mu      sync.Mutex
	buckets map[K]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New allows burst at once and one more per interval for each key, keeping
// at most maxKeys buckets (0: no bound, for keys that are not attacker
// chosen).
func New[K comparable](burst int, interval time.Duration, maxKeys int) *Limiter[K] {
	return &Limiter[K]{burst: float64(burst), interval: interval, maxKeys: maxKeys, buckets: make(map[K]*bucket)}
}

// Take spends a token of key and returns 0, or returns how long until one
// is available without spending.
func (l *Limiter[K]) Take(key K, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if l.maxKeys > 0 && len(l.buckets) >= l.maxKeys {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+float64(elapsed)/float64(l.interval))
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(l.interval))
}

// Ready reports whether key has a token to spend now, without spending it.
func (l *Limiter[K]) Ready(key K, now time.Time) bool { return l.Wait(key, now) == 0 }

// Wait is how long until key has a token to spend, 0 when it has one now;
// it spends nothing.
func (l *Limiter[K]) Wait(key K, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return 0
	}
	tokens := b.tokens
	if elapsed := now.Sub(b.last); elapsed > 0 {
		tokens += float64(elapsed) / float64(l.interval)
	}
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) * float64(l.interval))
}

// evict forgets refilled buckets and, when that leaves less than a tenth
// of maxKeys free, the buckets used longest ago until it does (a flood
// from many addresses: a key forgotten starts full again, which an
// attacker with that many addresses has anyway). The room made keeps the
// next evictions a tenth of maxKeys away: with keys arriving as fast as
// the oldest refilled, each eviction found one to forget, and every new
// key scanned the whole table under the lock.
func (l *Limiter[K]) evict(now time.Time) {
	full := time.Duration(l.burst * float64(l.interval))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
	excess := len(l.buckets) - l.maxKeys*9/10
	if excess <= 0 {
		return
	}
	lasts := make([]time.Time, 0, len(l.buckets))
	for _, b := range l.buckets {
		lasts = append(lasts, b.last)
	}
	slices.SortFunc(lasts, time.Time.Compare)
	cutoff := lasts[excess-1]
	for k, b := range l.buckets {
		if !b.last.After(cutoff) {
			delete(l.buckets, k)
		}
	}
}
