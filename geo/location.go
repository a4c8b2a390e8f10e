// Package geo turns a client IP address into a location (country, city,
// coordinates, accuracy) and, when an ASN database is configured, its
// autonomous system. Lookups go through three layers: an in-process LRU,
// a memcached cluster shared by the nodes, and the mmdb file itself; a slow
// or dead memcached is skipped, never waited for. The files are reloaded
// when replaced on disk, without a failed lookup during the swap.
package geo

import (
	"math"
	"net/netip"
)

// Location is what the node records about an address. The zero value means
// "unknown".
type Location struct {
	// Located reports whether the location database knew the address.
	Located     bool    `json:"located"`
	Country     string  `json:"country,omitempty"` // ISO 3166-1 alpha-2
	CountryName string  `json:"country_name,omitempty"`
	City        string  `json:"city,omitempty"`
	Lat         float64 `json:"lat,omitempty"`
	Lon         float64 `json:"lon,omitempty"`
	AccuracyKM  int     `json:"accuracy_km,omitempty"`
	// ASN and ASOrg come from the ASN database; zero when none is
	// configured or it does not know the address.
	ASN   uint32 `json:"asn,omitempty"`
	ASOrg string `json:"as_org,omitempty"`
}

// Layer says where a lookup's answer came from.
type Layer string

const (
	LayerLRU       Layer = "lru"
	LayerMemcached Layer = "memcached"
	LayerFile      Layer = "file"
	// LayerNone: not looked up, because the address is not public or no
	// database is loaded.
	LayerNone Layer = "none"
)

// coordScale fixes coordinates to 5 decimals (about 1 m, far below any
// GeoIP accuracy) in every layer, so the cache's integer encoding returns
// exactly what the file gave, and ip-location-db's float32 noise
// (37.422000885...) is not passed on.
const coordScale = 1e5

func roundCoord(v float64) float64 { return math.Round(v*coordScale) / coordScale }

// nonPublic are ranges that are never looked up or shown: they identify
// nobody's location and could reveal internal topology on a public map.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network" (RFC 791)
	netip.MustParsePrefix("10.0.0.0/8"),      // private (RFC 1918)
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT shared space (RFC 6598)
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link local
	netip.MustParsePrefix("172.16.0.0/12"),   // private
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments (RFC 6890)
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1 (RFC 5737)
	netip.MustParsePrefix("192.168.0.0/16"),  // private
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking (RFC 2544)
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64 (RFC 8215)
	netip.MustParsePrefix("100::/64"),       // discard-only (RFC 6666)
	netip.MustParsePrefix("2001:db8::/32"),  // documentation (RFC 3849)
	netip.MustParsePrefix("3fff::/20"),      // documentation (RFC 9637)
	netip.MustParsePrefix("fc00::/7"),       // unique local (RFC 4193)
	netip.MustParsePrefix("fe80::/10"),      // link local
	netip.MustParsePrefix("ff00::/8"),       // multicast
}

// Public reports whether addr may be looked up and shown: false for private,
// loopback, link-local, CGNAT, documentation, multicast and other special
// ranges. IPv4-mapped IPv6 addresses are judged as the IPv4 address.
func Public(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}
