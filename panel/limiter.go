package panel

import (
	"sync"
	"time"
)

// limiter is a token bucket per key: burst tokens, one more every
// interval. Keys are reseller IDs (authenticated, so few): no eviction.
type limiter struct {
	burst    float64
	interval time.Duration

	mu      sync.Mutex
	buckets map[int64]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(burst int, interval time.Duration) *limiter {
	return &limiter{burst: float64(burst), interval: interval, buckets: make(map[int64]*bucket)}
}

// take spends a token of key and returns 0, or returns how long until one
// is available without spending.
func (l *limiter) take(key int64, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
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
