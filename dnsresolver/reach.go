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
// Consecutive failures only trip it if serverAnswers then fails too.
type reach struct {
	now      func() time.Time
	onChange func(up bool) // called outside the lock, on every change

	// notifyMu serialises the calls of onChange, and reportedDown is what
	// it was last told: two changes close together were reported each
	// after the lock was let go, so the earlier could arrive last.
	notifyMu     sync.Mutex
	reportedDown bool

	mu        sync.Mutex
	failures  int
	down      bool
	backoff   time.Duration
	nextProbe time.Time
	probing   bool

	// serverAnswers asks the server something it must answer if it works
	// at all; set before the first lookup.
	serverAnswers func() bool
	confirming    bool
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
	ok := answered(err)
	r.mu.Lock()
	confirm := false
	switch {
	case ok:
		r.failures, r.backoff, r.probing = 0, 0, false
	case r.down:
		r.probing = false
		r.backoff = min(2*r.backoff, maxBackoff)
		r.nextProbe = r.now().Add(r.backoff)
	default:
		r.failures++
		// A spammer's own name servers that never answer make our
		// recursive resolver time out on the spammer's names; one message
		// does several such lookups at once. Only a root lookup, which the
		// operator's resolver answers whenever it works, may trip the
		// breaker for every sender.
		if r.failures >= failuresToTrip && !r.confirming && r.serverAnswers != nil {
			r.confirming, confirm = true, true
		}
	}
	r.mu.Unlock()
	if confirm {
		ok = r.serverAnswers()
	}
	r.mu.Lock()
	if confirm {
		r.confirming = false
		if ok {
			r.failures = 0
		}
	}
	changed := false
	switch {
	case ok:
		changed, r.down = r.down, false
	case confirm && !r.down:
		changed, r.down = true, true
		r.backoff = minBackoff
		r.nextProbe = r.now().Add(r.backoff)
	}
	r.mu.Unlock()
	if changed {
		r.notify()
	}
}

// notify tells onChange the state as it is now, when that is not what it
// was last told.
func (r *reach) notify() {
	if r.onChange == nil {
		return
	}
	r.notifyMu.Lock()
	defer r.notifyMu.Unlock()
	up := r.up()
	if r.reportedDown == !up {
		return
	}
	r.reportedDown = !up
	r.onChange(up)
}

// answered: the server replied, even if with NXDOMAIN or SERVFAIL.
func answered(err *net.DNSError) bool {
	return err == nil || err.IsNotFound || !(err.IsTimeout || isNoServer(err))
}

func (r *reach) up() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.down
}

// isNoServer: the Go resolver's words for "nobody answered" (connection
// refused, network unreachable, no servers configured), which it reports
// without IsTimeout, and for a server that answers REFUSED (or another
// error RCODE but SERVFAIL), which it reports as a permanent "server
// misbehaving". A recursive resolver passes a name's broken servers on
// as SERVFAIL (temporary): DNS works. The other codes are its own, for
// any name: it does not serve the node (its access control leaves the
// node out), which counted as working, and /readyz stayed ready while
// every lookup failed.
func isNoServer(err *net.DNSError) bool {
	switch {
	case err.Err == "server misbehaving":
		return !err.IsTemporary
	case err.IsTemporary:
		return true
	}
	return false
}

// unreachableError is what lookups get while the server is known down.
func unreachableError(name string) *net.DNSError {
	return &net.DNSError{Err: "resolver unreachable (recent lookups got no answer)", Name: name, IsTemporary: true}
}
