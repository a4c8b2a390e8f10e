package spammap_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/spammap/spammaptest"
	"github.com/mxgrid/mxgrid/store"
)

// TestCountryOnlyAnswersHaveNoPoint: a country database (the embedded
// DB-IP Lite a node uses by default, a GeoLite2 Country) knows no
// coordinates, and geo records its answer as located at 0, 0. Such events
// count for their country; the map, from the rollup and from the events
// alike, drew them all as one point in the Gulf of Guinea.
func TestCountryOnlyAnswersHaveNoPoint(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			st := engine.open(t)
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Minute)
			city := spammaptest.Cities[7] // Frankfurt
			ev := func(ip string) store.StoredEvent {
				return store.StoredEvent{Time: now.Add(-time.Minute), Node: "n", Verdict: "spam", Action: "reject",
					IP: netip.MustParseAddr(ip), Located: true, Country: "US", CountryName: "United States"}
			}
			placed := ev("192.0.2.1")
			placed.Country, placed.CountryName, placed.City, placed.Lat, placed.Lon = city.Country, city.CountryName, city.City, city.Lat, city.Lon
			if err := st.InsertEvents(ctx, []store.StoredEvent{ev("8.8.8.8"), ev("8.8.4.4"), ev("1.0.0.1"), placed}); err != nil {
				t.Fatal(err)
			}
			for name, src := range map[string]spammap.EventSource{"rollup": spammap.StoreEvents{Store: st}, "events": eventsOnly{st}} {
				agg, err := spammap.Collect(ctx, src, spammap.Config{Points: 1000, Attribution: "x"}, spammap.GlobalScope, now, world)
				if err != nil {
					t.Fatal(err)
				}
				if agg.Located != 1 || len(agg.Locations) != 1 || agg.Locations[0].City != city.City {
					t.Errorf("%s: %d located, locations %+v; want only %s", name, agg.Located, agg.Locations, city.City)
				}
				if len(agg.Countries) != 2 || agg.Countries[0].Code != "US" || agg.Countries[0].Count != 3 {
					t.Errorf("%s: countries %+v, want US 3 and DE 1", name, agg.Countries)
				}
			}
		})
	}
}
