package spammap_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/store"
)

// TestStoreEvents aggregates events read back from a real store.
func TestStoreEvents(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if err := st.MigrateEvents(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 13, 10, 0, 0, 0, time.UTC)
	var evs []store.StoredEvent
	for i, ip := range []string{"81.2.69.1", "81.2.69.2", "89.160.20.3"} {
		evs = append(evs, store.StoredEvent{Time: now.Add(-time.Duration(i) * time.Minute), IP: netip.MustParseAddr(ip),
			Node: "a", Verdict: "spam", Action: "reject", Located: true, Country: "DE", CountryName: "Germany",
			City: "Berlin", Lat: 52.52, Lon: 13.40, ASN: 64500, ASOrg: "Example"})
	}
	if err := st.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	cfg := spammap.DefaultConfig()
	cfg.Points = 2
	agg, err := spammap.Collect(ctx, spammap.StoreEvents{Store: st}, cfg, spammap.GlobalScope, now, world)
	if err != nil {
		t.Fatal(err)
	}
	if agg.Events != 2 || len(agg.Networks) != 1 || agg.Networks[0].Prefix != "81.2.69.0/24" ||
		len(agg.Locations) != 1 || agg.Locations[0].City != "Berlin" || agg.Countries[0].Count != 2 {
		t.Fatalf("aggregate of the two newest stored events: %+v", agg)
	}
}
