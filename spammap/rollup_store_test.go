package spammap_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/spammap/spammaptest"
	"github.com/mxgrid/mxgrid/store"
)

// eventsOnly is the store without its rollup: the map read event by event,
// the reference the rollup must reproduce byte for byte.
type eventsOnly struct{ st *store.Store }

func (e eventsOnly) RecentEvents(ctx context.Context, limit int, since time.Time, fn func(spammap.Event) error) error {
	return spammap.StoreEvents{Store: e.st}.RecentEvents(ctx, limit, since, fn)
}

func (e eventsOnly) RecentDomainEvents(ctx context.Context, ids []int64, limit int, since time.Time, fn func(spammap.Event) error) error {
	return spammap.StoreEvents{Store: e.st}.RecentDomainEvents(ctx, ids, limit, since, fn)
}

// rollupCase generates the randomized history: a few busy networks and
// many rare ones, labels that change between events of one cell or
// network, times on whole minutes (many ties), batches late by a day.
type rollupCase struct {
	rng *rand.Rand
	now time.Time
}

func (c *rollupCase) event() store.StoredEvent {
	rng := c.rng
	city := spammaptest.Cities[rng.IntN(12)]
	e := store.StoredEvent{
		Node: "n", Verdict: "spam", Action: "reject", DomainID: int64(rng.IntN(9)), // 0: a config domain
		Located: true, Country: city.Country, CountryName: city.CountryName, City: city.City,
		Lat: city.Lat, Lon: city.Lon, ASN: uint32(64500 + rng.IntN(4)), ASOrg: city.ASOrg,
	}
	// Busy networks, then a long tail; the last octet varies inside one.
	u := rng.Float64()
	net := int(u * u * u * u * 3000)
	e.IP = netip.AddrFrom4([4]byte{100, byte(net >> 8), byte(net), byte(rng.IntN(256))})
	switch x := rng.IntN(100); {
	case x < 5:
		e.IP = netip.AddrFrom16([16]byte{0x2a, 0x02, 0xe, 0xc0, 0, byte(net % 7), 9: byte(rng.IntN(256))})
	case x < 7:
		e.IP = netip.MustParseAddr("::ffff:100.0.0.9") // the /24 of busy network 0
	case x < 9: // an internal client: counted, never listed
		e.IP = netip.AddrFrom4([4]byte{10, 1, byte(net), 3})
	}
	switch x := rng.IntN(100); {
	case x < 8: // a country-only answer, as geo records it: at 0, 0
		e.City, e.Lat, e.Lon = "", 0, 0
	case x < 10: // nothing known
		e.Located, e.Country, e.CountryName, e.City, e.Lat, e.Lon = false, "", "", "", 0, 0
	case x < 11: // a position out of range counts for the country only
		e.Lat = 95
	case x < 20: // a suburb, another city name in the same or the next cell
		e.Lat += float64(rng.IntN(5)) * 0.07
		e.City = fmt.Sprintf("%s %d", e.City, rng.IntN(3))
	}
	if rng.IntN(10) == 0 {
		e.CountryName = "" // the world map's name is used
	}
	if rng.IntN(5) == 0 {
		e.ASOrg = fmt.Sprintf("Other %d", rng.IntN(3))
	}
	return e
}

// batch is a recorder's batch: recent events, or a late one for some hour
// of the last day, on whole minutes.
func (c *rollupCase) batch() []store.StoredEvent {
	rng := c.rng
	n := 1 + rng.IntN(400)
	newest, span := c.now, 2*time.Hour
	if rng.IntN(2) == 0 {
		newest = c.now.Add(-time.Duration(rng.IntN(30)) * time.Hour)
		span = time.Duration(1+rng.IntN(90)) * time.Minute
	}
	evs := make([]store.StoredEvent, n)
	for i := range evs {
		evs[i] = c.event()
		evs[i].Time = newest.Add(-time.Duration(rng.Int64N(int64(span))) / time.Minute * time.Minute)
	}
	return evs
}

// TestRollupMapsEqualEvents: on both engines, through random batches (late
// ones, equal times, busy and rare networks, several tenants), prunes at
// random boundaries, a rollup awaiting its rebuild and a database migrated
// from before the rollup, every map drawn from the rollup equals the map
// drawn event by event: the global one and each tenant's, with the point
// limit and the window cutting inside hours.
func TestRollupMapsEqualEvents(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	// Eight networks make the busiest-network search cut on these few
	// thousand events instead of reading every row.
	defer spammap.SetMaxNetworks(8)()
	tenants := [][]int64{{1}, {2, 3}, {0, 4, 5, 6, 7, 8}, {99}}
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			st := engine.open(t)
			ctx := context.Background()
			c := &rollupCase{rng: rand.New(rand.NewPCG(3, 5)), now: time.Now().UTC().Truncate(time.Minute)}
			for step := range 40 {
				var what string
				switch x := c.rng.IntN(20); {
				case x < 14:
					evs := c.batch()
					what = fmt.Sprintf("insert %d", len(evs))
					if err := st.InsertEvents(ctx, evs); err != nil {
						t.Fatal(err)
					}
				case x < 17:
					// Mostly inside an hour, now and then on one, now and
					// then before an earlier prune's boundary.
					before := c.now.Add(-time.Duration(18*60+c.rng.IntN(12*60)) * time.Minute)
					if x == 16 {
						before = before.Truncate(time.Hour)
					}
					what = "prune before " + before.Format(time.TimeOnly)
					if _, err := st.PruneEvents(ctx, before); err != nil {
						t.Fatal(err)
					}
				case x < 18:
					// A rollup awaiting its rebuild is not read, and what is
					// inserted meanwhile is counted by the rebuild.
					// A rollup whose rebuild has not started is not read;
					// the next batch is counted by the rebuild step it runs.
					what = "rollup rebuilt by a batch"
					for _, q := range []string{`DELETE FROM map_hours`, `DELETE FROM map_cells`, `DELETE FROM map_nets`,
						`UPDATE map_rollup_state SET rebuild = 1, cursor_us = -9223372036854775808`} {
						if _, err := st.DB.ExecContext(ctx, q); err != nil {
							t.Fatal(err)
						}
					}
					checkRollupMaps(t, st, c.now, world, tenants, what+", before")
					if err := st.InsertEvents(ctx, c.batch()); err != nil {
						t.Fatal(err)
					}
				default:
					// A database from before the rollup (or restored from an
					// older backup) gets one on migration.
					what = "migrate from before the rollup"
					for _, q := range []string{`DROP TABLE map_hours`, `DROP TABLE map_cells`, `DROP TABLE map_nets`,
						`DROP TABLE map_rollup_state`,
						`DELETE FROM schema_migrations WHERE component = 'map_rollup'`} {
						if _, err := st.DB.ExecContext(ctx, q); err != nil {
							t.Fatal(err)
						}
					}
					if err := st.MigrateEvents(ctx); err != nil {
						t.Fatal(err)
					}
				}
				checkRollupMaps(t, st, c.now, world, tenants, fmt.Sprintf("step %d (%s)", step, what))
				if t.Failed() {
					return
				}
			}
		})
	}
}

// checkRollupMaps compares every scope's map from the rollup with the map
// of its events, under limits and windows that cut inside hours.
func checkRollupMaps(t *testing.T, st *store.Store, now time.Time, world *spammap.World, tenants [][]int64, step string) {
	t.Helper()
	ctx := context.Background()
	n, err := st.CountEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []spammap.Config{
		{Points: 1_000_000, Attribution: "x"},
		{Points: int(n*2/3) + 1, Attribution: "x"},
		{Points: 150, Attribution: "x"},
		{Points: 1_000_000, Window: 5*time.Hour + 17*time.Minute, Attribution: "x"},
		{Points: int(n/4) + 1, Window: 20 * time.Hour, Attribution: "x"},
		// Starting on the hour: no hour is cut, one day is.
		{Points: 1_000_000, Window: now.Sub(now.Truncate(time.Hour)) + 9*time.Hour, Attribution: "x"},
	} {
		compare := func(scope string, got, want *spammap.Aggregate, gotErr, wantErr error) {
			t.Helper()
			if gotErr != nil || wantErr != nil {
				t.Fatalf("%s: %v / %v", step, gotErr, wantErr)
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			if string(gj) != string(wj) {
				t.Errorf("%s, %s, points %d window %s: the rollup's map differs from the events'\n got %s\nwant %s",
					step, scope, cfg.Points, cfg.Window, gj, wj)
			}
		}
		got, gerr := spammap.Collect(ctx, spammap.StoreEvents{Store: st}, cfg, spammap.GlobalScope, now, world)
		want, werr := spammap.Collect(ctx, eventsOnly{st}, cfg, spammap.GlobalScope, now, world)
		compare("global", got, want, gerr, werr)
		for _, ids := range tenants {
			sc := spammap.Scope{Key: "customer:t", DomainIDs: ids}
			got, gerr := spammap.CollectScope(ctx, spammap.StoreEvents{Store: st}, cfg, sc, now, world)
			want, werr := spammap.CollectScope(ctx, eventsOnly{st}, cfg, sc, now, world)
			compare(fmt.Sprint("domains ", ids), got, want, gerr, werr)
		}
	}
}
