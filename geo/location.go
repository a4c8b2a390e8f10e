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

	"github.com/mxgrid/mxgrid/netguard"
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

// Public reports whether addr may be looked up and shown: an address of no
// special network (netguard.Classify), looking through IPv4 embedded in
// IPv6 (mapped, NAT64, 6to4) and ignoring a zone. Private, loopback,
// link-local, CGNAT, documentation, multicast and other special ranges
// identify nobody's location and could reveal internal topology on a
// public map. A Teredo address is public: its host is on the internet,
// behind a NAT, though routes may not lead there.
func Public(addr netip.Addr) bool {
	return netguard.Classify(addr) == netguard.Public || teredo.Contains(addr)
}

var teredo = netip.MustParsePrefix("2001::/32")
