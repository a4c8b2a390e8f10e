package dnsresolver

import (
	"net"
	"sync"
	"time"
)

// reach is the resolver's view of whether its server answers at all. A
// node without working DNS must not hold every message for a lookup
// timeout: after failuresToTrip consecutive lookups got no answer (timeout,
// refused, unreachable), lookups fail at once as temporary errors — SPF,
// DKIM and DMARC become temperror, DNSBLs are skipped — and one lookup per
// backoff period is let through to find out whether the server is back.
// NXDOMAIN and other answers count as reachable: the server answered.
type reach struct {
	now      func() time.Time
	onChange func(up bool) // called outside the lock, on every change

	mu        sync.Mutex
	failures  int
	down      bool
	backoff   time.Duration
	nextProbe time.Time
	probing   bool
}

const (
	failuresToTrip = 3
	minBackoff     = time.Second
	maxBackoff     = 30 * time.Second
)

// allow reports whether a lookup may go to the server now. While down,
// the first caller after the backoff is the probe; the others fail fast.
func (r *reach) allow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.down {
		return true
	}
	if r.probing || r.now().Before(r.nextProbe) {
		return false
	}
	r.probing = true
	return true
}

// done records the outcome of a lookup that went to the server.
func (r *reach) done(err *net.DNSError) {
	answered := err == nil || err.IsNotFound || !(err.IsTimeout || isNoServer(err))
	r.mu.Lock()
	changed := false
	switch {
	case answered:
		r.failures, r.backoff, r.probing = 0, 0, false
		changed, r.down = r.down, false
	default:
		r.failures++
		r.probing = false
		if r.failures >= failuresToTrip {
			if !r.down {
				changed, r.down = true, true
				r.backoff = minBackoff
			} else {
				r.backoff = min(2*r.backoff, maxBackoff)
			}
			r.nextProbe = r.now().Add(r.backoff)
		}
	}
	up := !r.down
	r.mu.Unlock()
	if changed && r.onChange != nil {
		r.onChange(up)
	}
}

func (r *reach) up() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.down
}

// isNoServer: the Go resolver's words for "nobody answered" (connection
// refused, network unreachable, no servers configured), which it reports
// without IsTimeout.
func isNoServer(err *net.DNSError) bool {
	switch {
	case err.Err == "server misbehaving":
		return false // it answered, badly (SERVFAIL): DNS works
	case err.IsTemporary:
		return true
	}
	return false
}

// unreachableError is what lookups get while the server is known down.
func unreachableError(name string) *net.DNSError {
	return &net.DNSError{Err: "resolver unreachable (recent lookups got no answer)", Name: name, IsTemporary: true}
}
