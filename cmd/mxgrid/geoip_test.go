package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/mxgrid/mxgrid/geo"
	"github.com/mxgrid/mxgrid/geo/geotest"
	"github.com/mxgrid/mxgrid/internal/testenv"
)

type geoipLine struct {
	IP       string       `json:"ip"`
	Layer    geo.Layer    `json:"layer"`
	Location geo.Location `json:"location"`
}

// geoipLookup runs the built binary: a separate process, like another node.
func geoipLookup(t *testing.T, cfgPath string, ips ...string) []geoipLine {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"geoip", "lookup", "--config", cfgPath, "--json"}, ips...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mxgrid geoip lookup: %v\n%s", err, stderr.String())
	}
	var lines []geoipLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var l geoipLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

func geoipConfig(t *testing.T, memcached string) string {
	t.Helper()
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	// A build epoch of its own: entries other runs left in the shared
	// memcached belong to other database versions and never match.
	epoch := time.Now().UnixNano() / 1000
	geotest.WriteCity(t, city, geotest.Options{BuildEpoch: epoch}, geotest.Known)
	geotest.WriteASN(t, asn, geotest.Options{BuildEpoch: epoch}, geotest.KnownASN)
	return writeConfig(t, fmt.Sprintf("geo:\n  database: %s\n  asn_database: %s\n  memcached: [%q]\n  memcached_timeout: 1s\n", city, asn, memcached))
}

func layers(lines []geoipLine) string {
	var out []string
	for _, l := range lines {
		out = append(out, l.IP+"="+string(l.Layer))
	}
	return strings.Join(out, " ")
}

// TestGeoIPLookupSharesMemcached: the first process reads the file and
// fills memcached; a second process finds the entries there.
func TestGeoIPLookupSharesMemcached(t *testing.T) {
	cfg := geoipConfig(t, testenv.Memcached(t))
	ips := []string{"81.2.69.142", "8.8.8.8", "10.1.2.3", "::ffff:89.160.20.112"}
	first := geoipLookup(t, cfg, ips...)
	if got, want := layers(first), "81.2.69.142=file 8.8.8.8=file 10.1.2.3=none 89.160.20.112=file"; got != want {
		t.Fatalf("first process: %s, want %s", got, want)
	}
	second := geoipLookup(t, cfg, ips...)
	if got, want := layers(second), "81.2.69.142=memcached 8.8.8.8=memcached 10.1.2.3=none 89.160.20.112=memcached"; got != want {
		t.Fatalf("second process: %s, want %s", got, want)
	}
	for i := range first {
		if first[i].Location != second[i].Location {
			t.Errorf("%s: file gave %+v, memcached %+v", first[i].IP, first[i].Location, second[i].Location)
		}
	}
	if l := first[0].Location; l.City != "London" || l.ASN != 20712 || l.AccuracyKM != 10 {
		t.Errorf("81.2.69.142: %+v", l)
	}
}

// TestGeoIPLookupWithMemcachedDead: the answer comes from the file.
func TestGeoIPLookupWithMemcachedDead(t *testing.T) {
	addr, stop := testenv.StartMemcached(t)
	cfg := geoipConfig(t, addr)
	stop()
	lines := geoipLookup(t, cfg, "81.2.69.142")
	if len(lines) != 1 || lines[0].Layer != geo.LayerFile || lines[0].Location.City != "London" {
		t.Fatalf("with memcached dead: %+v", lines)
	}
}

func TestGeoIPLookupText(t *testing.T) {
	cfg := geoipConfig(t, testenv.Memcached(t))
	out, err := exec.Command(binary, "geoip", "lookup", "--config", cfg, "81.2.69.142", "10.0.0.1").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# location database ", "GeoLite2-City (geoip2 schema)", "# asn database ",
		"81.2.69.142\tGB United Kingdom, London (51.5142, -0.0931) ±10 km\tAS20712 Andrews & Arnold Ltd\t[file]",
		"10.0.0.1\tnot looked up: not a public address\t[none]",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if err := exec.Command(binary, "geoip", "lookup", "not-an-ip").Run(); err == nil {
		t.Error("a bad address was accepted")
	}
}

// TestGeoIPLookupTextShowsOnlyVisibleText: a network's AS name is what its
// holder registered, and a spammer's network is the one an operator looks
// up. An ESC in it reached the operator's terminal, and a tab shifted the
// columns; they are spelled out as the admin tables spell them.
func TestGeoIPLookupTextShowsOnlyVisibleText(t *testing.T) {
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	geotest.WriteCity(t, city, geotest.Options{}, []geotest.Record{{Network: "81.2.69.0/24", Country: "GB", CountryName: "United\tKingdom",
		City: "Lon\u009b2Jdon", Lat: 51.5, Lon: -0.1}})
	geotest.WriteASN(t, asn, geotest.Options{}, []geotest.ASN{{Network: "81.2.69.0/24", Number: 64500, Org: "Bulk\x1b]0;pwned\a\x1b[2J Hosting\u202e"}})
	cfg := writeConfig(t, fmt.Sprintf("geo:\n  database: %s\n  asn_database: %s\n", city, asn))
	out, err := exec.Command(binary, "geoip", "lookup", "--config", cfg, "81.2.69.142").Output()
	if err != nil {
		t.Fatal(err)
	}
	last := strings.TrimSuffix(string(out), "\n")
	last = last[strings.LastIndexByte(last, '\n')+1:]
	if strings.ContainsFunc(last, func(r rune) bool { return !unicode.IsGraphic(r) && r != '\t' }) {
		t.Errorf("output holds a character the terminal acts on: %q", last)
	}
	if want := "81.2.69.142\tGB United\\tKingdom, Lon\\u009b2Jdon (51.5000, -0.1000)\tAS64500 Bulk\\x1b]0;pwned\\a\\x1b[2J Hosting\\u202e\t[file]"; last != want {
		t.Errorf("output %q\nwant     %q", last, want)
	}
}

// TestGeoIPLookupCountryOnly: with the embedded country database (no
// geo.database) an answer has a country and no coordinates; the text
// showed "(0.0000, 0.0000)", a place in the sea off West Africa.
func TestGeoIPLookupCountryOnly(t *testing.T) {
	out, err := exec.Command(binary, "geoip", "lookup", "8.8.8.8").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "8.8.8.8\tUS United States\t[file]") {
		t.Errorf("output lacks the country alone:\n%s", out)
	}
}
