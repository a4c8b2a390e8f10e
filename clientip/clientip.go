// Package clientip tells the address of the client behind an HTTP request.
// X-Forwarded-For is believed only when the connection comes from a
// configured proxy: anyone else could write any address there, dodging
// per-address limits or pinning them on a victim.
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/mxgrid/mxgrid/internal/ratelimit"
	"github.com/mxgrid/mxgrid/netguard"
)

// ParseTrusted parses http.trusted_proxies: CIDR networks or single
// addresses. Peers are compared unmapped (an IPv4 client of a dual-stack
// listener is ::ffff:a.b.c.d), so a network or an address written in the
// v4-mapped form is taken as the IPv4 one it names: kept as written, it
// contained no peer, and every client behind that proxy had its address.
func ParseTrusted(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := netguard.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Everyone returns the trusted networks that hold every address of their
// family (0.0.0.0/0, ::/0): with one, any client is a "proxy", writes
// the address it likes in X-Forwarded-For, and escapes every per-client
// limit, so a node says so when it starts.
func Everyone(trusted []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range trusted {
		if p.Bits() == 0 {
			out = append(out, p)
		}
	}
	return out
}

// Resolver finds client addresses given the trusted proxies.
type Resolver struct{ trusted []netip.Prefix }

// New returns a Resolver trusting the given networks.
func New(trusted []netip.Prefix) *Resolver { return &Resolver{trusted: trusted} }

func (r *Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Of returns the client's address: the connection's peer, or, when that
// peer is a trusted proxy, the right-most X-Forwarded-For entry that is not
// itself a trusted proxy (entries left of it were written by the client
// and prove nothing). The zero Addr when RemoteAddr is not an address
// (never over a real socket).
func (r *Resolver) Of(req *http.Request) netip.Addr {
	peer := peerOf(req)
	if !peer.IsValid() || !r.isTrusted(peer) {
		return peer
	}
	client := peer
	hops := req.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a := parseHost(strings.TrimSpace(parts[j]))
			if !a.IsValid() {
				// A garbled hop: what lies left of it cannot be trusted.
				return client
			}
			client = a
			if !r.isTrusted(a) {
				return client
			}
		}
	}
	return client
}

// HTTPS reports whether the client reached us over TLS: on this
// connection, or at a trusted proxy that says so in X-Forwarded-Proto.
// From anyone else the header proves nothing.
func (r *Resolver) HTTPS(req *http.Request) bool {
	if req.TLS != nil {
		return true
	}
	peer := peerOf(req)
	return peer.IsValid() && r.isTrusted(peer) && strings.EqualFold(req.Header.Get("X-Forwarded-Proto"), "https")
}

// peerOf is the connection's peer without its zone: the kernel names a
// link-local peer with its interface (fe80::1%eth0), which no trusted
// network contains, so a proxy on a link-local address was never trusted.
func peerOf(req *http.Request) netip.Addr { return parseHost(req.RemoteAddr).WithZone("") }

// parseHost accepts "addr", "addr:port" and "[v6]:port".
func parseHost(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}
	}
	return a.Unmap()
}

// LimitKey is the unit that address-based limits count, ratelimit.ClientKey
// as text: an IPv4 address (an IPv6 one that carries it too), or an IPv6
// /64, since one subscriber commonly holds a whole /64 and would otherwise
// get 2^64 fresh budgets.
func LimitKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	p := ratelimit.ClientKey(a)
	if p.Addr().Is4() {
		return p.Addr().String()
	}
	return p.String()
}
