package spammap

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/mxgrid/mxgrid/store"
)

// Reading every event costs 1–4 µs a row, 6–20 s for 5 M of them; the
// store's rollup (store/maprollup.go) holds the same counts in far fewer
// rows. The map is drawn from it, and gives the same bytes as the events
// would: the newest cfg.Points events at or after the window's start are
// whole hours, whose cells and countries come from the rollup, and at most
// one hour the limit or the window cuts, read event by event. Networks are
// counted per day: the days all of whose hours are whole come from the
// rollup, the whole hours of the one day the cut falls in are read event
// by event too (their networks only).

// snapshotter is an event source with a rollup: the store.
type snapshotter interface {
	snapshot(ctx context.Context, domains []int64) (*store.MapSnapshot, error)
}

func (s StoreEvents) snapshot(ctx context.Context, domains []int64) (*store.MapSnapshot, error) {
	return s.Store.OpenMapSnapshot(ctx, domains)
}

var _ snapshotter = StoreEvents{}

// collectRollup aggregates into a the newest limit events (limit <= 0:
// all) at or after since of domains (nil: every domain). ok is false, and
// a untouched, when the rollup awaits its rebuild: read the events.
func collectRollup(ctx context.Context, src snapshotter, domains []int64, limit int, since time.Time, a *aggregator) (ok bool, err error) {
	snap, err := src.snapshot(ctx, domains)
	if err != nil {
		return false, err
	}
	defer snap.Close()
	hours, lists, ok, err := snap.Hours(ctx, since)
	if err != nil || !ok {
		return false, err
	}
	remaining := int64(limit)
	if limit <= 0 {
		remaining = math.MaxInt64
	}
	var whole []store.MapHour
	// A day's network counts serve when every hour it has is whole.
	dayWhole := map[time.Time]bool{}
	for _, h := range hours {
		day := store.MapDay(h.Start)
		if _, seen := dayWhole[day]; !seen {
			dayWhole[day] = !day.Before(since)
		}
		if remaining == 0 {
			dayWhole[day] = false
			continue
		}
		if !h.Start.Before(since) && h.Events <= remaining {
			whole = append(whole, h)
			remaining -= h.Events
			continue
		}
		dayWhole[day] = false
		n, err := snap.Sources(ctx, h.Start, since, int(remaining), func(e store.Source) error {
			return a.add(Event(e))
		})
		if err != nil {
			return true, err
		}
		remaining -= int64(n)
	}
	if len(whole) == 0 {
		return true, nil
	}
	r := rollupReader{snap: snap, a: a}
	for _, h := range whole {
		a.events += int(h.Events)
		day := store.MapDay(h.Start)
		if !dayWhole[day] {
			if _, err := snap.Sources(ctx, h.Start, since, 0, func(e store.Source) error {
				a.addNetwork(Event(e))
				return nil
			}); err != nil {
				return true, err
			}
		} else if len(r.days) == 0 || !r.days[len(r.days)-1].Equal(day) {
			r.days = append(r.days, day)
			r.lists += int64(lists[day])
		}
	}
	// whole is newest first, and every hour with events between its
	// first and last is in it: the hours read event by event are older.
	oldest, newest := whole[len(whole)-1].Start, whole[0].Start
	from, to, err := snap.Span(ctx, oldest, newest)
	if err != nil {
		return true, err
	}
	if a.newest.IsZero() || to.After(a.newest) {
		a.newest = to
	}
	if a.oldest.IsZero() || from.Before(a.oldest) {
		a.oldest = from
	}
	if err := snap.Cells(ctx, oldest, newest, r.addCell); err != nil {
		return true, err
	}
	if len(r.days) == 0 {
		return true, nil
	}
	return true, r.networks(ctx)
}

type rollupReader struct {
	snap *store.MapSnapshot
	a    *aggregator
	// days are the days whose networks come from the rollup, newest
	// first; their counts are spread over lists lists (one per day and
	// domain).
	days  []time.Time
	lists int64
	cands map[netKey]netCand
}

func (r *rollupReader) addCell(c store.MapCellRow) error {
	at := eventAt{c.NewestUS, c.NewestID}
	if c.CellLat != store.NoCell {
		r.a.addCell(cellKey{c.CellLat, c.CellLon}, int(c.Events), c.SumLat, c.SumLon, at, c.Country, c.City)
	}
	if c.Country != "" {
		r.a.addCountry(c.Country, int(c.Events), at, c.CountryName)
	}
	return nil
}

// netCand is what is known of a network's count: exactly, the events read
// one by one (part) and the rollup rows read (rows, from lists of the
// lists); each list not read holds fewer events than the last threshold.
type netCand struct {
	part, rows, lists   int64
	asn, country, asOrg uint32
	newest              eventAt
}

func (r *rollupReader) merge(row store.MapNetRow) {
	k := netKey(row.Net)
	c, ok := r.cands[k]
	if !ok && !k.public() {
		return
	}
	if at := (eventAt{row.NewestUS, row.NewestID}); (c.rows == 0 && c.part == 0) || at.after(c.newest) {
		c.country, c.asn, c.asOrg, c.newest = r.a.label(row.Country), row.ASN, r.a.label(row.ASOrg), at
	}
	c.rows += row.Events
	c.lists++
	r.cands[k] = c
}

// firstThreshold is the smallest per-list count the first round reads: the
// busiest networks of a 5 M-event day send thousands.
const firstThreshold = 64

// networks finds the maxNetworks busiest networks of the whole days plus
// the events read one by one, exactly, reading as few rollup rows as it
// can. Each round reads every list's networks with at least t events (t
// halving each round), so a network's count is known to within (lists it
// was not seen in) × (t-1). Once no network left unseen can reach the
// k-th best lower bound, the few that still could are counted exactly and
// ranked; at t = 1 every row has been read and every count is exact.
func (r *rollupReader) networks(ctx context.Context) error {
	r.cands = make(map[netKey]netCand, len(r.a.networks))
	for k, n := range r.a.networks {
		r.cands[k] = netCand{part: int64(n.count), asn: n.asn, country: n.country, asOrg: n.asOrg, newest: eventAt{us: n.newest}}
	}
	merge := func(row store.MapNetRow) error {
		r.merge(row)
		return nil
	}
	below := int64(math.MaxInt64)
	for t := int64(firstThreshold); ; t /= 2 {
		for _, day := range r.days {
			if err := r.snap.BusyNets(ctx, day, t, below, merge); err != nil {
				return err
			}
		}
		if t == 1 {
			r.rank(func(netCand) bool { return true })
			return nil
		}
		if done, err := r.prove(ctx, t, merge); done || err != nil {
			return err
		}
		below = t
	}
}

// prove tries to settle the top list after a round read every row with at
// least t events; false means read more.
func (r *rollupReader) prove(ctx context.Context, t int64, merge func(store.MapNetRow) error) (bool, error) {
	if len(r.cands) < maxNetworks {
		return false, nil
	}
	lower := make([]int64, 0, len(r.cands))
	for _, c := range r.cands {
		lower = append(lower, c.part+c.rows)
	}
	slices.SortFunc(lower, func(x, y int64) int { return cmp.Compare(y, x) })
	kth := lower[maxNetworks-1]
	// A network never seen may have t-1 events in every list; it must
	// fall short even on a tie, as its address is unknown.
	if r.lists*(t-1) >= kth {
		return false, nil
	}
	upper := func(c netCand) int64 { return c.part + c.rows + (r.lists-c.lists)*(t-1) }
	var open []netKey
	for k, c := range r.cands {
		if c.lists < r.lists && upper(c) >= kth {
			open = append(open, k)
		}
	}
	// Beyond a few times the list, the next round is cheaper than
	// looking each one up.
	if len(open) > 4*maxNetworks {
		return false, nil
	}
	for _, k := range open {
		c := r.cands[k]
		c.rows, c.lists = 0, 0
		r.cands[k] = c
		// Every day with events from the oldest to the newest of days is
		// one of them: the day the cut falls in is older.
		if err := r.snap.Net(ctx, uint64(k), r.days[len(r.days)-1], r.days[0], merge); err != nil {
			return false, err
		}
		c = r.cands[k]
		c.lists = r.lists
		r.cands[k] = c
	}
	// Every network that can reach kth is now exact; the rest cannot be
	// among the busiest.
	r.rank(func(c netCand) bool { return c.lists == r.lists && c.part+c.rows >= kth })
	return true, nil
}

// rank sets the aggregator's top networks from the candidates keep accepts,
// each of which must be exact.
func (r *rollupReader) rank(keep func(netCand) bool) {
	type ranked struct {
		k     netKey
		count int64
		c     netCand
	}
	var all []ranked
	for k, c := range r.cands {
		if keep(c) {
			all = append(all, ranked{k, c.part + c.rows, c})
		}
	}
	slices.SortFunc(all, func(x, y ranked) int { return cmp.Or(cmp.Compare(y.count, x.count), cmp.Compare(x.k, y.k)) })
	r.a.top = make([]Network, 0, min(len(all), maxNetworks))
	for _, n := range all[:min(len(all), maxNetworks)] {
		r.a.top = append(r.a.top, Network{Prefix: n.k.prefix().String(), Count: int(n.count), Country: r.a.labels[n.c.country],
			ASN: n.c.asn, ASOrg: r.a.labels[n.c.asOrg]})
	}
}
