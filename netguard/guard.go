package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Resolver is the lookup the Guard needs; *net.Resolver and
// dnsresolver.Cached satisfy it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ErrRefused is matched (errors.Is) by a *RefusedError.
var ErrRefused = errors.New("route refused")

// ErrUnresolved is matched by a failure to resolve a route's host.
var ErrUnresolved = errors.New("cannot resolve")

// ErrLoop is matched (errors.Is) by a *LoopError.
var ErrLoop = errors.New("route leads back to this cluster")

// RefusedError is a route whose address lies in a network tenants may not
// reach.
type RefusedError struct {
	Target Target
	Addr   netip.Addr
	Class  Class
}

// Error names the address only when the route does: the address a name
// resolves to is our resolver's answer, which knows the operator's
// internal zones (split-horizon DNS, Kubernetes service names), and the
// text reaches the tenant (the API's 400, the panel's route test). Addr
// is for the operator's log.
func (e *RefusedError) Error() string {
	if e.Class == Cluster {
		if e.Target.Host != "" {
			return fmt.Sprintf("%s resolves to an address of this cluster's nodes; routes may not lead to them", e.Target.Host)
		}
		return fmt.Sprintf("%s is an address of this cluster's nodes; routes may not lead to them", e.Addr)
	}
	if e.Target.Host != "" {
		return fmt.Sprintf("%s resolves to %s %s address; routes to %s networks are not allowed", e.Target.Host, article(e.Class), e.Class, e.Class)
	}
	return fmt.Sprintf("%s is %s %s address; routes to %s networks are not allowed", e.Addr, article(e.Class), e.Class, e.Class)
}

func article(c Class) string {
	if c != "" && strings.ContainsRune("aeiou", rune(c[0])) {
		return "an"
	}
	return "a"
}

func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// LoopError is a route that leads back to this node or a cluster member.
type LoopError struct {
	Target Target
	Addr   netip.AddrPort
	// DetectedBy is "address" here; the relay also reports "greeting" and
	// "ehlo" when the downstream introduces itself with our name.
	DetectedBy string
}

// Error names the address only when the route does, as RefusedError's.
func (e *LoopError) Error() string {
	if e.Target.Host != "" {
		return fmt.Sprintf("%s leads to this cluster's own SMTP service (detected by %s)", e.Target, e.DetectedBy)
	}
	return fmt.Sprintf("%s leads to %s, this cluster's own SMTP service (detected by %s)", e.Target, e.Addr, e.DetectedBy)
}

func (e *LoopError) Is(target error) bool { return target == ErrLoop }

// Guard checks routes and dials them. Safe for concurrent use.
type Guard struct {
	res     Resolver
	allowed []netip.Prefix

	mu      sync.RWMutex
	self    []netip.AddrPort
	members func() []netip.Addr
	names   func() []string

	localMu sync.Mutex
	local   []netip.Addr // this host's interface addresses
	localAt time.Time
}

// New returns a Guard that resolves with res and lets tenant routes reach
// the allowed networks (relay.allowed_route_networks) whatever their class.
func New(res Resolver, allowed []netip.Prefix) *Guard {
	if res == nil {
		res = net.DefaultResolver
	}
	return &Guard{res: res, allowed: allowed}
}

// CheckRoute vets a tenant route when it is set (admin API, panel): like
// Check, except that a name that does not resolve (yet) is accepted, since
// customers often set up DNS after the route; the check at connect time
// covers whatever it resolves to later.
func (g *Guard) CheckRoute(ctx context.Context, route string) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if _, err := g.Check(ctx, route, false); err != nil && !errors.Is(err, ErrUnresolved) {
		return err
	}
	return nil
}

// checkTimeout bounds CheckRoute's lookup, so an API call cannot hang on a
// slow name server chosen by the tenant.
const checkTimeout = 5 * time.Second

// ParsePrefixes parses CIDR prefixes (a bare address is its /32 or /128),
// naming the bad entry by index.
func ParsePrefixes(ss []string) ([]netip.Prefix, error) {
	ps := make([]netip.Prefix, 0, len(ss))
	for i, s := range ss {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// ParseAllowedNetworks parses relay.allowed_route_networks. A network
// inside the NAT64 or 6to4 prefix is refused: such an address is allowed
// by the IPv4 network it carries only (an allowed ::/0 opened
// [64:ff9b::a00:5], a private 10.0.0.5 behind a NAT64 gateway), so the
// entry would match nothing, silently.
func ParseAllowedNetworks(ss []string) ([]netip.Prefix, error) {
	ps, err := ParsePrefixes(ss)
	if err != nil {
		return nil, err
	}
	for i, p := range ps {
		for _, t := range []netip.Prefix{nat64, sixTo4} {
			if p.Bits() >= t.Bits() && t.Contains(p.Addr()) {
				return nil, fmt.Errorf("[%d]: %s is inside %s, whose addresses are allowed by the IPv4 network they carry: list that network instead", i, p, t)
			}
		}
	}
	return ps, nil
}

// ParsePrefix parses a CIDR prefix, or a bare address as its /32 or /128,
// for the keys that trust or allow networks. A prefix with host bits set
// is refused: 10.1.2.3/8 was masked to 10.0.0.0/8 without a word, trusting
// or allowing a whole /8 where the operator may have meant one address.
// So is a zoned address, whose zone a prefix cannot hold. One written
// IPv4-mapped is the IPv4 network it names (Unmapped).
func ParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix or an address", s)
		}
		return Unmapped(netip.PrefixFrom(a, a.BitLen())), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix or an address", s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set: write %s for the network or %s for the address", s, p.Masked(), p.Addr())
	}
	return Unmapped(p), nil
}

// Unmapped is p as the addresses it is compared with are written: a
// network of IPv4-mapped addresses (::ffff:a.b.c.d/96 and longer, as a
// dual-stack socket shows IPv4 peers) is the IPv4 network it names, since
// client addresses are unmapped before any comparison; kept as written,
// it held none of them. Any other prefix is returned unchanged.
func Unmapped(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// SetSelf records the node's SMTP listen addresses. An unspecified listen
// address (0.0.0.0, ::) stands for every local address at that port.
func (g *Guard) SetSelf(addrs ...netip.AddrPort) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.self = append([]netip.AddrPort(nil), addrs...)
}

// SetMembers sets the source of the cluster members' IP addresses; a
// member's address at our SMTP port is a loop.
func (g *Guard) SetMembers(members func() []netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members = members
}

// SetMemberHostnames sets the source of the cluster members' smtp.hostname
// as they gossip them. A member reached at an address the cluster does not
// know (its IPv6 or second address, or through NAT) greets with its own
// name, not ours; without its name the two nodes relayed to each other at
// RCPT, before any Received field exists, until their per-client
// connection limits gave out (100 connections and a 451 per recipient).
func (g *Guard) SetMemberHostnames(names func() []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.names = names
}

// IsMemberHostname reports whether name, as a downstream server introduces
// itself, is a cluster member's smtp.hostname. localhost is never one: it
// is the name a node falls back to (smtp.hostname unset, no host name),
// and misconfigured customer servers greet with it too.
func (g *Guard) IsMemberHostname(name string) bool {
	g.mu.RLock()
	names := g.names
	g.mu.RUnlock()
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if names == nil || IsLocalhost(name) {
		return false
	}
	return slices.ContainsFunc(names(), func(m string) bool { return strings.EqualFold(strings.TrimSuffix(m, "."), name) })
}

// IsClusterName reports whether name, as a server introduces itself (the
// first word of its greeting or EHLO reply, RFC 5321 §4.2), is own (this
// node's smtp.hostname) or a member's: either way the route that reached
// it leads back into the cluster.
func (g *Guard) IsClusterName(name, own string) bool {
	name = strings.TrimSuffix(name, ".")
	return name != "" && (strings.EqualFold(name, strings.TrimSuffix(own, ".")) || g.IsMemberHostname(name))
}

// Check parses and resolves route and checks every address: a loop is
// always refused, and an untrusted (tenant) route may not reach a
// non-public network the operator has not allowed. One bad address
// refuses the route, since the relay might use any of them. It returns
// the addresses to dial, in the resolver's order.
func (g *Guard) Check(ctx context.Context, route string, trusted bool) ([]netip.AddrPort, error) {
	t, err := ParseTarget(route)
	if err != nil {
		return nil, err
	}
	ips, err := g.resolve(ctx, t)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip, t.Port)
		if g.isSelf(ap) {
			return nil, &LoopError{Target: t, Addr: ap, DetectedBy: "address"}
		}
		// The operator's allowed networks are for customers' servers: a
		// node's or member's address inside one stays the cluster's.
		if c := g.classify(ip); !trusted && c != Public && (c == Cluster || !g.isAllowed(ip)) {
			return nil, &RefusedError{Target: t, Addr: ip, Class: c}
		}
		out = append(out, ap)
	}
	return out, nil
}

func (g *Guard) resolve(ctx context.Context, t Target) ([]netip.Addr, error) {
	switch {
	case t.IP.IsValid():
		// Unmapped as a name's answers are: [::ffff:127.0.0.1] is dialled
		// over IPv4, and kept mapped it lay in an allowed IPv6 network
		// such as ::/0, which opened this host's IPv4 loopback.
		return []netip.Addr{t.IP.Unmap()}, nil
	case IsLocalhost(t.Host):
		return []netip.Addr{netip.IPv6Loopback(), netip.AddrFrom4([4]byte{127, 0, 0, 1})}, nil
	}
	ips, err := g.res.LookupNetIP(ctx, "ip", t.Host)
	if err != nil {
		return nil, &unresolvedError{host: t.Host, err: err}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%w %s: no addresses", ErrUnresolved, t.Host)
	}
	for i, ip := range ips {
		ips[i] = ip.Unmap()
	}
	return ips, nil
}

// unresolvedError is a route's name that did not resolve: it says what
// DNS said of the name, not which server said it, as a *net.DNSError's
// text does ("lookup x on 10.0.0.2:53: no such host"). It reaches the
// tenant (the panel's route test, a release's 502), and the node's
// resolver is not theirs to know. It wraps ErrUnresolved and err.
type unresolvedError struct {
	host string
	err  error
}

func (e *unresolvedError) Error() string {
	why := e.err.Error()
	var de *net.DNSError
	if errors.As(e.err, &de) {
		why = de.Err
	}
	return fmt.Sprintf("%s %s: %s", ErrUnresolved, e.host, why)
}

func (e *unresolvedError) Unwrap() []error { return []error{ErrUnresolved, e.err} }

// classify is Classify, with an address of this host or of a cluster
// member as Cluster, whatever network it is in: a node's private address
// (where http.management_listen is advised to be) within
// relay.allowed_route_networks made its management listener, gossip port
// and every other service there reachable to tenant routes, and the
// panel's route test a scanner of them. Loopback stays Loopback: it is
// this host's whatever listens there, and an operator who allows it has
// chosen that.
func (g *Guard) classify(ip netip.Addr) Class {
	c := Classify(ip)
	if c != Loopback && g.isCluster(Embedded(ip)) {
		return Cluster
	}
	return c
}

// isCluster reports whether ip is this host's or a cluster member's.
func (g *Guard) isCluster(ip netip.Addr) bool {
	g.mu.RLock()
	members := g.members
	g.mu.RUnlock()
	if members != nil && slices.ContainsFunc(members(), func(m netip.Addr) bool { return Embedded(m) == ip }) {
		return true
	}
	return g.isLocal(ip)
}

// isAllowed reports whether ip lies in an allowed network. An address
// that carries an IPv4 one (NAT64, 6to4) is judged as that address, as
// classify does: an IPv6 network that holds it (::/0 holds both ranges)
// opened [64:ff9b::a00:5], which a NAT64 gateway takes to the private
// 10.0.0.5.
func (g *Guard) isAllowed(ip netip.Addr) bool {
	ip = Embedded(ip)
	for _, p := range g.allowed {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// isSelf reports whether ap reaches this node's SMTP listener or a
// member's.
func (g *Guard) isSelf(ap netip.AddrPort) bool {
	g.mu.RLock()
	self, members := g.self, g.members
	g.mu.RUnlock()
	ip := Embedded(ap.Addr())
	for _, s := range self {
		if s.Port() != ap.Port() {
			continue
		}
		sip := Embedded(s.Addr())
		if sip == ip || (sip.IsUnspecified() && (ip.IsLoopback() || ip.IsUnspecified() || g.isLocal(ip))) {
			return true
		}
		// 0.0.0.0 and :: as a destination reach the local host.
		if ip.IsUnspecified() && (sip.IsLoopback() || g.isLocal(sip)) {
			return true
		}
	}
	if members == nil {
		return false
	}
	for _, m := range members() {
		if Embedded(m) != ip {
			continue
		}
		for _, s := range self {
			if s.Port() == ap.Port() {
				return true
			}
		}
	}
	return false
}

// isLocal reports whether ip is assigned to one of this host's interfaces.
// The list is refreshed at most every localTTL: it is consulted for every
// relayed connection when the node listens on 0.0.0.0 or ::, and addresses
// change rarely (a new cloud IP is seen within localTTL).
func (g *Guard) isLocal(ip netip.Addr) bool {
	g.localMu.Lock()
	if time.Since(g.localAt) > localTTL {
		g.local = g.local[:0]
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					if la, ok := netip.AddrFromSlice(n.IP); ok {
						g.local = append(g.local, la.Unmap())
					}
				}
			}
		}
		g.localAt = time.Now()
	}
	local := slices.Contains(g.local, ip)
	g.localMu.Unlock()
	return local
}

const localTTL = 30 * time.Second

// maxDialAddrs bounds the addresses Dial tries, as Postfix's
// smtp_mx_address_limit (5) does. A tenant's DNS chooses how many its
// route's name has: a thousand unanswering addresses, each tried for the
// dialer's timeout, held the sender's SMTP session (whose context has no
// deadline) for hours.
const maxDialAddrs = 5

// Dial checks route and connects to its checked addresses in turn (the
// fallback over a name's several addresses never dials an unchecked one),
// the first maxDialAddrs of them. Errors from the check are
// *RefusedError, *LoopError or a resolution or parse error; a failure to
// connect wraps the dial errors.
func (g *Guard) Dial(ctx context.Context, d *net.Dialer, route string, trusted bool) (net.Conn, error) {
	addrs, err := g.Check(ctx, route, trusted)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ap := range addrs[:min(len(addrs), maxDialAddrs)] {
		conn, err := d.DialContext(ctx, "tcp", ap.String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("connecting to %s: %w", route, errors.Join(errs...))
}
