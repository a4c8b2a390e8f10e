package geo

import (
	"fmt"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// schema is the record layout of an mmdb file.
type schema int

const (
	// schemaGeoIP2 is MaxMind's City/Country layout (GeoIP2, GeoLite2,
	// DB-IP's MaxMind-compatible files): nested country/city/location maps.
	schemaGeoIP2 schema = iota + 1
	// schemaFlat is ip-location-db's layout: one flat map with
	// country_code, state1, city, latitude, longitude.
	schemaFlat
	// schemaASN is autonomous_system_number/_organization, shared by
	// GeoLite2-ASN, DB-IP ASN and ip-location-db's asn files.
	schemaASN
)

func (s schema) String() string {
	switch s {
	case schemaGeoIP2:
		return "geoip2"
	case schemaFlat:
		return "ip-location-db"
	case schemaASN:
		return "asn"
	}
	return "unknown"
}

// detectSchema reads the layout from the metadata's database_type.
// ip-location-db names its files "<kind> ipv4" / "<kind> ipv6" (kind city,
// country or asn); MaxMind and DB-IP use names like "GeoLite2-City",
// "DBIP-Country-Lite" or "GeoLite2-ASN".
func detectSchema(dbType string) (schema, error) {
	lower := strings.ToLower(dbType)
	if f := strings.Fields(lower); len(f) >= 2 && allIPVersions(f[1:]) {
		switch f[0] {
		case "city", "country":
			return schemaFlat, nil
		case "asn":
			return schemaASN, nil
		}
	}
	switch {
	case strings.Contains(lower, "asn"):
		return schemaASN, nil
	case strings.Contains(lower, "city"), strings.Contains(lower, "country"),
		strings.Contains(lower, "location"), strings.Contains(lower, "enterprise"):
		return schemaGeoIP2, nil
	}
	return 0, fmt.Errorf("unsupported database type %q (want a City, Country or ASN database)", dbType)
}

func allIPVersions(words []string) bool {
	for _, w := range words {
		if !strings.HasPrefix(w, "ipv") {
			return false
		}
	}
	return true
}

// flatRecord is an ip-location-db city or country record (country files
// carry only country_code).
type flatRecord struct {
	CountryCode string  `maxminddb:"country_code"`
	City        string  `maxminddb:"city"`
	Latitude    float64 `maxminddb:"latitude"`
	Longitude   float64 `maxminddb:"longitude"`
}

// asnRecord is the ASN layout common to MaxMind, DB-IP and ip-location-db.
type asnRecord struct {
	Number       uint32 `maxminddb:"autonomous_system_number"`
	Organization string `maxminddb:"autonomous_system_organization"`
}

// database is one opened mmdb file. Lookups hold mu for reading; retire
// takes it for writing, so the file is unmapped only after every in-flight
// lookup has finished, and a lookup that reaches a retired database sees
// closed and moves on to its successor.
type database struct {
	mu     sync.RWMutex
	closed bool

	db     *maxminddb.Reader
	path   string
	schema schema
	// version identifies the file's content in shared cache keys, so nodes
	// running different database releases never read each other's entries.
	version string
}

// openDatabase opens path, detects its schema and checks that it is the
// kind the caller wants (location or asn). size goes into the version.
func openDatabase(path string, wantASN bool, size int64) (*database, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return newDatabase(db, path, wantASN, size)
}

// newDatabase detects db's schema and checks that it is the kind the caller
// wants (location or asn); it closes db when it is not.
func newDatabase(db *maxminddb.Reader, path string, wantASN bool, size int64) (*database, error) {
	s, err := detectSchema(db.Metadata.DatabaseType)
	if err == nil && (s == schemaASN) != wantASN {
		if wantASN {
			err = fmt.Errorf("database type %q is not an ASN database", db.Metadata.DatabaseType)
		} else {
			err = fmt.Errorf("database type %q is an ASN database, not City or Country", db.Metadata.DatabaseType)
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &database{
		db:      db,
		path:    path,
		schema:  s,
		version: versionOf(db, size),
	}, nil
}

// acquire read-locks d for one lookup; false when d was retired meanwhile.
func (d *database) acquire() bool {
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return false
	}
	return true
}

func (d *database) release() { d.mu.RUnlock() }

// retire waits for in-flight lookups, then unmaps the file.
func (d *database) retire() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", d.path, err)
	}
	return nil
}

// read runs fn, which reads d's mapping, and turns a fault in it into an
// error. The file is mapped, not copied: one rewritten in place (cp, a
// download written to the path, an editor) rather than renamed over is
// cut short under the mapping, and a read past its new end raised SIGBUS,
// which killed the node. The watcher loads the file once it is whole.
func (d *database) read(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if fault, ok := r.(interface{ Addr() uintptr }); ok {
			err = fmt.Errorf("%s changed under the node (rewritten in place, not replaced by a rename): %v", d.path, fault)
			return
		}
		panic(r)
	}()
	return fn()
}

// find looks addr up; found is false when the file has no record for it.
// An IPv4-mapped address is looked up as IPv4, and an IPv6 address is not
// looked up at all in an IPv4-only database (ip-location-db ships IPv4 and
// IPv6 in separate files), which would answer it with an error.
func (d *database) find(addr netip.Addr) (res maxminddb.Result, found bool, err error) {
	addr = addr.Unmap()
	if addr.Is6() && d.db.Metadata.IPVersion == 4 {
		return res, false, nil
	}
	res = d.db.Lookup(addr)
	if err := res.Err(); err != nil {
		return res, false, fmt.Errorf("look up %s in %s: %w", addr, d.path, err)
	}
	return res, res.Found(), nil
}

// locate fills loc's location fields; the caller holds d (acquire).
func (d *database) locate(addr netip.Addr, loc *Location) error {
	res, found, err := d.find(addr)
	if !found {
		return err
	}
	switch d.schema {
	case schemaGeoIP2:
		// geoip2's model, decoded straight from the result: geoip2.Open
		// refuses database types missing from its own list, while the
		// record layout is what matters (and one mmap serves detection
		// and lookups).
		var c geoip2.City
		if err := res.Decode(&c); err != nil {
			return fmt.Errorf("decode %s in %s: %w", addr, d.path, err)
		}
		country, name := c.Country.ISOCode, c.Country.Names.English
		if country == "" {
			// Anycast and satellite ranges often carry only where the
			// block is registered: better than nothing on a map.
			country, name = c.RegisteredCountry.ISOCode, c.RegisteredCountry.Names.English
		}
		loc.Country = country
		loc.CountryName = name
		loc.City = c.City.Names.English
		if c.Location.Latitude != nil && c.Location.Longitude != nil {
			loc.Lat, loc.Lon = roundCoord(*c.Location.Latitude), roundCoord(*c.Location.Longitude)
		}
		loc.AccuracyKM = int(c.Location.AccuracyRadius)
	case schemaFlat:
		var r flatRecord
		if err := res.Decode(&r); err != nil {
			return fmt.Errorf("decode %s in %s: %w", addr, d.path, err)
		}
		loc.Country = r.CountryCode
		loc.City = r.City
		loc.Lat, loc.Lon = roundCoord(r.Latitude), roundCoord(r.Longitude)
	}
	if loc.CountryName == "" {
		loc.CountryName = countryName(loc.Country)
	}
	loc.Located = loc.Country != "" || loc.Lat != 0 || loc.Lon != 0
	return nil
}

// asn fills loc's ASN fields; the caller holds d (acquire).
func (d *database) asn(addr netip.Addr, loc *Location) error {
	res, found, err := d.find(addr)
	if !found {
		return err
	}
	var r asnRecord
	if err := res.Decode(&r); err != nil {
		return fmt.Errorf("decode %s in %s: %w", addr, d.path, err)
	}
	loc.ASN, loc.ASOrg = r.Number, r.Organization
	return nil
}

// countryName gives the English name of an ISO 3166-1 alpha-2 code, for
// databases that store only the code (ip-location-db).
func countryName(code string) string {
	if code == "" {
		return ""
	}
	r, err := language.ParseRegion(code)
	if err != nil {
		return ""
	}
	return display.English.Regions().Name(r)
}
