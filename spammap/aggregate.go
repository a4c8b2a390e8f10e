package spammap

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/mxgrid/mxgrid/geo"
	"github.com/mxgrid/mxgrid/store"
)

// Event is what the map needs of one stored spam or virus source.
type Event struct {
	Time    time.Time
	IP      netip.Addr
	Located bool
	// Country is the ISO 3166-1 alpha-2 code; it can be set when Located is
	// false (a country-only GeoIP answer).
	Country, CountryName, City string
	Lat, Lon                   float64
	ASN                        uint32
	ASOrg                      string
}

// EventSource streams the most recent events, newest first, at most limit of
// them and none older than since (zero: no bound). The store implements it;
// fn is called once per event so the map never holds the events themselves.
type EventSource interface {
	RecentEvents(ctx context.Context, limit int, since time.Time, fn func(Event) error) error
}

// Limits of what one map carries. They bound the JSON and SVG sizes, not the
// aggregation: every event is counted. Locations are store.MapCell's grid
// cells, shared with the store's rollup so both count alike.
const maxLocations = 5000

// maxNetworks is a variable only so that tests can make the rollup's
// search for the busiest networks (rollup.go) cut on small data.
var maxNetworks = 1000

// Aggregate is one generation of the map, and exactly what /map.json shows.
// It never holds an address: locations are grid cells, networks are /24 or
// /48 prefixes.
type Aggregate struct {
	Scope       string    `json:"scope"`
	GeneratedAt time.Time `json:"generated_at"`
	Window      Window    `json:"window"`
	// Events counts every event aggregated; Located those with a position.
	Events    int            `json:"events"`
	Located   int            `json:"located"`
	Locations []Location     `json:"locations"`
	Countries []CountryCount `json:"countries"`
	Networks  []Network      `json:"networks"`
	// Attribution is the GeoIP data's credit, which travels with the data.
	Attribution string `json:"attribution"`
	// Brand is the white label of a reseller's or customer's map; absent
	// on the global map.
	Brand *Brand `json:"brand,omitempty"`
}

// Brand is a reseller's white label as its maps show it.
type Brand struct {
	Name string `json:"name"`
	// Accent is a #rrggbb colour (validated by the tenant service; checked
	// again where it enters CSS).
	Accent string `json:"accent,omitempty"`
	// Logo is the logo's URL path on this host, when there is one.
	Logo string `json:"logo,omitempty"`
}

// Window is the time the events span, and what was asked for.
type Window struct {
	// From and To are the oldest and newest event's times; absent when the
	// map is empty.
	From *time.Time `json:"from,omitempty"`
	To   *time.Time `json:"to,omitempty"`
	// Points is the configured event limit; Seconds the configured maximum
	// age (0: none).
	Points  int   `json:"points"`
	Seconds int64 `json:"seconds"`
}

// Location is a grid cell with events: the weighted centre of its events,
// and the country and city of the most recent one.
type Location struct {
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	Count   int     `json:"count"`
	Country string  `json:"country,omitempty"`
	City    string  `json:"city,omitempty"`
}

// CountryCount is the number of events from one country.
type CountryCount struct {
	Code  string `json:"code"`
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// Network is the number of events from one /24 (IPv4) or /48 (IPv6).
type Network struct {
	Prefix  string `json:"prefix"`
	Count   int    `json:"count"`
	Country string `json:"country,omitempty"`
	ASN     uint32 `json:"asn,omitempty"`
	ASOrg   string `json:"as_org,omitempty"`
}

type cellKey struct{ lat, lon int32 }

// eventAt orders events as the store reads them, newest first: by time,
// then by id. Events streamed from the store carry no id (0): the stream's
// order already breaks their ties, and a rollup row, which has one, never
// shares an hour, so never a time, with them.
type eventAt struct{ us, id int64 }

func (a eventAt) after(b eventAt) bool { return a.us > b.us || (a.us == b.us && a.id > b.id) }

// Labels (a cell's city, a country's name, a network's AS) are the newest
// event's; newest says whose they are so that rollup rows and events can
// be merged in any order.
type cellAcc struct {
	count int
	// Sums in store.MapFixedPerDegree units: integer sums do not depend on
	// the order events are added in, so the rollup's equal a scan's.
	sumLat, sumLon int64
	country, city  string
	newest         eventAt
}

type countryAcc struct {
	count  int
	name   string
	newest eventAt
}

// netAcc is 24 bytes: a million networks (5 M events from /24s spread
// the way real spam is) fit in tens of megabytes. Labels are interned.
type netAcc struct {
	count   uint32
	asn     uint32
	country uint32 // index into aggregator.labels
	asOrg   uint32 // index into aggregator.labels
	newest  int64  // µs; events streamed within one hour come newest first
}

// netKey is store.MapNetKey: an IPv4 /24 or an IPv6 /48 in 8 bytes,
// ordered as netip orders addresses.
type netKey uint64

const netKeyV6 = 1 << 63

func netKeyOf(ip netip.Addr) netKey { return netKey(store.MapNetKey(ip)) }

func (k netKey) prefix() netip.Prefix {
	if k&netKeyV6 == 0 {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(k >> 16), byte(k >> 8), byte(k)}), 24)
	}
	var a [16]byte
	for i := range 6 {
		a[i] = byte(k >> (40 - 8*i))
	}
	return netip.PrefixFrom(netip.AddrFrom16(a), 48)
}

// public reports whether the network may be listed. A private, link-local,
// CGNAT or documentation network is a customer's or operator's internal
// addressing, which the public map must not show, and says nothing of
// where spam comes from; its events still count. Judged on the prefix
// (every special range is a whole /24 or /48, or a NAT64 /48 that names
// no network), so that the rollup's rows, which keep no address, are
// judged as the events are.
func (k netKey) public() bool { return geo.Public(k.prefix().Addr()) }

// aggregator accumulates counts per key; its memory grows with the number
// of distinct cells, countries and networks, never with the events.
type aggregator struct {
	cells     map[cellKey]*cellAcc
	countries map[string]*countryAcc
	// networks is the largest map (one entry per /24 or /48): values, not
	// pointers, under an 8-byte key, which hashes several times faster
	// than a netip.Prefix.
	networks map[netKey]netAcc
	// labels interns the networks' country codes and AS names: rows from
	// the store carry a fresh copy of each string.
	labels  []string
	labelID map[string]uint32
	events  int
	located int
	newest  time.Time
	oldest  time.Time
	// top, when set, is the busiest networks as the rollup proved them
	// (rollup.go); networks then holds only the events read one by one.
	top []Network
}

func newAggregator() *aggregator {
	return &aggregator{
		cells:     make(map[cellKey]*cellAcc),
		countries: make(map[string]*countryAcc),
		networks:  make(map[netKey]netAcc),
		labels:    []string{""},
		labelID:   map[string]uint32{"": 0},
	}
}

// add counts one event. Events arrive newest first (within an hour at
// least), so a label (city, AS name) is replaced only by a newer event's.
func (a *aggregator) add(e Event) error {
	a.events++
	if a.newest.IsZero() || e.Time.After(a.newest) {
		a.newest = e.Time
	}
	if a.oldest.IsZero() || e.Time.Before(a.oldest) {
		a.oldest = e.Time
	}
	at := eventAt{us: e.Time.UnixMicro()}
	if lat, lon, ok := store.MapCell(e.Located, e.Lat, e.Lon); ok {
		a.addCell(cellKey{lat, lon}, 1, store.MapFixed(e.Lat), store.MapFixed(e.Lon), at, e.Country, e.City)
	}
	if e.Country != "" {
		a.addCountry(e.Country, 1, at, e.CountryName)
	}
	a.addNetwork(e)
	return nil
}

func (a *aggregator) addNetwork(e Event) {
	if !e.IP.IsValid() {
		return
	}
	k := netKeyOf(e.IP)
	n, ok := a.networks[k]
	if !ok && !k.public() {
		return
	}
	if us := e.Time.UnixMicro(); !ok || us > n.newest {
		n.country, n.asn, n.asOrg, n.newest = a.label(e.Country), e.ASN, a.label(e.ASOrg), us
	}
	n.count++
	a.networks[k] = n
}

// addCell places count events in cell k, unless it is cell 0, 0: a
// quarter degree of open sea off West Africa where no address is, but
// where geo records every answer without coordinates (a country database,
// the embedded one included, knows none). Those count for their country
// only; they were all drawn as one point there. The rollup keeps them in
// the cell, so that every version counts and prunes them alike.
func (a *aggregator) addCell(k cellKey, count int, sumLat, sumLon int64, at eventAt, country, city string) {
	if k == (cellKey{}) {
		return
	}
	a.located += count
	c := a.cells[k]
	if c == nil {
		c = &cellAcc{}
		a.cells[k] = c
	}
	if c.count == 0 || at.after(c.newest) {
		c.country, c.city, c.newest = country, city, at
	}
	c.count += count
	c.sumLat += sumLat
	c.sumLon += sumLon
}

func (a *aggregator) addCountry(code string, count int, at eventAt, name string) {
	c := a.countries[code]
	if c == nil {
		c = &countryAcc{}
		a.countries[code] = c
	}
	if c.count == 0 || at.after(c.newest) {
		c.name, c.newest = name, at
	}
	c.count += count
}

func (a *aggregator) label(s string) uint32 {
	if id, ok := a.labelID[s]; ok {
		return id
	}
	id := uint32(len(a.labels))
	a.labels = append(a.labels, s)
	a.labelID[s] = id
	return id
}

// result sorts and truncates. Ties break on the key so that the same events
// always give the same bytes.
func (a *aggregator) result(scope string, cfg Config, generated time.Time, names map[string]string) *Aggregate {
	agg := &Aggregate{
		Scope:       scope,
		GeneratedAt: generated.UTC(),
		Window:      Window{Points: cfg.Points, Seconds: int64(cfg.Window / time.Second)},
		Events:      a.events,
		Located:     a.located,
		Locations:   []Location{},
		Countries:   []CountryCount{},
		Networks:    []Network{},
		Attribution: cfg.Attribution,
	}
	if a.events > 0 {
		from, to := a.oldest.UTC(), a.newest.UTC()
		agg.Window.From, agg.Window.To = &from, &to
	}

	type cell struct {
		k cellKey
		v *cellAcc
	}
	cells := make([]cell, 0, len(a.cells))
	for k, v := range a.cells {
		cells = append(cells, cell{k, v})
	}
	slices.SortFunc(cells, func(x, y cell) int {
		return cmp.Or(cmp.Compare(y.v.count, x.v.count), cmp.Compare(x.k.lat, y.k.lat), cmp.Compare(x.k.lon, y.k.lon))
	})
	for _, c := range cells[:min(len(cells), maxLocations)] {
		n := float64(c.v.count) * store.MapFixedPerDegree
		agg.Locations = append(agg.Locations, Location{
			// Two decimals (about 1 km) are more than the GeoIP data knows.
			Lat:     math.Round(float64(c.v.sumLat)/n*100) / 100,
			Lon:     math.Round(float64(c.v.sumLon)/n*100) / 100,
			Count:   c.v.count,
			Country: c.v.country,
			City:    c.v.city,
		})
	}

	for code, c := range a.countries {
		name := c.name
		if name == "" {
			name = cmp.Or(names[code], code)
		}
		agg.Countries = append(agg.Countries, CountryCount{Code: code, Name: name, Count: c.count})
	}
	slices.SortFunc(agg.Countries, func(x, y CountryCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Code, y.Code))
	})

	if a.top != nil {
		agg.Networks = a.top
		return agg
	}
	for _, n := range a.topNetworks(maxNetworks) {
		agg.Networks = append(agg.Networks, Network{
			Prefix: n.k.prefix().String(), Count: int(n.v.count), Country: a.labels[n.v.country],
			ASN: n.v.asn, ASOrg: a.labels[n.v.asOrg],
		})
	}
	return agg
}

type network struct {
	k netKey
	v netAcc
}

// topNetworks returns the n busiest networks, ties by address, without
// sorting all of them: a buffer of 2n is sorted and cut back to n each time
// it fills, so the work is O(networks × log n) and the memory O(n).
func (a *aggregator) topNetworks(n int) []network {
	byCount := func(x, y network) int {
		return cmp.Or(cmp.Compare(y.v.count, x.v.count), cmp.Compare(x.k, y.k))
	}
	top := make([]network, 0, 2*n)
	for k, v := range a.networks {
		top = append(top, network{k, v})
		if len(top) == cap(top) {
			slices.SortFunc(top, byCount)
			top = top[:n]
		}
	}
	slices.SortFunc(top, byCount)
	return top[:min(len(top), n)]
}

// Collect streams the most recent events from src and aggregates them.
func Collect(ctx context.Context, src EventSource, cfg Config, scope string, now time.Time, world *World) (*Aggregate, error) {
	var since time.Time
	if cfg.Window > 0 {
		since = now.Add(-cfg.Window)
	}
	a := newAggregator()
	if sn, ok := src.(snapshotter); ok {
		done, err := collectRollup(ctx, sn, nil, cfg.Points, since, a)
		if err != nil {
			return nil, fmt.Errorf("spammap: read rollup: %w", err)
		}
		if done {
			return a.result(scope, cfg, now, world.names()), nil
		}
	}
	if err := src.RecentEvents(ctx, cfg.Points, since, a.add); err != nil {
		return nil, fmt.Errorf("spammap: read events: %w", err)
	}
	return a.result(scope, cfg, now, world.names()), nil
}

// names maps country codes to Natural Earth's short names, for events whose
// GeoIP answer carried a code but no name.
func (w *World) names() map[string]string {
	m := make(map[string]string, len(w.Countries))
	for _, c := range w.Countries {
		if _, ok := m[c.Code]; !ok {
			m[c.Code] = c.Name
		}
	}
	return m
}
