package geo

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

func TestConfigValidate(t *testing.T) {
	withMC := func(f func(*Config)) Config {
		c := DefaultConfig()
		c.Memcached = []string{"127.0.0.1:11211"}
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring naming the key; "" = valid
	}{
		{"default", DefaultConfig(), ""},
		{"with memcached", withMC(func(*Config) {}), ""},
		{"cache disabled", func() Config { c := DefaultConfig(); c.CacheSize = 0; return c }(), ""},
		{"negative cache", func() Config { c := DefaultConfig(); c.CacheSize = -1; return c }(), "cache_size"},
		{"no reload interval", func() Config { c := DefaultConfig(); c.ReloadInterval = 0; return c }(), "reload_interval"},
		// A stat of both files, their state and the geo condition each
		// tick: at 1ns a core was busy for good, where the model's
		// model_reload_interval, the same kind of loop, takes 100ms.
		{"reload interval that spins", func() Config { c := DefaultConfig(); c.ReloadInterval = time.Nanosecond; return c }(), "reload_interval"},
		{"reload interval just under the least", func() Config { c := DefaultConfig(); c.ReloadInterval = 99 * time.Millisecond; return c }(), "reload_interval"},
		{"reload interval at the least", func() Config { c := DefaultConfig(); c.ReloadInterval = 100 * time.Millisecond; return c }(), ""},
		{"bad server", withMC(func(c *Config) { c.Memcached = []string{"localhost"} }), "memcached[0]"},
		{"bad port", withMC(func(c *Config) { c.Memcached = append(c.Memcached, "h:99999") }), "memcached[1]"},
		{"no timeout", withMC(func(c *Config) { c.MemcachedTimeout = 0 }), "memcached_timeout"},
		{"ttl over memcached's limit", withMC(func(c *Config) { c.TTL = 31 * 24 * time.Hour }), "ttl"},
		{"negative ttl too short", withMC(func(c *Config) { c.NegativeTTL = time.Millisecond }), "negative_ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one starting with %q", err, tt.wantErr)
			}
		})
	}
}

func TestPublic(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"81.2.69.142", true},
		{"2a02:ff0::1", true},
		{"::ffff:81.2.69.142", true},
		{"10.1.2.3", false},
		{"::ffff:10.1.2.3", false},
		{"172.16.0.1", false},
		{"172.32.0.1", true},
		{"192.168.1.1", false},
		{"100.64.0.1", false}, // CGNAT
		{"100.128.0.1", true},
		{"127.0.0.1", false},
		{"169.254.1.1", false},
		{"192.0.2.1", false},
		{"198.51.100.7", false},
		{"203.0.113.9", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"0.1.2.3", false},
		{"::1", false},
		{"::", false},
		{"2001:db8::1", false},
		{"fd00::1", false},
		{"fe80::1", false},
		{"ff02::1", false},
		// Not public in IPv6 dress either: each was looked up and, as a
		// trusted relay's internal hop, recorded as the spam's source.
		{"fe80::1%eth0", false},
		{"fec0::1", false},           // site-local
		{"2002:a01:203::1", false},   // 6to4 of 10.1.2.3
		{"64:ff9b::a01:203", false},  // NAT64 of 10.1.2.3
		{"::ffff:0:a01:203", false},  // IPv4-translated
		{"2002:5102:458e::1", true},  // 6to4 of 81.2.69.142
		{"64:ff9b::5102:458e", true}, // NAT64 of 81.2.69.142
		// A Teredo client (RFC 4380) is an internet host behind a NAT, not
		// a relay's internal hop (netguard reserves 2001::/23 for routes).
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", true},
	}
	for _, tt := range tests {
		if got := Public(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Public(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if Public(netip.Addr{}) {
		t.Error("the zero Addr is public")
	}
}

func TestDetectSchema(t *testing.T) {
	tests := []struct {
		dbType string
		want   schema
	}{
		{"GeoLite2-City", schemaGeoIP2},
		{"GeoIP2-City", schemaGeoIP2},
		{"GeoLite2-Country", schemaGeoIP2},
		{"DBIP-City-Lite", schemaGeoIP2},
		{"DBIP-Location (compat=City)", schemaGeoIP2},
		{"city ipv4", schemaFlat},
		{"city ipv6", schemaFlat},
		{"country ipv4", schemaFlat},
		{"asn ipv4", schemaASN},
		{"GeoLite2-ASN", schemaASN},
		{"DBIP-ASN-Lite (compat=GeoLite2-ASN)", schemaASN},
		{"GeoIP2-Anonymous-IP", 0},
		{"", 0},
	}
	for _, tt := range tests {
		got, err := detectSchema(tt.dbType)
		if got != tt.want || (tt.want == 0) != (err != nil) {
			t.Errorf("detectSchema(%q) = %v, %v; want %v", tt.dbType, got, err, tt.want)
		}
	}
}

func TestLocationEncoding(t *testing.T) {
	tests := []struct {
		name string
		loc  Location
		size int // encoded bytes, to keep the cache compact
	}{
		{"negative", Location{}, 2},
		{"city", Location{Located: true, Country: "GB", CountryName: "United Kingdom", City: "London",
			Lat: 51.5142, Lon: -0.0931, AccuracyKM: 10}, 34},
		{"asn only", Location{ASN: 4294967295, ASOrg: "X"}, 9},
		{"everything", Location{Located: true, Country: "DE", CountryName: "Germany", City: "Berlin",
			Lat: -90, Lon: 180, AccuracyKM: 1000, ASN: 3320, ASOrg: "Deutsche Telekom AG"}, 51},
		{"coordinates without country", Location{Located: true, Lat: 27.5, Lon: 90.5, AccuracyKM: 534}, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeLocation(tt.loc)
			if len(b) != tt.size {
				t.Errorf("encoded size %d, want %d", len(b), tt.size)
			}
			got, err := decodeLocation(b)
			if err != nil || got != tt.loc {
				t.Fatalf("round trip: %+v, %v; want %+v", got, err, tt.loc)
			}
			for i := range b {
				if _, err := decodeLocation(b[:i]); err == nil {
					t.Fatalf("truncated to %d bytes decoded without error", i)
				}
			}
			if _, err := decodeLocation(append(b, 0)); err == nil {
				t.Fatal("trailing garbage decoded without error")
			}
		})
	}
}

func FuzzDecodeLocation(f *testing.F) {
	f.Add(encodeLocation(Location{Located: true, Country: "GB", City: "London", Lat: 1, Lon: 2, ASN: 5, ASOrg: "x"}))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		loc, err := decodeLocation(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to something that decodes the same.
		again, err := decodeLocation(encodeLocation(loc))
		if err != nil || again != loc {
			t.Fatalf("re-encode of %+v: %+v, %v", loc, again, err)
		}
	})
}

// TestRendezvousRemapsOnlyTheLostServer checks the property gomemcache's
// crc32 ServerList lacks: taking one of three servers out moves only the
// keys that lived on it.
func TestRendezvousRemapsOnlyTheLostServer(t *testing.T) {
	r, err := newRendezvous([]string{"127.0.0.1:11311", "127.0.0.1:11312", "127.0.0.1:11313"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	r.now = func() time.Time { return now }
	const keys = 3000
	before := make([]string, keys)
	perServer := map[string]int{}
	for i := range keys {
		a, err := r.PickServer(fmt.Sprintf("mxgrid:geo:1:v:81.2.%d.%d", i/256, i%256))
		if err != nil {
			t.Fatal(err)
		}
		before[i] = a.String()
		perServer[a.String()]++
	}
	for s, n := range perServer {
		if n < keys/3-200 || n > keys/3+200 {
			t.Errorf("server %s got %d of %d keys: uneven spread", s, n, keys)
		}
	}

	lost := staticAddr{"tcp", "127.0.0.1:11312"}
	if !r.failed(lost, fmt.Errorf("boom")) {
		t.Fatal("first failure did not report the transition to down")
	}
	moved := 0
	for i := range keys {
		a, _ := r.PickServer(fmt.Sprintf("mxgrid:geo:1:v:81.2.%d.%d", i/256, i%256))
		if a.String() == lost.String() {
			t.Fatal("a backing-off server was picked")
		}
		if a.String() != before[i] {
			moved++
			if before[i] != lost.String() {
				t.Fatalf("key %d moved from a live server %s", i, before[i])
			}
		}
	}
	if moved != perServer[lost.String()] {
		t.Fatalf("moved %d keys, want exactly the lost server's %d", moved, perServer[lost.String()])
	}

	// Backoff: out for 1 s after the first failure, 2 s after the second.
	now = now.Add(mcBackoffMin)
	if !r.servers[1].available(now) {
		t.Fatal("server still out after its backoff")
	}
	if r.failed(lost, fmt.Errorf("again")) {
		t.Fatal("second failure reported as a new outage")
	}
	if r.servers[1].available(now.Add(2*mcBackoffMin - time.Millisecond)) {
		t.Fatal("backoff did not double")
	}
	if !r.succeeded(lost) || len(r.down()) != 0 {
		t.Fatal("success did not clear the outage")
	}

	for _, s := range []string{"127.0.0.1:11311", "127.0.0.1:11312", "127.0.0.1:11313"} {
		r.failed(staticAddr{"tcp", s}, fmt.Errorf("x"))
	}
	if _, err := r.PickServer("k"); err != memcache.ErrNoServers {
		t.Fatalf("all servers out: err = %v, want ErrNoServers", err)
	}
	var each []string
	r.Each(func(a net.Addr) error { each = append(each, a.String()); return nil })
	if len(each) != 3 {
		t.Fatalf("Each visited %v, want all three servers", each)
	}
}

func TestLRU(t *testing.T) {
	c := newLRU(2)
	a, b, d := netip.MustParseAddr("81.2.69.1"), netip.MustParseAddr("81.2.69.2"), netip.MustParseAddr("81.2.69.3")
	c.put(a, "v1", Location{City: "a"})
	c.put(b, "v1", Location{City: "b"})
	if _, ok := c.get(a, "v1"); !ok { // a is now most recent
		t.Fatal("a missing")
	}
	c.put(d, "v1", Location{City: "d"}) // evicts b
	if _, ok := c.get(b, "v1"); ok {
		t.Fatal("b not evicted")
	}
	if loc, ok := c.get(a, "v1"); !ok || loc.City != "a" {
		t.Fatal("a evicted instead of b")
	}
	if _, ok := c.get(a, "v2"); ok {
		t.Fatal("entry of another database version returned")
	}
	c.put(a, "v2", Location{City: "a2"})
	if loc, ok := c.get(a, "v2"); !ok || loc.City != "a2" || c.len() != 2 {
		t.Fatalf("update in place: %+v %v len %d", loc, ok, c.len())
	}
}
