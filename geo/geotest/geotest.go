// Package geotest builds tiny real mmdb files for tests, in the three
// layouts geo reads: MaxMind's City/Country schema, ip-location-db's flat
// schema and the ASN schema. Files are written with maxmind/mmdbwriter, so
// tests exercise the same reader code as production.
package geotest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Record is one network of a location database.
type Record struct {
	Network     string // CIDR
	Country     string // ISO code; empty to test the registered-country fallback
	CountryName string // GeoIP2 schema only: the flat schema stores no names
	City        string
	Lat, Lon    float64
	AccuracyKM  uint16 // GeoIP2 schema only
	// Registered is the registered country (GeoIP2 schema only).
	Registered string
}

// ASN is one network of an ASN database.
type ASN struct {
	Network string
	Number  uint32
	Org     string
}

// Known are public networks used across the repository's tests. Private
// 10.0.0.0/8 is included on purpose: a database that knows it must still
// never be asked (geo.Public).
var Known = []Record{
	{Network: "81.2.69.0/24", Country: "GB", CountryName: "United Kingdom", City: "London", Lat: 51.5142, Lon: -0.0931, AccuracyKM: 10},
	{Network: "89.160.20.0/24", Country: "SE", CountryName: "Sweden", City: "Linköping", Lat: 58.4167, Lon: 15.6167, AccuracyKM: 76},
	{Network: "175.16.199.0/24", Country: "CN", CountryName: "China", City: "Changchun", Lat: 43.88, Lon: 125.3228, AccuracyKM: 100},
	{Network: "2a02:ff0::/32", Country: "DE", CountryName: "Germany", City: "Berlin", Lat: 52.5244, Lon: 13.4105, AccuracyKM: 20},
	{Network: "67.43.156.0/24", Registered: "BT", Lat: 27.5, Lon: 90.5, AccuracyKM: 534},
	{Network: "10.0.0.0/8", Country: "ZZ", CountryName: "Private", City: "Nowhere"},
}

// KnownASN matches Known.
var KnownASN = []ASN{
	{Network: "81.2.69.0/24", Number: 20712, Org: "Andrews & Arnold Ltd"},
	{Network: "89.160.20.0/24", Number: 29518, Org: "Bredband2 AB"},
	{Network: "2a02:ff0::/32", Number: 4294967290, Org: "Big ASN GmbH"},
}

// Options tune the written file.
type Options struct {
	// DatabaseType goes into the metadata; geo detects the schema from it.
	DatabaseType string
	// BuildEpoch distinguishes two builds of the same data (0: now).
	BuildEpoch int64
	// IPv4Only writes an IPv4 tree, like ip-location-db's *-ipv4.mmdb.
	IPv4Only bool
}

func newTree(t testing.TB, o Options) *mmdbwriter.Tree {
	t.Helper()
	ipVersion, recordSize := 6, 28
	if o.IPv4Only {
		ipVersion, recordSize = 4, 24
	}
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: o.DatabaseType,
		BuildEpoch:   o.BuildEpoch,
		IPVersion:    ipVersion,
		RecordSize:   recordSize,
		// Without it mmdbwriter refuses private and documentation networks,
		// which the tests insert to prove they are never looked up.
		IncludeReservedNetworks: true,
		Languages:               []string{"en"},
	})
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	return tree
}

func insert(t testing.TB, tree *mmdbwriter.Tree, cidr string, v mmdbtype.Map) {
	t.Helper()
	_, network, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	if err := tree.Insert(network, v); err != nil {
		t.Fatalf("geotest: insert %s: %v", cidr, err)
	}
}

// write writes the tree to a temporary file beside path and renames it
// into place, as geoipupdate does, so a reader never sees half a file.
func write(t testing.TB, tree *mmdbwriter.Tree, path string) {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(path), ".geotest-*")
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		t.Fatalf("geotest: write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("geotest: %v", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		t.Fatalf("geotest: %v", err)
	}
}

func names(s string) mmdbtype.Map {
	return mmdbtype.Map{"en": mmdbtype.String(s)}
}

// WriteCity writes records in MaxMind's City schema (DatabaseType
// defaults to "GeoLite2-City").
func WriteCity(t testing.TB, path string, o Options, records []Record) {
	t.Helper()
	if o.DatabaseType == "" {
		o.DatabaseType = "GeoLite2-City"
	}
	tree := newTree(t, o)
	for _, r := range records {
		m := mmdbtype.Map{
			"location": mmdbtype.Map{
				"latitude":        mmdbtype.Float64(r.Lat),
				"longitude":       mmdbtype.Float64(r.Lon),
				"accuracy_radius": mmdbtype.Uint16(r.AccuracyKM),
			},
		}
		if r.Country != "" {
			m["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(r.Country), "names": names(r.CountryName)}
		}
		if r.Registered != "" {
			m["registered_country"] = mmdbtype.Map{"iso_code": mmdbtype.String(r.Registered)}
		}
		if r.City != "" {
			m["city"] = mmdbtype.Map{"names": names(r.City)}
		}
		insert(t, tree, r.Network, m)
	}
	write(t, tree, path)
}

// WriteFlat writes records in ip-location-db's flat schema (DatabaseType
// defaults to "city ipv4"; set IPv4Only for the IPv4 file). Coordinates
// are float32, as in the real files.
func WriteFlat(t testing.TB, path string, o Options, records []Record) {
	t.Helper()
	if o.DatabaseType == "" {
		o.DatabaseType = "city ipv4"
	}
	tree := newTree(t, o)
	for _, r := range records {
		if o.IPv4Only {
			if ip, _, _ := net.ParseCIDR(r.Network); ip.To4() == nil {
				continue
			}
		}
		insert(t, tree, r.Network, mmdbtype.Map{
			"country_code": mmdbtype.String(r.Country),
			"state1":       mmdbtype.String(""),
			"city":         mmdbtype.String(r.City),
			"latitude":     mmdbtype.Float32(r.Lat),
			"longitude":    mmdbtype.Float32(r.Lon),
		})
	}
	write(t, tree, path)
}

// WriteASN writes an ASN database (DatabaseType defaults to "GeoLite2-ASN").
func WriteASN(t testing.TB, path string, o Options, records []ASN) {
	t.Helper()
	if o.DatabaseType == "" {
		o.DatabaseType = "GeoLite2-ASN"
	}
	tree := newTree(t, o)
	for _, r := range records {
		insert(t, tree, r.Network, mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(r.Number),
			"autonomous_system_organization": mmdbtype.String(r.Org),
		})
	}
	write(t, tree, path)
}
