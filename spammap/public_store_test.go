package spammap_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/store"
)

// TestNonPublicSourcesAreNotListed: a source that is no public address (a
// customer's internal client, a link-local or documentation address) counts
// for the totals, but its network is never listed on the public map, from
// the rollup and from the events alike: it would show operators' and
// customers' internal addressing and says nothing of where spam comes from.
// A 6to4 or NAT64 source counts in the /24 of the IPv4 address it carries:
// a 6to4 /48 is that one IPv4 host (2002:5102:4590::/48 is 81.2.69.144),
// and listed it showed the address the map never shows.
func TestNonPublicSourcesAreNotListed(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) {
			st := engine.open(t)
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Minute)
			var evs []store.StoredEvent
			for _, ip := range []string{"81.2.69.142", "81.2.69.160", "10.1.2.3", "192.0.2.7", "::ffff:172.16.0.9",
				"2a02:ec0::1", "fd00::1", "fe80::1", "2001:db8::1", "100.64.0.1",
				"2002:5102:4590::1", "64:ff9b::5102:4591", "2002:a01:203::1"} {
				evs = append(evs, store.StoredEvent{Time: now.Add(-time.Minute), Node: "n", Verdict: "spam", Action: "reject",
					IP: netip.MustParseAddr(ip), ASN: 64500})
			}
			if err := st.InsertEvents(ctx, evs); err != nil {
				t.Fatal(err)
			}
			for name, src := range map[string]spammap.EventSource{"rollup": spammap.StoreEvents{Store: st}, "events": eventsOnly{st}} {
				agg, err := spammap.Collect(ctx, src, spammap.Config{Points: 1000, Attribution: "x"}, spammap.GlobalScope, now, world)
				if err != nil {
					t.Fatal(err)
				}
				if agg.Events != len(evs) {
					t.Errorf("%s: %d events, want %d", name, agg.Events, len(evs))
				}
				want := []spammap.Network{{Prefix: "81.2.69.0/24", Count: 4, ASN: 64500}, {Prefix: "2a02:ec0::/48", Count: 1, ASN: 64500}}
				if len(agg.Networks) != len(want) || agg.Networks[0] != want[0] || agg.Networks[1] != want[1] {
					t.Errorf("%s: networks %+v, want only the public %+v", name, agg.Networks, want)
				}
			}
		})
	}
}
