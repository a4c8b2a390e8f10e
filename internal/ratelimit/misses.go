package ratelimit

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// A client address may look up MissBurst public names or tokens that
// match nothing, then one per MissInterval; past that its lookups are
// refused unmade. Each is a store read over the connections the mail path
// shares, and one address over keep-alive connections had thousands a
// second made. Someone mistyping a name or retrying a revoked token meets
// the limit soon, and has nothing to lose by it.
const (
	MissBurst      = 50
	MissInterval   = time.Second
	maxMissClients = 100_000
)

// Misses counts, per client address (ClientKey), the lookups of public
// names (map scopes, logos), of bearer tokens and of session cookies that
// found nothing, and
// refuses an address that made too many. It is one budget for all of
// them: an address does not get one per route. Safe for concurrent use.
type Misses struct {
	limit   *Limiter[netip.Prefix]
	refused *prometheus.CounterVec
}

// NewMisses registers its refusals' counter with reg (nil: none).
func NewMisses(reg prometheus.Registerer) *Misses {
	refused := promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "mxgrid_http_lookups_refused_total",
		Help: "Public HTTP requests answered 429 without their store lookup, by route (api_token, map, logo, session): their client address (an IPv6 /64) had shown 50 API tokens, map scopes, logo slugs or panel session cookies that matched nothing, then more than one a second.",
	}, []string{"route"})
	// Exported at 0 from the start, so a rate over them is never empty.
	for _, route := range []string{"api_token", "map", "logo", "session"} {
		refused.WithLabelValues(route)
	}
	return &Misses{limit: New[netip.Prefix](MissBurst, MissInterval, maxMissClients), refused: refused}
}

// Refused is how long a must wait before its next lookup, 0 when it may
// make one now; a refusal is counted under route.
func (m *Misses) Refused(a netip.Addr, route string, now time.Time) time.Duration {
	wait := m.limit.Wait(ClientKey(a), now)
	if wait > 0 {
		m.refused.WithLabelValues(route).Inc()
	}
	return wait
}

// Missed counts a lookup of a's that found nothing.
func (m *Misses) Missed(a netip.Addr, now time.Time) { m.limit.Take(ClientKey(a), now) }

// RetryAfter is a Retry-After field's value for wait: whole seconds,
// rounded up.
func RetryAfter(wait time.Duration) string { return strconv.Itoa(int(wait/time.Second) + 1) }
