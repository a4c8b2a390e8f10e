package democorpus

import (
	"bytes"
	"flag"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/mxgrid/mxgrid/events"
	"github.com/oschwald/maxminddb-golang/v2"
)

var genGeoIP = flag.String("gen-geoip", "", "regenerate demo-geoip.mmdb from this full DB-IP City (flat schema, IPv4) file")

// flatCity is ip-location-db's record layout.
type flatCity struct {
	CountryCode string  `maxminddb:"country_code"`
	State1      string  `maxminddb:"state1"`
	City        string  `maxminddb:"city"`
	Latitude    float64 `maxminddb:"latitude"`
	Longitude   float64 `maxminddb:"longitude"`
}

// sources are the addresses the demo claims for the sample's spam, found
// the way the demo finds them.
func sources(t *testing.T) []netip.Addr {
	msgs, err := Messages()
	if err != nil {
		t.Fatal(err)
	}
	loop := netip.MustParseAddr("127.0.0.1")
	var out []netip.Addr
	for _, m := range msgs {
		if !m.Spam {
			continue
		}
		h, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			continue
		}
		if ip := events.SourceIP(loop, h.Header["Received"], TrustedRelays()); ip != loop && ip.Is4() {
			out = append(out, ip)
		}
	}
	return out
}

func TestGenerateGeoIP(t *testing.T) {
	if *genGeoIP == "" {
		t.Skip("only with -gen-geoip FILE")
	}
	full, err := maxminddb.Open(*genGeoIP)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "city ipv4", IPVersion: 4, RecordSize: 24,
		Description: map[string]string{"en": "mxgrid demo: DB-IP IP to City Lite (CC BY 4.0), sample networks only"}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ip := range sources(t) {
		res := full.Lookup(ip)
		var c flatCity
		if !res.Found() || res.Decode(&c) != nil || c.CountryCode == "" {
			continue
		}
		p := res.Prefix()
		_, ipnet, _ := net.ParseCIDR(p.String())
		rec := mmdbtype.Map{
			"country_code": mmdbtype.String(c.CountryCode), "state1": mmdbtype.String(c.State1), "city": mmdbtype.String(c.City),
			"latitude": mmdbtype.Float32(c.Latitude), "longitude": mmdbtype.Float32(c.Longitude),
		}
		if err := tree.Insert(ipnet, rec); err != nil {
			t.Fatalf("insert %s: %v", p, err)
		}
		n++
	}
	f, err := os.Create(filepath.Join(".", "demo-geoip.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d networks", n)
}

// TestGeoIPLocatesTheSample guards the committed file: the demo's map is
// only as good as this coverage.
func TestGeoIPLocatesTheSample(t *testing.T) {
	db, err := maxminddb.OpenBytes(GeoIP())
	if err != nil {
		t.Fatal(err)
	}
	srcs := sources(t)
	located := 0
	for _, ip := range srcs {
		var c flatCity
		if res := db.Lookup(ip); res.Found() && res.Decode(&c) == nil && c.CountryCode != "" {
			located++
		}
	}
	if len(srcs) < 100 || located*10 < len(srcs)*8 {
		t.Fatalf("located %d of %d sample sources, want at least 80%% of 100+", located, len(srcs))
	}
}
