package geo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mxgrid/mxgrid/geo/geotest"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/metrictest"
	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/internal/testenv"
)

// childEnv makes the test binary act as a second node process: it builds a
// Locator from the JSON config in the variable, looks up the addresses in
// childAddrsEnv and prints one JSON line per address.
const (
	childEnv      = "MXGRID_GEO_TEST_CHILD_CONFIG"
	childAddrsEnv = "MXGRID_GEO_TEST_CHILD_ADDRS"
)

type childResult struct {
	Addr  string   `json:"addr"`
	Layer Layer    `json:"layer"`
	Loc   Location `json:"location"`
	Err   string   `json:"err,omitempty"`
}

func TestMain(m *testing.M) {
	if cfgJSON := os.Getenv(childEnv); cfgJSON != "" {
		os.Exit(runChild(cfgJSON, os.Getenv(childAddrsEnv)))
	}
	os.Exit(m.Run())
}

func runChild(cfgJSON, addrs string) int {
	var cfg Config
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	l, err := New(cfg, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer l.Close()
	enc := json.NewEncoder(os.Stdout)
	for _, a := range strings.Fields(addrs) {
		loc, layer, err := l.Lookup(context.Background(), netip.MustParseAddr(a))
		r := childResult{Addr: a, Layer: layer, Loc: loc}
		if err != nil {
			r.Err = err.Error()
		}
		enc.Encode(r)
	}
	return 0
}

// lookupInChild runs the lookups in a separate process (the test binary
// re-executed), i.e. another node with its own LRU.
func lookupInChild(t *testing.T, cfg Config, addrs ...string) []childResult {
	t.Helper()
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(cfgJSON), childAddrsEnv+"="+strings.Join(addrs, " "))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child process: %v\n%s", err, stderr.String())
	}
	var res []childResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r childResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("child output %q: %v", sc.Text(), err)
		}
		res = append(res, r)
	}
	return res
}

// uniqueEpoch gives each test's databases a distinct version, so entries
// other tests (or earlier runs) left in the shared memcached never match.
func uniqueEpoch() int64 { return time.Now().UnixNano() / 1000 }

func newTestLocator(t testing.TB, cfg Config, opts Options) *Locator {
	t.Helper()
	// A test polls faster than a configuration may (periodic.MinInterval).
	interval := cfg.ReloadInterval
	cfg.ReloadInterval = max(interval, periodic.MinInterval)
	l, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	l.cfg.ReloadInterval = interval
	t.Cleanup(func() { l.Close() })
	return l
}

func mustLookup(t testing.TB, l *Locator, addr string) (Location, Layer) {
	t.Helper()
	loc, layer, err := l.Lookup(context.Background(), netip.MustParseAddr(addr))
	if err != nil {
		t.Fatalf("Lookup(%s): %v", addr, err)
	}
	return loc, layer
}

var (
	london = Location{Located: true, Country: "GB", CountryName: "United Kingdom", City: "London",
		Lat: 51.5142, Lon: -0.0931, AccuracyKM: 10}
	linkoping = Location{Located: true, Country: "SE", CountryName: "Sweden", City: "Linköping",
		Lat: 58.4167, Lon: 15.6167, AccuracyKM: 76}
	berlin = Location{Located: true, Country: "DE", CountryName: "Germany", City: "Berlin",
		Lat: 52.5244, Lon: 13.4105, AccuracyKM: 20}
	bhutan = Location{Located: true, Country: "BT", CountryName: "Bhutan", Lat: 27.5, Lon: 90.5, AccuracyKM: 534}
)

func withASN(loc Location, asn uint32, org string) Location {
	loc.ASN, loc.ASOrg = asn, org
	return loc
}

// noAccuracy is loc as the flat schema gives it: no accuracy radius, and
// country names from the ISO code.
func noAccuracy(loc Location) Location {
	loc.AccuracyKM = 0
	return loc
}

func TestLookupSchemas(t *testing.T) {
	dir := t.TempDir()
	city := filepath.Join(dir, "city.mmdb")
	country := filepath.Join(dir, "country.mmdb")
	flat4 := filepath.Join(dir, "dbip-city-ipv4.mmdb")
	flat6 := filepath.Join(dir, "dbip-city-ipv6.mmdb")
	asn := filepath.Join(dir, "asn.mmdb")
	geotest.WriteCity(t, city, geotest.Options{}, geotest.Known)
	var countryOnly []geotest.Record
	for _, r := range geotest.Known {
		countryOnly = append(countryOnly, geotest.Record{Network: r.Network, Country: r.Country, CountryName: r.CountryName, Registered: r.Registered})
	}
	geotest.WriteCity(t, country, geotest.Options{DatabaseType: "GeoLite2-Country"}, countryOnly)
	geotest.WriteFlat(t, flat4, geotest.Options{IPv4Only: true}, geotest.Known)
	geotest.WriteFlat(t, flat6, geotest.Options{DatabaseType: "city ipv6"}, geotest.Known)
	geotest.WriteASN(t, asn, geotest.Options{}, geotest.KnownASN)

	type probe struct {
		addr  string
		want  Location
		layer Layer
	}
	tests := []struct {
		name   string
		db     string
		asn    string
		probes []probe
	}{
		{"geoip2 city with asn", city, asn, []probe{
			{"81.2.69.142", withASN(london, 20712, "Andrews & Arnold Ltd"), LayerFile},
			{"::ffff:81.2.69.142", withASN(london, 20712, "Andrews & Arnold Ltd"), LayerFile},
			// 6to4 and NAT64 addresses are where the IPv4 address in them is.
			{"2002:5102:458e:1::9", withASN(london, 20712, "Andrews & Arnold Ltd"), LayerFile},
			{"64:ff9b::5102:458e", withASN(london, 20712, "Andrews & Arnold Ltd"), LayerFile},
			{"89.160.20.112", withASN(linkoping, 29518, "Bredband2 AB"), LayerFile},
			{"2a02:ff0::1", withASN(berlin, 4294967290, "Big ASN GmbH"), LayerFile},
			{"67.43.156.1", bhutan, LayerFile}, // registered-country fallback
			{"8.8.8.8", Location{}, LayerFile}, // unknown to the database
			{"10.1.2.3", Location{}, LayerNone},
			{"::1", Location{}, LayerNone},
		}},
		{"geoip2 country", country, "", []probe{
			{"81.2.69.142", Location{Located: true, Country: "GB", CountryName: "United Kingdom"}, LayerFile},
			{"67.43.156.1", Location{Located: true, Country: "BT", CountryName: "Bhutan"}, LayerFile},
		}},
		{"flat ipv4-only", flat4, "", []probe{
			{"81.2.69.142", noAccuracy(london), LayerFile},
			// The IPv4-only trap: a mapped address must be looked up as IPv4...
			{"::ffff:89.160.20.112", noAccuracy(linkoping), LayerFile},
			{"2002:59a0:1470::1", noAccuracy(linkoping), LayerFile},
			// ...and an IPv6 address is "unknown", not an error.
			{"2a02:ff0::1", Location{}, LayerFile},
		}},
		{"flat ipv6", flat6, asn, []probe{
			{"2a02:ff0::1", withASN(noAccuracy(berlin), 4294967290, "Big ASN GmbH"), LayerFile},
			{"81.2.69.142", withASN(noAccuracy(london), 20712, "Andrews & Arnold Ltd"), LayerFile},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Database, cfg.ASNDatabase = tt.db, tt.asn
			cfg.CacheSize = 0 // every probe reads the file
			reg := health.New()
			l := newTestLocator(t, cfg, Options{Health: reg})
			if level, conds := reg.Report(); level != health.OK {
				t.Fatalf("health %v %+v, want OK", level, conds)
			}
			for _, p := range tt.probes {
				got, layer := mustLookup(t, l, p.addr)
				if got != p.want || layer != p.layer {
					t.Errorf("Lookup(%s) = %+v from %s\n want %+v from %s", p.addr, got, layer, p.want, p.layer)
				}
			}
		})
	}
}

func TestOpenRejectsWrongKind(t *testing.T) {
	dir := t.TempDir()
	asn := filepath.Join(dir, "asn.mmdb")
	city := filepath.Join(dir, "city.mmdb")
	anon := filepath.Join(dir, "anon.mmdb")
	geotest.WriteASN(t, asn, geotest.Options{}, geotest.KnownASN)
	geotest.WriteCity(t, city, geotest.Options{}, geotest.Known)
	geotest.WriteCity(t, anon, geotest.Options{DatabaseType: "GeoIP2-Anonymous-IP"}, geotest.Known)
	tests := []struct {
		name, db, asn, wantReason string
	}{
		{"asn file as location database", asn, "", "is an ASN database"},
		{"city file as asn database", city, city, "is not an ASN database"},
		{"unsupported type", anon, "", `unsupported database type "GeoIP2-Anonymous-IP"`},
		{"missing file", filepath.Join(dir, "nope.mmdb"), "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Database, cfg.ASNDatabase = tt.db, tt.asn
			reg := health.New()
			newTestLocator(t, cfg, Options{Health: reg})
			level, conds := reg.Report()
			if level != health.Degraded || len(conds) != 1 || !strings.Contains(conds[0].Reason, tt.wantReason) {
				t.Fatalf("health %v %+v, want Degraded mentioning %q", level, conds, tt.wantReason)
			}
			// "stat /x.mmdb: stat /x.mmdb: no such file or directory"
			if n := strings.Count(conds[0].Reason, tt.db); n != 1 {
				t.Errorf("reason %q names the file %d times, want once", conds[0].Reason, n)
			}
		})
	}
}

// TestMalformedDatabaseAtStart: a broken file never crashes the node. One
// that cannot be opened is reported and lookups answer "unknown"; one whose
// metadata is intact but whose tree is not (maxminddb's Verify rejects real
// ip-location-db files over an empty description, so it cannot guard the
// load) fails only the lookups that reach the damage, with an error the
// recorder logs while it stores the event without a location.
func TestMalformedDatabaseAtStart(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mmdb")
	geotest.WriteCity(t, good, geotest.Options{}, geotest.Known)
	full, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		data     []byte
		reported bool
	}{
		{"empty", nil, true},
		{"garbage", bytes.Repeat([]byte("not an mmdb file \x00\xff"), 500), true},
		{"truncated", full[:len(full)/2], true},
		{"metadata only", full[len(full)-200:], true},
		{"corrupted tree", append(bytes.Repeat([]byte{0xff}, len(full)/2), full[len(full)/2:]...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".mmdb")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.Database = path
			reg := health.New()
			l := newTestLocator(t, cfg, Options{Health: reg})
			level, conds := reg.Report()
			if tt.reported && (level != health.Degraded || len(conds) != 1 || conds[0].Reason == "") {
				t.Fatalf("health %v %+v, want Degraded with a reason", level, conds)
			}
			for _, ip := range []string{"81.2.69.142", "8.8.8.8", "2001:4860::1"} {
				_, layer, err := l.Lookup(context.Background(), netip.MustParseAddr(ip))
				if tt.reported && (err != nil || layer != LayerNone) {
					t.Errorf("lookup %s: layer %s, %v; want none, no error", ip, layer, err)
				}
			}
		})
	}
}

// TestNoDatabase: the node runs, says so once in the log and in /readyz.
func TestNoDatabase(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	reg := health.New()
	cfg := DefaultConfig()
	cfg.ReloadInterval = time.Millisecond
	l := newTestLocator(t, cfg, Options{Health: reg, Logger: log, NoEmbedded: true})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	for range 5 {
		if loc, layer := mustLookup(t, l, "81.2.69.142"); layer != LayerNone || loc != (Location{}) {
			t.Fatalf("got %+v from %s, want nothing from none", loc, layer)
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	level, conds := reg.Report()
	if level != health.Degraded || len(conds) != 1 || conds[0].Component != HealthDatabase ||
		!strings.Contains(conds[0].Reason, "no GeoIP database configured (geo.database)") {
		t.Fatalf("health %v %+v", level, conds)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "no GeoIP database configured"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// TestReloadWithoutFailedLookups replaces the file again and again while
// lookups run: none may fail or see a half-swapped state, and once a swap
// is done the old file's lookups have all finished before it is closed.
func TestReloadWithoutFailedLookups(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "city.mmdb")
	paris := geotest.Record{Network: "81.2.69.0/24", Country: "FR", CountryName: "France", City: "Paris", Lat: 48.8566, Lon: 2.3522, AccuracyKM: 5}
	geotest.WriteCity(t, path, geotest.Options{BuildEpoch: 1}, geotest.Known)

	cfg := DefaultConfig()
	cfg.Database = path
	cfg.CacheSize = 0 // every lookup reads the file
	cfg.ReloadInterval = time.Millisecond
	reg := prometheus.NewRegistry()
	l := newTestLocator(t, cfg, Options{Registerer: reg})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)

	var stop atomic.Bool
	var lookups, parisSeen atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				loc, layer, err := l.Lookup(context.Background(), netip.MustParseAddr("81.2.69.142"))
				switch {
				case err != nil:
					errs <- err
					return
				case layer != LayerFile || (loc.City != "London" && loc.City != "Paris"):
					errs <- fmt.Errorf("lookup during reload: %+v from %s", loc, layer)
					return
				case loc.City == "Paris":
					parisSeen.Add(1)
				}
				lookups.Add(1)
			}
		})
	}
	const swaps = 10
	for i := range swaps {
		recs := geotest.Known
		if i%2 == 0 {
			recs = []geotest.Record{paris}
		}
		old := l.location.cur.Load()
		geotest.WriteCity(t, path, geotest.Options{BuildEpoch: int64(i + 2)}, recs)
		waitFor(t, "reload", func() bool { return l.location.cur.Load() != old })
		// Retire follows the swap, once the lookups that hold old finish.
		waitFor(t, "replaced database closed", func() bool {
			old.mu.RLock()
			defer old.mu.RUnlock()
			return old.closed
		})
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if parisSeen.Load() == 0 || lookups.Load() == parisSeen.Load() {
		t.Fatalf("lookups did not see both files (%d lookups, %d Paris)", lookups.Load(), parisSeen.Load())
	}
	if got := metrictest.CounterOf(t, reg, "mxgrid_geo_database_loads_total", map[string]string{"database": "location", "result": "ok"}); got != swaps+1 {
		t.Fatalf("loads ok = %v, want %d", got, swaps+1)
	}

	// A broken replacement keeps the previous file serving.
	if err := os.WriteFile(path+".tmp", []byte("not an mmdb"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failed reload", func() bool {
		return metrictest.CounterOf(t, reg, "mxgrid_geo_database_loads_total", map[string]string{"database": "location", "result": "error"}) == 1
	})
	if loc, _ := mustLookup(t, l, "81.2.69.142"); !loc.Located {
		t.Fatal("broken replacement stopped the previous file from serving")
	}
}

// TestRetireWaitsForInFlightLookups: the old file is unmapped only after
// the lookups holding it release it.
func TestRetireWaitsForInFlightLookups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	geotest.WriteCity(t, path, geotest.Options{}, geotest.Known)
	d, err := openDatabase(path, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !d.acquire() {
		t.Fatal("fresh database refused acquire")
	}
	retired := make(chan error)
	go func() { retired <- d.retire() }()
	// The lookup in flight still reads the mapped file.
	for range 100 {
		var loc Location
		if err := d.locate(netip.MustParseAddr("81.2.69.142"), &loc); err != nil || loc.City != "London" {
			t.Fatalf("in-flight lookup during retire: %+v, %v", loc, err)
		}
		select {
		case err := <-retired:
			t.Fatalf("retire returned (%v) while a lookup held the database", err)
		default:
		}
	}
	d.release()
	if err := <-retired; err != nil {
		t.Fatal(err)
	}
	if d.acquire() {
		t.Fatal("retired database accepted a new lookup")
	}
}

// TestDatabaseAppearsLater: a configured file that is missing at start is
// picked up when it appears, and health recovers.
func TestDatabaseAppearsLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	cfg := DefaultConfig()
	cfg.Database = path
	cfg.ReloadInterval = time.Millisecond
	reg := health.New()
	l := newTestLocator(t, cfg, Options{Health: reg})
	if level, _ := reg.Report(); level != health.Degraded {
		t.Fatalf("missing file: health %v, want degraded", level)
	}
	if _, layer := mustLookup(t, l, "81.2.69.142"); layer != LayerNone {
		t.Fatalf("layer %s without a database", layer)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	geotest.WriteCity(t, path, geotest.Options{}, geotest.Known)
	waitFor(t, "database load", func() bool { level, _ := reg.Report(); return level == health.OK })
	if loc, _ := mustLookup(t, l, "81.2.69.142"); loc != london {
		t.Fatalf("after load: %+v", loc)
	}
	if infos := l.Databases(); len(infos) != 1 || !infos[0].Loaded || infos[0].Schema != "geoip2" {
		t.Fatalf("Databases() = %+v", infos)
	}
}

// counterValue reads a counter (prometheus/testutil would pull a module
// go.mod does not list).
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMemcachedSharedBetweenProcesses is the cluster story: node A reads
// the file and fills memcached; node B, another process with a cold LRU,
// finds the entry there, positive and negative alike.
func TestMemcachedSharedBetweenProcesses(t *testing.T) {
	server := testenv.Memcached(t)
	path := filepath.Join(t.TempDir(), "city.mmdb")
	geotest.WriteCity(t, path, geotest.Options{BuildEpoch: uniqueEpoch()}, geotest.Known)
	cfg := DefaultConfig()
	cfg.Database = path
	cfg.Memcached = []string{server}
	cfg.MemcachedTimeout = time.Second // a loaded CI machine must not turn hits into skips

	reg := prometheus.NewRegistry()
	a := newTestLocator(t, cfg, Options{Registerer: reg})
	for _, tc := range []struct {
		addr  string
		want  Location
		layer Layer
	}{
		{"81.2.69.142", london, LayerFile},
		{"81.2.69.142", london, LayerLRU},
		{"8.8.8.8", Location{}, LayerFile},
		{"8.8.8.8", Location{}, LayerLRU},
	} {
		if loc, layer := mustLookup(t, a, tc.addr); loc != tc.want || layer != tc.layer {
			t.Fatalf("node A %s: %+v from %s, want %+v from %s", tc.addr, loc, layer, tc.want, tc.layer)
		}
	}
	if got := counterValue(a.m.lookups[layerIndex(LayerMemcached)][outMiss]); got != 2 {
		t.Fatalf("node A memcached misses = %v, want 2", got)
	}

	res := lookupInChild(t, cfg, "81.2.69.142", "8.8.8.8", "89.160.20.112")
	want := []childResult{
		{Addr: "81.2.69.142", Layer: LayerMemcached, Loc: london},
		{Addr: "8.8.8.8", Layer: LayerMemcached}, // negative entry
		{Addr: "89.160.20.112", Layer: LayerFile, Loc: linkoping},
	}
	if len(res) != len(want) {
		t.Fatalf("child results %+v", res)
	}
	for i := range want {
		if res[i] != want[i] {
			t.Errorf("node B %s: %+v, want %+v", want[i].Addr, res[i], want[i])
		}
	}
	// And A now finds what B read from its file.
	a2 := newTestLocator(t, cfg, Options{})
	if loc, layer := mustLookup(t, a2, "89.160.20.112"); loc != linkoping || layer != LayerMemcached {
		t.Fatalf("fresh node: %+v from %s", loc, layer)
	}
}

// TestMemcachedFailures: a killed or hung memcached never fails a lookup;
// the file answers, health says Degraded, and the node recovers when the
// server comes back.
func TestMemcachedFailures(t *testing.T) {
	addr, stop := testenv.StartMemcached(t)
	path := filepath.Join(t.TempDir(), "city.mmdb")
	geotest.WriteCity(t, path, geotest.Options{BuildEpoch: uniqueEpoch()}, geotest.Known)
	cfg := DefaultConfig()
	cfg.Database = path
	cfg.CacheSize = 0 // make every lookup go to memcached
	cfg.Memcached = []string{addr}
	cfg.MemcachedTimeout = 200 * time.Millisecond
	reg := health.New()
	l := newTestLocator(t, cfg, Options{Health: reg})

	if _, layer := mustLookup(t, l, "81.2.69.142"); layer != LayerFile {
		t.Fatalf("first lookup from %s", layer)
	}
	if _, layer := mustLookup(t, l, "81.2.69.142"); layer != LayerMemcached {
		t.Fatalf("second lookup from %s", layer)
	}

	stop() // killed mid-test
	for _, a := range []string{"81.2.69.142", "89.160.20.112", "2a02:ff0::1", "81.2.69.142"} {
		loc, layer := mustLookup(t, l, a)
		if !loc.Located || layer != LayerFile {
			t.Fatalf("with memcached dead, %s: %+v from %s", a, loc, layer)
		}
	}
	level, conds := reg.Report()
	if level != health.Degraded || len(conds) != 1 || conds[0].Component != HealthMemcached ||
		!strings.Contains(conds[0].Reason, addr) {
		t.Fatalf("health %v %+v", level, conds)
	}
	if got := counterValue(l.m.lookups[layerIndex(LayerMemcached)][outSkipped]); got < 1 {
		t.Fatalf("lookups during backoff were not skipped (skipped = %v)", got)
	}

	// Back on the same port: after the backoff the server is used again.
	testenv.StartMemcachedAt(t, addr)
	waitFor(t, "memcached recovery", func() bool {
		mustLookup(t, l, "81.2.69.142")
		level, _ := reg.Report()
		return level == health.OK
	})
}

// TestMemcachedHung: a server that accepts connections but never answers
// costs one timeout, then is skipped.
func TestMemcachedHung(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns sync.WaitGroup
	var held []net.Conn
	var mu sync.Mutex
	conns.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // read nothing, answer nothing
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		conns.Wait()
		for _, c := range held {
			c.Close()
		}
	})

	path := filepath.Join(t.TempDir(), "city.mmdb")
	geotest.WriteCity(t, path, geotest.Options{}, geotest.Known)
	cfg := DefaultConfig()
	cfg.Database = path
	cfg.CacheSize = 0
	cfg.Memcached = []string{ln.Addr().String()}
	cfg.MemcachedTimeout = 20 * time.Millisecond
	l := newTestLocator(t, cfg, Options{})
	for range 20 {
		loc, layer := mustLookup(t, l, "81.2.69.142")
		if loc != london || layer != LayerFile {
			t.Fatalf("%+v from %s", loc, layer)
		}
	}
	errorsSeen := counterValue(l.m.lookups[layerIndex(LayerMemcached)][outError])
	skipped := counterValue(l.m.lookups[layerIndex(LayerMemcached)][outSkipped])
	if errorsSeen != 1 || skipped != 19 {
		t.Fatalf("memcached errors %v, skipped %v; want 1 timeout then 19 skips", errorsSeen, skipped)
	}
}

func TestLookupAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	geotest.WriteCity(t, path, geotest.Options{}, geotest.Known)
	cfg := DefaultConfig()
	cfg.Database = path
	cfg.CacheSize = 0
	l, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, layer, err := l.Lookup(context.Background(), netip.MustParseAddr("81.2.69.142")); layer != LayerNone || err != nil {
		t.Fatalf("after Close: %s, %v", layer, err)
	}
}

var errSink error

// BenchmarkLookup reports ns/op per layer: an LRU hit, a memcached hit
// (LRU off) and a file lookup (both caches off) for each schema.
func BenchmarkLookup(b *testing.B) {
	dir := b.TempDir()
	city := filepath.Join(dir, "city.mmdb")
	flat := filepath.Join(dir, "flat.mmdb")
	geotest.WriteCity(b, city, geotest.Options{BuildEpoch: uniqueEpoch()}, geotest.Known)
	geotest.WriteFlat(b, flat, geotest.Options{IPv4Only: true}, geotest.Known)
	addr := netip.MustParseAddr("81.2.69.142")
	run := func(b *testing.B, l *Locator, want Layer) {
		ctx := context.Background()
		if _, _, err := l.Lookup(ctx, addr); err != nil { // warm the caches
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			_, layer, err := l.Lookup(ctx, addr)
			if err != nil || layer != want {
				b.Fatalf("%s, %v; want %s", layer, err, want)
			}
			errSink = err
		}
	}
	b.Run("lru-hit", func(b *testing.B) {
		cfg := DefaultConfig()
		cfg.Database = city
		run(b, newTestLocator(b, cfg, Options{}), LayerLRU)
	})
	b.Run("memcached-hit", func(b *testing.B) {
		cfg := DefaultConfig()
		cfg.Database = city
		cfg.CacheSize = 0
		cfg.Memcached = []string{testenv.Memcached(b)}
		cfg.MemcachedTimeout = time.Second
		run(b, newTestLocator(b, cfg, Options{}), LayerMemcached)
	})
	for _, db := range []struct{ name, path string }{{"geoip2", city}, {"flat", flat}} {
		b.Run("file-"+db.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Database = db.path
			cfg.CacheSize = 0
			run(b, newTestLocator(b, cfg, Options{}), LayerFile)
		})
	}
}

// TestDatabaseRewrittenInPlace: the database is mapped into memory, and a
// file rewritten in place rather than renamed over (cp, a download tool
// writing to the path, an editor) is cut short under the mapping: a
// lookup reading past its new end took a SIGBUS, which Go cannot recover
// from, and the whole node died, mail flow with it. Such a lookup now
// fails (the event is stored without location), and the watcher loads the
// file once it is whole again.
func TestDatabaseRewrittenInPlace(t *testing.T) {
	dir := t.TempDir()
	paris := geotest.Record{Network: "81.2.69.0/24", Country: "FR", CountryName: "France", City: "Paris", Lat: 48.8566, Lon: 2.3522, AccuracyKM: 5}
	next := filepath.Join(dir, "next.mmdb")
	geotest.WriteCity(t, next, geotest.Options{BuildEpoch: 2}, []geotest.Record{paris})
	newBytes, err := os.ReadFile(next)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		size int64 // the file's length while the lookups run
	}{
		{"emptied", 0},
		{"cut to a page", 4096},
		{"cut in half", -2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".mmdb")
			geotest.WriteCity(t, path, geotest.Options{BuildEpoch: 1}, geotest.Known)
			cfg := DefaultConfig()
			cfg.Database = path
			cfg.CacheSize = 0 // every lookup reads the file
			l := newTestLocator(t, cfg, Options{})
			if loc, _ := mustLookup(t, l, "81.2.69.142"); loc.City != "London" {
				t.Fatalf("before: %+v", loc)
			}
			size := tc.size
			if size < 0 {
				fi, _ := os.Stat(path)
				size = fi.Size() / -size
			}
			if err := os.Truncate(path, size); err != nil {
				t.Fatal(err)
			}
			for _, ip := range []string{"81.2.69.142", "8.8.8.8", "2001:4860::1", "175.16.199.1"} {
				// An error or any answer; the test binary dies here without
				// the fix.
				l.Lookup(context.Background(), netip.MustParseAddr(ip))
			}
			// The rest of the copy arrives, into the same file.
			if err := os.WriteFile(path, newBytes, 0o600); err != nil {
				t.Fatal(err)
			}
			l.location.load(l)
			if loc, _ := mustLookup(t, l, "81.2.69.142"); loc.City != "Paris" {
				t.Fatalf("after the file was whole again: %+v", loc)
			}
		})
	}
}

// TestFileNotServingIsReported: a database replaced by one that does not
// load is counted and named in /readyz (geo, degraded) while the previous
// one serves, for either database, and the condition goes once a good file
// is loaded. Before, with a previous file serving, only the log said so.
func TestFileNotServingIsReported(t *testing.T) {
	tests := []struct {
		kind  string
		write func(t *testing.T, path string, epoch int64)
	}{
		{"location", func(t *testing.T, path string, epoch int64) {
			geotest.WriteCity(t, path, geotest.Options{BuildEpoch: epoch}, geotest.Known)
		}},
		{"asn", func(t *testing.T, path string, epoch int64) {
			geotest.WriteASN(t, path, geotest.Options{BuildEpoch: epoch}, geotest.KnownASN)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			dir := t.TempDir()
			cfg := DefaultConfig()
			cfg.Database, cfg.ASNDatabase = filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
			cfg.ReloadInterval = time.Millisecond
			geotest.WriteCity(t, cfg.Database, geotest.Options{BuildEpoch: 1}, geotest.Known)
			geotest.WriteASN(t, cfg.ASNDatabase, geotest.Options{BuildEpoch: 1}, geotest.KnownASN)
			path := map[string]string{"location": cfg.Database, "asn": cfg.ASNDatabase}[tt.kind]
			reg, h := prometheus.NewRegistry(), health.New()
			l := newTestLocator(t, cfg, Options{Registerer: reg, Health: h})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { l.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			loads := func(result string) float64 {
				return metrictest.CounterOf(t, reg, "mxgrid_geo_database_loads_total", map[string]string{"database": tt.kind, "result": result})
			}
			geoCondition := func() *health.Condition {
				_, conds := h.Report()
				for i := range conds {
					if conds[i].Component == HealthDatabase {
						return &conds[i]
					}
				}
				return nil
			}

			// A download cut short, renamed into place.
			tt.write(t, path+".next", 2)
			b, err := os.ReadFile(path + ".next")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".tmp", b[:len(b)/2], 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".tmp", path); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "degraded", func() bool { return geoCondition() != nil })
			cond := geoCondition()
			if cond.Level != "degraded" || !strings.Contains(cond.Reason, "GeoIP "+tt.kind+" database not loaded: ") || !strings.Contains(cond.Reason, path) ||
				!strings.Contains(cond.Reason, "still in force") {
				t.Fatalf("/readyz condition %+v; want degraded, naming the %s database %s", cond, tt.kind, path)
			}
			if n := loads("error"); n != 1 {
				t.Errorf("loads_total{result=error} = %v, want 1", n)
			}

			if err := os.Rename(path+".next", path); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "condition cleared", func() bool { return geoCondition() == nil })
			if n := loads("ok"); n != 2 {
				t.Errorf("loads_total{result=ok} = %v, want 2 (start, the good file)", n)
			}
			for _, f := range []*dbFile{&l.location, &l.asn} {
				if d := f.cur.Load(); f.kind == tt.kind && d.db.Metadata.BuildEpoch != 2 {
					t.Errorf("condition cleared with the %s database of epoch %d serving", f.kind, d.db.Metadata.BuildEpoch)
				}
			}
		})
	}
}
