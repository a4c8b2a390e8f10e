package spammap

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func TestNetKeyRoundTripsAndOrdersLikeNetip(t *testing.T) {
	addrs := []string{"1.2.3.4", "1.2.4.9", "255.255.255.1", "::ffff:9.8.7.6", "2002:908:706::1", "64:ff9b::908:807", "2001:db8:1::5", "2001:db8:2::1", "ffff:ffff:ffff:ffff::1"}
	want := map[string]string{"1.2.3.4": "1.2.3.0/24", "1.2.4.9": "1.2.4.0/24", "255.255.255.1": "255.255.255.0/24",
		"::ffff:9.8.7.6": "9.8.7.0/24", "2002:908:706::1": "9.8.7.0/24", "64:ff9b::908:807": "9.8.8.0/24",
		"2001:db8:1::5": "2001:db8:1::/48", "2001:db8:2::1": "2001:db8:2::/48",
		"ffff:ffff:ffff:ffff::1": "ffff:ffff:ffff::/48"}
	var keys []netKey
	for _, a := range addrs {
		k := netKeyOf(netip.MustParseAddr(a))
		if got := k.prefix().String(); got != want[a] {
			t.Errorf("%s: prefix %s, want %s", a, got, want[a])
		}
		keys = append(keys, k)
	}
	// Key order is netip's address order of the prefixes (IPv4 first).
	for i := 1; i < len(keys); i++ {
		if (keys[i-1] < keys[i]) != (keys[i-1].prefix().Addr().Compare(keys[i].prefix().Addr()) < 0) {
			t.Errorf("order of %s and %s differs from netip's", keys[i-1].prefix(), keys[i].prefix())
		}
	}
}

// TestTopNetworksMatchesAFullSort: the bounded selection returns exactly
// what sorting every network would, ties included.
func TestTopNetworksMatchesAFullSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a := newAggregator()
	for range 50_000 {
		ip := netip.AddrFrom4([4]byte{byte(81 + rng.IntN(4)), byte(rng.IntN(50)), byte(rng.IntN(50)), 1})
		if rng.IntN(5) == 0 {
			ip = netip.AddrFrom16([16]byte{0x2a, 0x02, byte(rng.IntN(3)), byte(rng.IntN(30)), 0, byte(rng.IntN(9))})
		}
		if err := a.add(Event{IP: ip, Country: "BR", ASOrg: "AS " + string(rune('A'+rng.IntN(3)))}); err != nil {
			t.Fatal(err)
		}
	}
	var all []network
	for k, v := range a.networks {
		all = append(all, network{k, v})
	}
	slices.SortFunc(all, func(x, y network) int {
		return cmp.Or(cmp.Compare(y.v.count, x.v.count), x.k.prefix().Addr().Compare(y.k.prefix().Addr()))
	})
	for _, n := range []int{1, 7, 1000, len(all) + 5} {
		got := a.topNetworks(n)
		if !slices.Equal(got, all[:min(n, len(all))]) {
			t.Errorf("top %d differs from the full sort", n)
		}
	}
	if len(a.labels) != 5 { // "", BR and three AS names
		t.Errorf("%d labels interned, want 5", len(a.labels))
	}
}
