package spammap_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/spammap/spammaptest"
	"github.com/mxgrid/mxgrid/store"
)

// memEvents is the reference a stored scope is checked against: events in
// the store's order (newest first, the later insert first on equal times).
type memEvents []spammap.Event

func (m memEvents) RecentEvents(ctx context.Context, limit int, since time.Time, fn func(spammap.Event) error) error {
	for i, e := range m {
		if (limit > 0 && i >= limit) || e.Time.Before(since) {
			return nil
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// TestScopedMapsFromStore: on both engines, each tenant's map drawn from
// the stored events equals the map of exactly that tenant's events, on a
// randomized set where tenants share networks, cities and timestamps, with
// the point limit and the window cutting inside the data.
func TestScopedMapsFromStore(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	tenants := [][]int64{{1}, {2, 3}, {4, 5, 6, 7}, {99}} // 99 has no events
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			st := engine.open(t)
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Second)
			rng := rand.New(rand.NewPCG(7, 11))
			var stored []store.StoredEvent
			for i := range 3000 {
				c := spammaptest.Cities[rng.IntN(8)]
				e := store.StoredEvent{
					// Whole minutes over two hours: many equal times, so the
					// order of events recorded in the same instant matters.
					Time: now.Add(-time.Duration(rng.IntN(120)) * time.Minute),
					IP:   netip.AddrFrom4([4]byte{198, 51, byte(rng.IntN(4)), byte(i)}),
					Node: "n", Verdict: "spam", Action: "reject", DomainID: int64(1 + rng.IntN(7)),
					Located: rng.IntN(10) > 0, Country: c.Country, CountryName: c.CountryName, City: c.City,
					Lat: c.Lat, Lon: c.Lon, ASN: uint32(64500 + rng.IntN(3)), ASOrg: c.ASOrg,
				}
				if !e.Located {
					e.City, e.Lat, e.Lon = "", 0, 0
				}
				stored = append(stored, e)
			}
			if err := st.InsertEvents(ctx, stored); err != nil {
				t.Fatal(err)
			}
			// Newest first; on equal times the later insert (higher id).
			order := make([]int, len(stored))
			for i := range order {
				order[i] = len(stored) - 1 - i
			}
			slices.SortStableFunc(order, func(a, b int) int { return stored[b].Time.Compare(stored[a].Time) })
			for _, cfg := range []spammap.Config{
				{Points: 100_000, Attribution: "x"},
				{Points: 700, Attribution: "x"},
				{Points: 100_000, Window: time.Hour, Attribution: "x"},
			} {
				for _, ids := range tenants {
					sc := spammap.Scope{Key: "customer:t", DomainIDs: ids, Brand: spammap.Brand{Name: "T"}}
					got, err := spammap.CollectScope(ctx, spammap.StoreEvents{Store: st}, cfg, sc, now, world)
					if err != nil {
						t.Fatal(err)
					}
					var ref memEvents
					for _, i := range order {
						if e := stored[i]; slices.Contains(ids, e.DomainID) {
							ref = append(ref, spammap.Event{Time: e.Time, IP: e.IP, Located: e.Located, Country: e.Country,
								CountryName: e.CountryName, City: e.City, Lat: e.Lat, Lon: e.Lon, ASN: e.ASN, ASOrg: e.ASOrg})
						}
					}
					want, err := spammap.Collect(ctx, ref, cfg, sc.Key, now, world)
					if err != nil {
						t.Fatal(err)
					}
					want.Brand = &sc.Brand
					gj, _ := json.Marshal(got)
					wj, _ := json.Marshal(want)
					if string(gj) != string(wj) {
						t.Errorf("points %d window %s, domains %v: stored map differs from its events' map\n got %s\nwant %s",
							cfg.Points, cfg.Window, ids, gj, wj)
					}
				}
			}
		})
	}
}
