// Package netguard decides which network addresses mail may be relayed to.
//
// Routes are set by resellers, who are tenants, not operators: a route to
// 127.0.0.1, 10.0.0.0/8 or 169.254.169.254 would turn the relay (and the
// panel's "Test route") into a probe of the node's own network. And a route
// that leads back to this node or another cluster member is a mail loop.
// The Guard resolves a route once, checks every address, and dials only
// the checked addresses, so DNS cannot change the answer between the check
// and the connection.
package netguard

import "net/netip"

// Class is the kind of network an address belongs to. Every class but
// Public is refused for tenant routes unless the operator allows the
// network explicitly.
type Class string

const (
	Public      Class = "public"
	Loopback    Class = "loopback"
	Private     Class = "private" // RFC 1918, RFC 4193
	LinkLocal   Class = "link-local"
	CGNAT       Class = "cgnat" // RFC 6598 100.64.0.0/10
	Multicast   Class = "multicast"
	Unspecified Class = "unspecified"
	Broadcast   Class = "broadcast"
	// Reserved covers documentation, benchmarking, "this network",
	// 240/4, IETF protocol assignments and the like: nothing a customer's
	// mail server can legitimately live on.
	Reserved Class = "reserved"
	// Cluster is an address of this host or of a cluster member, at any
	// port: what else listens there (gossip, the management listener,
	// a database bound to the public address) is the operator's, and a
	// customer's mail server is never on a filtering node.
	Cluster Class = "cluster"
)

var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4  = netip.MustParsePrefix("2002::/16")
	cgnat   = netip.MustParsePrefix("100.64.0.0/10")
	bcast   = netip.MustParseAddr("255.255.255.255")
	global6 = netip.MustParsePrefix("2000::/3")
	reserve = mustPrefixes(
		"0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
		"100::/64", "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16",
		"64:ff9b:1::/48", "::/128", "::ffff:0:0:0/96", "::/96",
	)
)

func mustPrefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// Embedded returns the IPv4 address that ip stands for, when it is an
// IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address, so that
// ::ffff:127.0.0.1 or 64:ff9b::7f00:1 cannot smuggle loopback past a check
// of the IPv6 form. Other addresses are returned unchanged.
func Embedded(ip netip.Addr) netip.Addr {
	ip = ip.WithZone("")
	switch {
	case ip.Is4In6():
		return ip.Unmap()
	case nat64.Contains(ip):
		b := ip.As16()
		return netip.AddrFrom4([4]byte(b[12:16]))
	case sixTo4.Contains(ip):
		b := ip.As16()
		return netip.AddrFrom4([4]byte(b[2:6]))
	}
	return ip
}

// Classify returns the class of ip, looking through embedded IPv4.
func Classify(ip netip.Addr) Class {
	if !ip.IsValid() {
		return Unspecified
	}
	ip = Embedded(ip)
	switch {
	case ip.IsUnspecified():
		return Unspecified
	case ip.IsLoopback():
		return Loopback
	case ip.IsPrivate():
		return Private
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return LinkLocal
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return Multicast
	case ip == bcast:
		return Broadcast
	case cgnat.Contains(ip):
		return CGNAT
	}
	for _, p := range reserve {
		if p.Contains(ip) {
			return Reserved
		}
	}
	if ip.Is6() && !global6.Contains(ip) {
		// Outside global unicast: site-local fec0::/10 and unassigned space.
		return Reserved
	}
	return Public
}
