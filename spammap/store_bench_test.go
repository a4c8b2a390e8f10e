package spammap_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/spammap/spammaptest"
	"github.com/mxgrid/mxgrid/store"
)

// benchDomains is how many tenant domains the stored events are spread
// over; the scoped map covers benchScoped of them (a tenth of the events).
const (
	benchDomains = 50
	benchScoped  = 5
)

// BenchmarkStoreGenerate is the map job end to end: the events stored in a
// real PostgreSQL and SQLite, read by Collect (global) or by the scoped
// collect Scheduler.Scoped runs (a tenant's domains), and rendered. It
// reports peak-heap-MB like BenchmarkGenerate. 5 M events take minutes to
// store, so that size runs only with MXGRID_MAP_BENCH_5M=1:
//
//	MXGRID_MAP_BENCH_5M=1 scripts/test.sh -run '^$' -bench StoreGenerate -benchtime 2x ./spammap/
func BenchmarkStoreGenerate(b *testing.B) {
	world, err := spammap.LoadWorld()
	if err != nil {
		b.Fatal(err)
	}
	sizes := []int{250_000}
	if os.Getenv("MXGRID_MAP_BENCH_5M") == "1" {
		sizes = append(sizes, 5_000_000)
	}
	end := time.Now().UTC().Truncate(time.Second)
	for _, engine := range []struct {
		name string
		open func(testing.TB) *store.Store
		load func(testing.TB, *store.Store, []store.StoredEvent)
	}{{"sqlite", openBenchSQLite, loadSQLite}, {"postgres", openBenchPostgres, loadPostgres}} {
		for _, n := range sizes {
			b.Run(engine.name+"/"+sizeName(n), func(b *testing.B) {
				st := engine.open(b)
				storeCorpus(b, st, n, end, engine.load)
				cfg := spammap.DefaultConfig()
				cfg.Points = n
				scoped := make([]int64, benchScoped)
				for i := range scoped {
					scoped[i] = int64(i + 1)
				}
				for _, scope := range []struct {
					name    string
					collect func() (*spammap.Aggregate, error)
				}{
					{"global", func() (*spammap.Aggregate, error) {
						return spammap.Collect(context.Background(), spammap.StoreEvents{Store: st}, cfg, spammap.GlobalScope, end, world)
					}},
					{"scoped", func() (*spammap.Aggregate, error) {
						return spammap.CollectScope(context.Background(), spammap.StoreEvents{Store: st}, cfg,
							spammap.Scope{Key: "customer:bench", DomainIDs: scoped}, end, world)
					}},
				} {
					b.Run(scope.name, func(b *testing.B) { benchGenerate(b, world, scope.collect) })
				}
			})
		}
	}
}

func sizeName(n int) string {
	if n%1_000_000 == 0 {
		return strconv.Itoa(n/1_000_000) + "M"
	}
	return strconv.Itoa(n/1000) + "k"
}

func openBenchSQLite(tb testing.TB) *store.Store {
	st, err := store.Open(store.DefaultConfig(), tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	migrateBench(tb, st)
	return st
}

// engines are the stores the store-backed tests run on.
var engines = []struct {
	name string
	open func(testing.TB) *store.Store
}{{"sqlite", openBenchSQLite}, {"postgres", openBenchPostgres}}

func openBenchPostgres(tb testing.TB) *store.Store {
	dsn := testenv.PostgresDB(tb)
	if dsn == "" {
		tb.Skip("no PostgreSQL (run through scripts/test.sh)")
	}
	st, err := store.Open(store.Config{Driver: store.Postgres, DSN: dsn, Timeout: 30 * time.Second}, "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	migrateBench(tb, st)
	return st
}

func migrateBench(tb testing.TB, st *store.Store) {
	if err := st.MigrateEvents(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

// storeCorpus stores the synthetic corpus's n events, spread over the
// last 24 hours and benchDomains domains, in batches through load.
func storeCorpus(tb testing.TB, st *store.Store, n int, end time.Time, load func(testing.TB, *store.Store, []store.StoredEvent)) {
	tb.Helper()
	src := spammaptest.Corpus{N: n, Seed: 1, End: end, Span: 24 * time.Hour}
	batch := make([]store.StoredEvent, 0, 50_000)
	i := 0
	err := src.RecentEvents(context.Background(), n, time.Time{}, func(e spammap.Event) error {
		i++
		batch = append(batch, store.StoredEvent{
			Time: e.Time, IP: e.IP, Node: "bench", Provider: "", Domain: "", DomainID: int64(i%benchDomains + 1),
			Verdict: "spam", Action: "reject", Score: 12, Located: e.Located, Country: e.Country,
			CountryName: e.CountryName, City: e.City, Lat: e.Lat, Lon: e.Lon, ASN: e.ASN, ASOrg: e.ASOrg,
		})
		if len(batch) == cap(batch) {
			load(tb, st, batch)
			batch = batch[:0]
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	load(tb, st, batch)
	// The bulk paths write around InsertEvents, as an import would.
	start := time.Now()
	if err := st.RebuildMapRollup(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("map rollup of %d events built in %s", n, time.Since(start).Round(time.Millisecond))
}

// benchColumns are the events table's columns the corpus fills.
var benchColumns = []string{"at_us", "ip", "node", "provider", "domain", "verdict", "action", "score", "symbols",
	"located", "country", "country_name", "city", "lat", "lon", "accuracy_km", "asn", "as_org", "domain_id"}

func benchRow(e *store.StoredEvent) []any {
	return []any{e.Time.UnixMicro(), e.IP.String(), e.Node, e.Provider, e.Domain, e.Verdict, e.Action, e.Score, "",
		e.Located, e.Country, e.CountryName, e.City, e.Lat, e.Lon, 0, int64(e.ASN), e.ASOrg, e.DomainID}
}

// loadSQLite inserts a batch in one transaction through one prepared
// statement: SQLite's fastest path without an extension.
func loadSQLite(tb testing.TB, st *store.Store, evs []store.StoredEvent) {
	ctx := context.Background()
	tx, err := st.DB.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO events (`+strings.Join(benchColumns, ",")+`) VALUES (?`+
		strings.Repeat(",?", len(benchColumns)-1)+`)`)
	if err != nil {
		tb.Fatal(err)
	}
	defer stmt.Close()
	for i := range evs {
		if _, err := stmt.ExecContext(ctx, benchRow(&evs[i])...); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// loadPostgres copies a batch with COPY FROM STDIN.
func loadPostgres(tb testing.TB, st *store.Store, evs []store.StoredEvent) {
	ctx := context.Background()
	conn, err := st.DB.Conn(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		i := 0
		_, err := pc.CopyFrom(ctx, pgx.Identifier{"events"}, benchColumns, pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(evs) {
				return nil, nil
			}
			i++
			return benchRow(&evs[i-1]), nil
		}))
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
}
