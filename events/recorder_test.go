package events

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/geo"
	"github.com/mxgrid/mxgrid/geo/geotest"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/metrictest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/store"
)

func TestConfigValidate(t *testing.T) {
	mod := func(f func(*Config)) Config { c := DefaultConfig(); f(&c); return c }
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"default", DefaultConfig(), ""},
		{"trusted cidrs and addresses", mod(func(c *Config) { c.TrustedRelays = []string{"192.0.2.0/24", "2001:db8::/32", "198.51.100.7"} }), ""},
		{"bad trusted", mod(func(c *Config) { c.TrustedRelays = []string{"192.0.2.0/24", "relay.example"} }), "trusted_relays[1]"},
		{"zero buffer", mod(func(c *Config) { c.Buffer = 0 }), "buffer"},
		{"tiny retention", mod(func(c *Config) { c.Retention = time.Minute }), "retention"},
		{"zero batch", mod(func(c *Config) { c.BatchSize = 0 }), "batch_size"},
		{"zero flush", mod(func(c *Config) { c.FlushInterval = 0 }), "flush_interval"},
		{"zero prune", mod(func(c *Config) { c.PruneInterval = 0 }), "prune_interval"},
		{"zero shutdown", mod(func(c *Config) { c.ShutdownTimeout = 0 }), "shutdown_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one starting with %q", err, tt.wantErr)
			}
		})
	}
	p, err := Config{TrustedRelays: []string{"198.51.100.7", "192.0.2.0/24"}}.Trusted()
	if err != nil || p[0] != netip.MustParsePrefix("198.51.100.7/32") || p[1] != netip.MustParsePrefix("192.0.2.0/24") {
		t.Fatalf("Trusted() = %v, %v", p, err)
	}
}

func openStore(t testing.TB, driver string) *store.Store {
	t.Helper()
	ctx := context.Background()
	cfg := store.DefaultConfig()
	if driver == store.Postgres {
		cfg = store.Config{Driver: store.Postgres, DSN: testenv.PostgresDB(t), Timeout: 30 * time.Second}
	}
	s, err := store.Open(cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.MigrateEvents(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func newLocator(t testing.TB) *geo.Locator {
	t.Helper()
	dir := t.TempDir()
	cfg := geo.DefaultConfig()
	cfg.Database = filepath.Join(dir, "city.mmdb")
	cfg.ASNDatabase = filepath.Join(dir, "asn.mmdb")
	geotest.WriteCity(t, cfg.Database, geotest.Options{}, geotest.Known)
	geotest.WriteASN(t, cfg.ASNDatabase, geotest.Options{}, geotest.KnownASN)
	l, err := geo.New(cfg, geo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func fastConfig() Config {
	c := DefaultConfig()
	c.BatchSize = 3
	c.FlushInterval = 5 * time.Millisecond
	return c
}

func allEvents(t testing.TB, s *store.Store) []store.StoredEvent {
	t.Helper()
	var out []store.StoredEvent
	if err := s.RecentEvents(context.Background(), 0, time.Time{}, func(e store.StoredEvent) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRecorderLocatesAndStores: Recorder -> Locator -> Store, and a final
// flush of what is still buffered when the node stops.
func TestRecorderLocatesAndStores(t *testing.T) {
	s := openStore(t, store.SQLite)
	rec, err := NewRecorder(fastConfig(), Options{Store: s, Locator: newLocator(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()

	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	ips := []string{"81.2.69.142", "10.1.2.3", "8.8.8.8", "2a02:ff0::7", "::ffff:89.160.20.112"}
	for i, ip := range ips {
		rec.Record(Event{
			Time: base.Add(time.Duration(i) * time.Second), ClientIP: netip.MustParseAddr(ip),
			Node: "node-a", Provider: "hetzner", Domain: "example.com", Verdict: "spam", Action: "reject",
			Score: 15, Symbols: []string{"BAYES_SPAM", "URI  SHORTENER"},
		})
	}
	cancel() // 2 of 5 are still below the batch size: the shutdown flush writes them
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := allEvents(t, s)
	if len(got) != len(ips) {
		t.Fatalf("stored %d events, want %d", len(got), len(ips))
	}
	want := []struct {
		ip, country, city string
		asn               uint32
	}{ // newest first
		{"89.160.20.112", "SE", "Linköping", 29518},
		{"2a02:ff0::7", "DE", "Berlin", 4294967290},
		{"8.8.8.8", "", "", 0},
		{"10.1.2.3", "", "", 0}, // private: never looked up, although the fixture knows it
		{"81.2.69.142", "GB", "London", 20712},
	}
	for i, w := range want {
		e := got[i]
		if e.IP.String() != w.ip || e.Country != w.country || e.City != w.city || e.ASN != w.asn || e.Located != (w.country != "") {
			t.Errorf("event %d: %+v, want %+v", i, e, w)
		}
		if strings.Join(e.Symbols, ",") != "BAYES_SPAM,URI_SHORTENER" {
			t.Errorf("symbols %q", e.Symbols)
		}
	}
	if got[4].Lat != 51.5142 || got[4].CountryName != "United Kingdom" || got[4].AccuracyKM != 10 {
		t.Errorf("London details: %+v", got[4])
	}
}

// TestTrustedRelaySource: mail from a trusted forwarder is recorded (and
// located) as coming from the first untrusted hop of its Received chain.
func TestTrustedRelaySource(t *testing.T) {
	s := openStore(t, store.SQLite)
	cfg := fastConfig()
	// The second as a dual-stack server logs IPv4 peers; the client
	// address is compared unmapped.
	cfg.TrustedRelays = []string{"198.18.0.0/15", "::ffff:192.0.2.0/120"}
	rec, err := NewRecorder(cfg, Options{Store: s, Locator: newLocator(t)})
	if err != nil {
		t.Fatal(err)
	}
	received := []string{
		"from gw.fwd.example (gw.fwd.example [198.18.0.9]) by edge.fwd.example",
		"from spammer.example (spammer.example [81.2.69.142]) by gw.fwd.example",
	}
	rec.Record(Event{ClientIP: netip.MustParseAddr("198.18.0.1"), Received: received})
	rec.Record(Event{ClientIP: netip.MustParseAddr("89.160.20.112"), Received: received}) // untrusted: headers ignored
	rec.Record(Event{ClientIP: netip.MustParseAddr("192.0.2.9"), Received: received})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rec.Run(ctx); err != nil { // flushes at once
		t.Fatal(err)
	}
	got := allEvents(t, s)
	if len(got) != 3 {
		t.Fatalf("%d events", len(got))
	}
	ips := map[string]string{}
	for _, e := range got {
		ips[e.IP.String()] = e.City
	}
	if len(ips) != 2 || ips["81.2.69.142"] != "London" || ips["89.160.20.112"] != "Linköping" {
		t.Fatalf("sources %v, want the hop behind the relay and the untrusted client", ips)
	}
}

// TestRecordNeverBlocksAndDropsOldest: with nobody writing, a full buffer
// keeps the newest events and counts the rest.
func TestRecordNeverBlocksAndDropsOldest(t *testing.T) {
	cfg := fastConfig()
	cfg.Buffer = 3
	cfg.BatchSize = 2
	fs := &fakeStore{}
	preg := prometheus.NewRegistry()
	rec, err := NewRecorder(cfg, Options{Store: fs, Registerer: preg})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		rec.Record(Event{Domain: fmt.Sprint(i)})
	}
	if d := metrictest.Counter(t, preg, "mxgrid_events_dropped_total", "buffer_full"); d != 2 {
		t.Fatalf("dropped %v, want 2", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	waitFor(t, "the kept events stored", func() bool { return fs.count() == 3 })
	cancel()
	<-done
	var domains []string
	for _, ev := range fs.stored {
		domains = append(domains, ev.Domain)
		if ev.Time.IsZero() {
			t.Error("Record did not stamp the time")
		}
	}
	if strings.Join(domains, ",") != "2,3,4" {
		t.Fatalf("kept %v, want the newest three", domains)
	}
}

// fakeStore injects failures; everything else is tested on real databases.
type fakeStore struct {
	mu      sync.Mutex
	failFor int // fail this many inserts
	block   bool
	stored  []store.StoredEvent
	prunes  []time.Time
}

func (f *fakeStore) InsertEvents(ctx context.Context, evs []store.StoredEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.block {
		f.mu.Unlock()
		<-ctx.Done()
		f.mu.Lock()
		return ctx.Err()
	}
	if f.failFor > 0 {
		f.failFor--
		return errors.New("database is down")
	}
	f.stored = append(f.stored, evs...)
	return nil
}

func (f *fakeStore) PruneEvents(_ context.Context, before time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prunes = append(f.prunes, before)
	return 0, nil
}

func (f *fakeStore) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.stored)
}

func TestStoreFailureIsRetried(t *testing.T) {
	fs := &fakeStore{failFor: 3}
	reg := health.New()
	preg := prometheus.NewRegistry()
	rec, err := NewRecorder(fastConfig(), Options{Store: fs, Health: reg, Registerer: preg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rec.Run(ctx)
	for i := range 7 {
		rec.Record(Event{Domain: fmt.Sprint(i)})
	}
	waitFor(t, "store failure reported", func() bool { level, _ := reg.Report(); return level == health.Degraded })
	waitFor(t, "all events stored", func() bool { return fs.count() == 7 })
	if level, conds := reg.Report(); level != health.OK {
		t.Fatalf("health after recovery: %v %+v", level, conds)
	}
	for i, e := range fs.stored {
		if e.Domain != fmt.Sprint(i) {
			t.Fatalf("event %d is %q: order lost or duplicated", i, e.Domain)
		}
	}
	if n := metrictest.Counter(t, preg, "mxgrid_events_store_errors_total", ""); n != 3 {
		t.Fatalf("store errors %v, want 3", n)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.prunes) == 0 || time.Since(fs.prunes[0]) < DefaultConfig().Retention-time.Minute {
		t.Fatalf("prune at start: %v", fs.prunes)
	}
}

func TestShutdownIsBounded(t *testing.T) {
	cfg := fastConfig()
	cfg.BatchSize = 100 // nothing is written before shutdown
	cfg.ShutdownTimeout = 50 * time.Millisecond
	preg := prometheus.NewRegistry()
	rec, err := NewRecorder(cfg, Options{Store: &fakeStore{block: true}, Registerer: preg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	for range 4 {
		rec.Record(Event{})
	}
	cancel()
	err = <-done
	if err == nil || !strings.Contains(err.Error(), "4 events not stored") {
		t.Fatalf("Run = %v, want the loss reported", err)
	}
	if n := metrictest.Counter(t, preg, "mxgrid_events_dropped_total", "shutdown"); n != 4 {
		t.Fatalf("dropped at shutdown %v, want 4", n)
	}
}

func TestPruneOnRealStore(t *testing.T) {
	s := openStore(t, store.SQLite)
	now := time.Now()
	old := store.StoredEvent{Time: now.Add(-40 * 24 * time.Hour), IP: netip.MustParseAddr("81.2.69.1")}
	fresh := store.StoredEvent{Time: now.Add(-24 * time.Hour), IP: netip.MustParseAddr("81.2.69.2")}
	if err := s.InsertEvents(context.Background(), []store.StoredEvent{old, fresh}); err != nil {
		t.Fatal(err)
	}
	preg := prometheus.NewRegistry()
	rec, err := NewRecorder(fastConfig(), Options{Store: s, Registerer: preg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	waitFor(t, "prune", func() bool { return metrictest.Counter(t, preg, "mxgrid_events_pruned_total", "") == 1 })
	cancel()
	<-done
	if got := allEvents(t, s); len(got) != 1 || got[0].IP != fresh.IP {
		t.Fatalf("after prune: %+v", got)
	}
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

// BenchmarkRecorderSustained reports events/s through Record -> Locator
// (LRU warm after the first of 256 sources) -> store, per dialect.
func BenchmarkRecorderSustained(b *testing.B) {
	for _, driver := range []string{store.SQLite, store.Postgres} {
		b.Run(driver, func(b *testing.B) {
			s := openStore(b, driver)
			cfg := DefaultConfig()
			cfg.Buffer = b.N // nothing dropped: every event is timed into the store
			cfg.ShutdownTimeout = 5 * time.Minute
			preg := prometheus.NewRegistry()
			rec, err := NewRecorder(cfg, Options{Store: s, Locator: newLocator(b), Registerer: preg})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- rec.Run(ctx) }()
			syms := []string{"BAYES_SPAM", "DNSBL_ZEN", "URI_SHORTENER"}
			b.ResetTimer()
			for i := range b.N {
				rec.Record(Event{ClientIP: netip.AddrFrom4([4]byte{81, 2, 69, byte(i)}), Node: "n", Domain: "example.com",
					Verdict: "spam", Action: "reject", Score: 12, Symbols: syms})
			}
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			if got := metrictest.Counter(b, preg, "mxgrid_events_stored_total", ""); got != float64(b.N) {
				b.Fatalf("stored %v of %d", got, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestQueuedEventsHoldNoReceivedFields: an event waiting in the buffer
// holds none of its message's Received fields, which a sender writes
// behind a trusted forwarder up to a 1 MB header: 40 such events held
// 40 MB until their batch was written.
func TestQueuedEventsHoldNoReceivedFields(t *testing.T) {
	tests := []struct {
		name   string
		client string
		want   string // the source stored
	}{
		{"trusted relay", "198.18.0.1", "81.2.69.142"},
		{"untrusted client", "89.160.20.112", "89.160.20.112"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, store.SQLite)
			cfg := fastConfig()
			cfg.TrustedRelays = []string{"198.18.0.0/15"}
			rec, err := NewRecorder(cfg, Options{Store: s})
			if err != nil {
				t.Fatal(err)
			}
			const events, fieldBytes = 40, 1 << 20
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range events {
				received := []string{
					"from gw.fwd.example (gw.fwd.example [198.18.0.9]) by edge.fwd.example",
					"from spammer.example (spammer.example [81.2.69.142]) by gw.fwd.example",
					"from x by y; " + strings.Repeat("z", fieldBytes), // built anew per message
				}
				rec.Record(Event{ClientIP: netip.MustParseAddr(tt.client), Received: received})
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			if held := int64(after.HeapAlloc) - int64(before.HeapAlloc); held > events*fieldBytes/4 {
				t.Errorf("%d queued events hold %d KB, want far less than their %d KB of Received fields", events, held>>10, events*fieldBytes>>10)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := rec.Run(ctx); err != nil { // flushes at once
				t.Fatal(err)
			}
			got := allEvents(t, s)
			if len(got) != events || got[0].IP.String() != tt.want {
				t.Fatalf("%d events, first from %v; want %d from %s", len(got), got[0].IP, events, tt.want)
			}
		})
	}
}
