package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/testenv"
)

// openSQLite opens a fresh SQLite store with the events table.
func openSQLite(t testing.TB) *Store {
	t.Helper()
	s, err := Open(DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.MigrateEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// openPostgres opens a private PostgreSQL database with the events table;
// it skips locally (fails in CI) when no server is configured.
func openPostgres(t testing.TB) *Store {
	t.Helper()
	s := openPostgresAt(t, testenv.PostgresDB(t))
	if err := s.MigrateEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// openPostgresAt opens another handle on the database dsn names, as
// another node of the cluster has, closed when the test ends.
func openPostgresAt(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(Config{Driver: Postgres, DSN: dsn, Timeout: 30 * time.Second}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dialects are the engines every contract test and benchmark runs on.
var dialects = []struct {
	name string
	open func(testing.TB) *Store
}{{"sqlite", openSQLite}, {"postgres", openPostgres}}

// TestEventStore runs one contract against both dialects: what the hourly
// map and the recorder rely on must hold on either.
func TestEventStore(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			testEventContract(t, tc.open(t))
		})
	}
}

func sampleEvent(i int, at time.Time) StoredEvent {
	e := StoredEvent{
		Time:     at,
		IP:       netip.AddrFrom4([4]byte{81, 2, byte(i >> 8), byte(i)}),
		Node:     "node-a",
		Provider: "hetzner",
		Domain:   "example.com",
		Verdict:  "spam",
		Action:   "reject",
		Score:    12.5 + float64(i%7)/4,
		Symbols:  []string{"BAYES_SPAM", "DNSBL_ZEN", fmt.Sprintf("SYM_%d", i%3)},
	}
	if i%2 == 0 {
		e.Located = true
		e.Country, e.CountryName, e.City = "DE", "Germany", "Berlin"
		e.Lat, e.Lon, e.AccuracyKM = 52.5244, 13.4105, 20
		e.ASN, e.ASOrg = 4294967295, "Big ASN ü GmbH" // max uint32 must survive both dialects
	}
	return e
}

func testEventContract(t *testing.T, s *Store) {
	ctx := context.Background()
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

	// An empty batch is a no-op, not an error.
	if err := s.InsertEvents(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}

	// 1203 events: spans several multi-row statements including a partial one.
	const n = 1203
	evs := make([]StoredEvent, n)
	for i := range evs {
		evs[i] = sampleEvent(i, base.Add(time.Duration(i)*time.Second))
	}
	// An IPv6 event with no symbols and an empty-but-located country.
	evs[5].IP = netip.MustParseAddr("2a01:4f8::1")
	evs[5].Symbols = nil
	if err := s.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if c, err := s.CountEvents(ctx); err != nil || c != n {
		t.Fatalf("count = %d, %v; want %d", c, err, n)
	}

	t.Run("round trip and newest first", func(t *testing.T) {
		var got []StoredEvent
		err := s.RecentEvents(ctx, 0, time.Time{}, func(e StoredEvent) error {
			got = append(got, e)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("got %d events, want %d", len(got), n)
		}
		for i, e := range got {
			want := evs[n-1-i]
			if !reflect.DeepEqual(e, want) {
				t.Fatalf("event %d:\n got %+v\nwant %+v", i, e, want)
			}
		}
	})

	tests := []struct {
		name      string
		limit     int
		since     time.Time
		wantCount int
		wantFirst time.Time
	}{
		{"limit", 10, time.Time{}, 10, base.Add((n - 1) * time.Second)},
		{"since", 0, base.Add((n - 3) * time.Second), 3, base.Add((n - 1) * time.Second)},
		{"since is inclusive", 0, base.Add((n - 1) * time.Second), 1, base.Add((n - 1) * time.Second)},
		{"limit and since", 2, base.Add(100 * time.Second), 2, base.Add((n - 1) * time.Second)},
		{"nothing newer", 0, base.Add(time.Hour), 0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var count int
			var first, prev time.Time
			err := s.RecentEvents(ctx, tt.limit, tt.since, func(e StoredEvent) error {
				if count == 0 {
					first = e.Time
				} else if e.Time.After(prev) {
					t.Errorf("not newest first: %v after %v", e.Time, prev)
				}
				prev = e.Time
				count++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if count != tt.wantCount || !first.Equal(tt.wantFirst) {
				t.Fatalf("got %d events starting %v, want %d starting %v", count, first, tt.wantCount, tt.wantFirst)
			}
		})
	}

	t.Run("callback error stops the scan", func(t *testing.T) {
		stop := errors.New("enough")
		calls := 0
		err := s.RecentEvents(ctx, 0, time.Time{}, func(StoredEvent) error {
			calls++
			if calls == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != 3 {
			t.Fatalf("err = %v after %d calls; want %v after 3", err, calls, stop)
		}
	})

	t.Run("a failing batch stores nothing", func(t *testing.T) {
		bad := []StoredEvent{sampleEvent(1, base), sampleEvent(2, base)}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.InsertEvents(cctx, bad); err == nil {
			t.Fatal("insert with a cancelled context succeeded")
		}
		if c, _ := s.CountEvents(ctx); c != n {
			t.Fatalf("count = %d after failed batch, want %d", c, n)
		}
	})

	t.Run("prune", func(t *testing.T) {
		// More than one prune chunk goes: 1203 rows, cut at 1100 s.
		cut := base.Add(1100 * time.Second)
		deleted, err := s.PruneEvents(ctx, cut)
		if err != nil {
			t.Fatal(err)
		}
		if deleted != 1100 {
			t.Fatalf("deleted %d, want 1100", deleted)
		}
		var oldest time.Time
		if err := s.RecentEvents(ctx, 0, time.Time{}, func(e StoredEvent) error { oldest = e.Time; return nil }); err != nil {
			t.Fatal(err)
		}
		if !oldest.Equal(cut) {
			t.Fatalf("oldest remaining %v, want %v (the cut is exclusive)", oldest, cut)
		}
		if again, err := s.PruneEvents(ctx, cut); err != nil || again != 0 {
			t.Fatalf("second prune deleted %d, %v; want 0", again, err)
		}
	})

	t.Run("migration is idempotent", func(t *testing.T) {
		if err := s.MigrateEvents(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestInsertEventsSQL(t *testing.T) {
	got := insertSQL("events", eventColumns, eventColumnCount, 2, SQLite)
	if !strings.HasPrefix(got, "INSERT OR ROLLBACK INTO events (") {
		t.Fatalf("sqlite statement: %q", got)
	}
	if !strings.HasSuffix(got, "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?),(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)") {
		t.Fatalf("sqlite placeholders: %q", got)
	}
	got = insertSQL("events", eventColumns, eventColumnCount, 2, Postgres)
	if !strings.HasPrefix(got, "INSERT INTO events (") {
		t.Fatalf("postgres statement: %q", got)
	}
	if want := "($1,$2,"; !strings.Contains(got, want) {
		t.Fatalf("first row placeholders missing in %q", got)
	}
	if want := ",($20,$21,"; !strings.Contains(got, want) {
		t.Fatalf("second row must start at $20 in %q", got)
	}
	if want := "$38)"; got[len(got)-4:] != want {
		t.Fatalf("last placeholder: %q", got[len(got)-4:])
	}
}

// BenchmarkInsertEvents reports sustained events/s into each dialect in
// batches of 500 (what the recorder writes).
func BenchmarkInsertEvents(b *testing.B) {
	for _, tc := range dialects {
		b.Run(tc.name, func(b *testing.B) {
			s := tc.open(b)
			const batch = 500
			evs := make([]StoredEvent, batch)
			base := time.Now()
			for i := range evs {
				evs[i] = sampleEvent(i, base)
			}
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				for i := range evs {
					evs[i].ID = 0 // new events, not the batch written again
				}
				if err := s.InsertEvents(ctx, evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkRecentSources250k reads the map's hourly working set, as the
// map reads it.
func BenchmarkRecentSources250k(b *testing.B) {
	for _, tc := range dialects {
		b.Run(tc.name, func(b *testing.B) {
			s := tc.open(b)
			ctx := context.Background()
			const total = 300_000
			evs := make([]StoredEvent, 5000)
			base := time.Now().Add(-time.Hour)
			for off := 0; off < total; off += len(evs) {
				for i := range evs {
					evs[i] = sampleEvent(off+i, base.Add(time.Duration(off+i)*time.Millisecond))
				}
				if err := s.InsertEvents(ctx, evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				n := 0
				if err := s.RecentSources(ctx, 250_000, time.Time{}, func(Source) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != 250_000 {
					b.Fatalf("read %d", n)
				}
			}
		})
	}
}

// spreadEvent is event i of a batch shaped like the recorder's real ones:
// spread over two hours, twenty domains, tens of thousands of /24s (most
// of them rare) and a few dozen places, so that a batch touches many
// distinct map rollup rows, where sampleEvent's all share one.
func spreadEvent(rng *rand.Rand, at time.Time) StoredEvent {
	u := rng.Float64()
	net := int(u * u * u * 50_000)
	e := sampleEvent(rng.IntN(1<<16), at.Add(-time.Duration(rng.Int64N(int64(2*time.Hour)))))
	e.IP = netip.AddrFrom4([4]byte{byte(20 + net>>16), byte(net >> 8), byte(net), byte(rng.IntN(256))})
	e.DomainID = int64(1 + rng.IntN(20))
	if e.Located {
		e.Lat += float64(rng.IntN(40)) * 1.3
		e.Lon -= float64(rng.IntN(40)) * 2.1
	}
	return e
}

// BenchmarkInsertEventsSpread is BenchmarkInsertEvents with spreadEvent's
// batches: the cost of maintaining the map rollup as production sees it.
func BenchmarkInsertEventsSpread(b *testing.B) {
	for _, tc := range dialects {
		b.Run(tc.name, func(b *testing.B) {
			s := tc.open(b)
			rng := rand.New(rand.NewPCG(1, 2))
			const batch = 500
			evs := make([]StoredEvent, batch)
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				now := time.Now()
				for i := range evs {
					evs[i] = spreadEvent(rng, now)
				}
				b.StartTimer()
				if err := s.InsertEvents(ctx, evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestEventIndexes pins the events table's indexes: each costs every
// event written, so each must serve a read (events_at the map, the recent
// list and pruning; events_domain_id a domain's refusals and maps).
// events_domain, on the name, lost its last query in version 3.
func TestEventIndexes(t *testing.T) {
	queries := map[string]string{
		"sqlite":   `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL ORDER BY name`,
		"postgres": `SELECT indexname FROM pg_indexes WHERE tablename = 'events' AND indexname <> 'events_pkey' ORDER BY indexname`,
	}
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			rows, err := s.DB.QueryContext(context.Background(), queries[tc.name])
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var name string
				if err := rows.Scan(&name); err != nil {
					t.Fatal(err)
				}
				got = append(got, name)
			}
			if want := []string{"events_at", "events_domain_id"}; !reflect.DeepEqual(got, want) {
				t.Errorf("indexes on events: %v, want %v", got, want)
			}
		})
	}
}

// TestEventBatchWhoseCommitReplyIsLostIsStoredOnce: on PostgreSQL a
// batch's commit can take effect while its reply never reaches the node
// (the connection lost after the COMMIT went out, the store's timeout
// passing meanwhile). The events queue keeps a batch that failed and
// writes it again: every event of it was stored twice, and counted twice
// on the map's rollup.
func TestEventBatchWhoseCommitReplyIsLostIsStoredOnce(t *testing.T) {
	s, proxy := openPostgresReplyCutter(t)
	ctx := context.Background()
	if err := s.MigrateEvents(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	evs := []StoredEvent{sampleEvent(1, now), sampleEvent(2, now)}
	writeLosingCommitReply(t, proxy, "events", func() error { return s.InsertEvents(ctx, evs) })
	for _, q := range []string{`SELECT COUNT(*) FROM events`, `SELECT SUM(n) FROM map_hours WHERE domain_id = -1`} {
		var n int
		if err := s.DB.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(evs) {
			t.Errorf("%s: %d, want %d", q, n, len(evs))
		}
	}
}
