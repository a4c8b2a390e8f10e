package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/netguard"
)

// The map rollup lets the spam map be drawn without reading every event:
// per domain, each hour's event count (map_hours) and counts per grid
// cell and country (map_cells), and each day's counts per network
// (map_nets: a network sends a few events an hour, so hourly rows would be
// nearly as many as the events), each row carrying its newest event's
// labels. Rows change in the same transaction as the events they count
// (InsertEvents adds, PruneEvents subtracts), so a reader in one snapshot
// sees a rollup that is exactly its events: a late batch lands in its own
// hour, and an hour cut by the retention boundary counts what is left of
// it. Subtracting never touches the labels: pruning takes the oldest
// events, so a row's newest event goes only with the last of its events.
// The rows of domain rollupAll count every domain's events, so the global
// map reads one list per hour or day instead of one per domain.
//
// While the rollup does not (yet) describe the events (a database
// migrated from before the rollup, or restored from an older backup),
// map_rollup_state.rebuild is set and the map reads events. The rebuild
// goes forward in time in short steps (rebuildStep), each its own
// transaction: cursor_us says how far it got, events before it are counted
// by inserts and prunes as usual, events after it are left for the steps.
// MigrateEvents runs steps while its deadline allows, each InsertEvents
// runs one more, so a large history never holds a node's start or the
// inserts for long.

// mapRollupComponent names the rollup's migrations in schema_migrations.
const mapRollupComponent = "map_rollup"

// rollupAll is the domain id of rollup rows that count every domain's
// events (the global map's).
const rollupAll = -1

// MapFixedPerDegree is the fixed-point unit of the cells' coordinate sums:
// a sum of floats depends on the order of its terms, so the rollup (summed
// in insertion order) and a scan of the events (newest first) would round
// differently; integer sums do not.
const MapFixedPerDegree = 1e7

// MapFixed is a coordinate in MapFixedPerDegree units.
func MapFixed(deg float64) int64 { return int64(math.Round(deg * MapFixedPerDegree)) }

// mapCellDegrees is the grid that merges nearby locations: a quarter of a
// degree (about 28 km) is finer than a circle on a 1000-unit world, and
// coarse enough that one city's GeoIP points fall in one cell.
const mapCellDegrees = 0.25

// NoCell is the cell coordinate of rows counting events without a usable
// position (counted for their country only).
const NoCell = math.MaxInt32

// MapCell is the grid cell of a position; ok is false when there is none
// (not located, or coordinates out of range).
func MapCell(located bool, lat, lon float64) (cellLat, cellLon int32, ok bool) {
	if !located || !(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180) {
		return NoCell, NoCell, false
	}
	return int32(math.Floor(lat / mapCellDegrees)), int32(math.Floor(lon / mapCellDegrees)), true
}

// MapNetKey packs an address's network into 8 bytes: an IPv4 /24 as its
// three octets, an IPv6 /48 as its six bytes with the top bit set, so that
// keys order IPv4 first and then by address, as netip does. An IPv6
// address that carries an IPv4 one (mapped, 6to4, NAT64) is that IPv4
// address's /24, as geo locates it: a 6to4 /48 is one IPv4 host, and the
// map, which never shows an address, listed it as 2002:808:808::/48.
func MapNetKey(ip netip.Addr) uint64 {
	ip = netguard.Embedded(ip)
	if ip.Is4() {
		a := ip.As4()
		return uint64(a[0])<<16 | uint64(a[1])<<8 | uint64(a[2])
	}
	a := ip.As16()
	return 1<<63 | uint64(a[0])<<40 | uint64(a[1])<<32 | uint64(a[2])<<24 | uint64(a[3])<<16 | uint64(a[4])<<8 | uint64(a[5])
}

const (
	hourUS = int64(time.Hour / time.Microsecond)
	dayUS  = 24 * hourUS
)

// floorTo is the start of the period (hourUS, dayUS) holding us: floor,
// not truncation toward zero, so that times before 1970 land in their own
// period as time.Truncate puts them.
func floorTo(us, period int64) int64 {
	p := us / period * period
	if p > us {
		p -= period
	}
	return p
}

// mapRollupMigrations create the rollup empty and ask for a rebuild from
// the first event on: a database with events gets a rollup of them.
// map_nets is keyed for one network's exact count (domain, net, day) and
// indexed for a day's busiest networks (domain, day, n).
var mapRollupMigrations = []Migration{{
	Version:  1,
	SQLite:   mapRollupSchema("WITHOUT ROWID"),
	Postgres: mapRollupSchema(""),
}}

func mapRollupSchema(keyed string) string {
	return `CREATE TABLE map_hours (domain_id BIGINT NOT NULL, hour_us BIGINT NOT NULL, n BIGINT NOT NULL,
		PRIMARY KEY (domain_id, hour_us)) ` + keyed + `;
	CREATE TABLE map_cells (domain_id BIGINT NOT NULL, hour_us BIGINT NOT NULL, cell_lat INTEGER NOT NULL,
		cell_lon INTEGER NOT NULL, country TEXT NOT NULL, n BIGINT NOT NULL, sum_lat BIGINT NOT NULL,
		sum_lon BIGINT NOT NULL, newest_us BIGINT NOT NULL, newest_id BIGINT NOT NULL, country_name TEXT NOT NULL,
		city TEXT NOT NULL, PRIMARY KEY (domain_id, hour_us, cell_lat, cell_lon, country)) ` + keyed + `;
	CREATE TABLE map_nets (domain_id BIGINT NOT NULL, net BIGINT NOT NULL, day_us BIGINT NOT NULL,
		n BIGINT NOT NULL, newest_us BIGINT NOT NULL, newest_id BIGINT NOT NULL, country TEXT NOT NULL,
		asn BIGINT NOT NULL, as_org TEXT NOT NULL, PRIMARY KEY (domain_id, net, day_us)) ` + keyed + `;
	CREATE INDEX map_nets_busiest ON map_nets (domain_id, day_us, n);
	CREATE TABLE map_rollup_state (id INTEGER PRIMARY KEY, rebuild INTEGER NOT NULL, cursor_us BIGINT NOT NULL);
	INSERT INTO map_rollup_state (id, rebuild, cursor_us) VALUES (1, 1, -9223372036854775808)`
}

// migrateMapRollup creates the rollup and advances its rebuild while ctx
// allows: what is left, later InsertEvents calls do.
func (s *Store) migrateMapRollup(ctx context.Context) error {
	if err := s.Migrate(ctx, mapRollupComponent, mapRollupMigrations); err != nil {
		return err
	}
	for {
		// A step reads rebuildStepEvents events; leave it a second.
		if d, ok := ctx.Deadline(); ok && time.Until(d) < time.Second {
			return nil
		}
		done, err := s.rebuildStep(ctx)
		if err != nil && ctx.Err() != nil {
			return nil // the steps done are kept
		}
		if err != nil || done {
			return err
		}
	}
}

// lockRollup takes the rollup's state row for the rest of tx, shared
// (event inserts and prunes, which may run side by side) or exclusive (a
// rebuild step, which must see none half done). Events before cursor are
// the rollup's to count (all of them once the rollup is current); the
// rebuild will count the others. SQLite's single writer serialises all of
// them anyway.
func (s *Store) lockRollup(ctx context.Context, tx *sql.Tx, exclusive bool) (cursor int64, err error) {
	q := `SELECT rebuild, cursor_us FROM map_rollup_state WHERE id = 1`
	if s.Dialect == Postgres {
		if exclusive {
			q += ` FOR UPDATE`
		} else {
			q += ` FOR SHARE`
		}
	}
	var rebuild int
	if err := tx.QueryRowContext(ctx, q).Scan(&rebuild, &cursor); err != nil {
		return 0, fail("lock map rollup", err)
	}
	if rebuild == 0 {
		return math.MaxInt64, nil
	}
	return cursor, nil
}

// RebuildMapRollup recomputes the rollup from the events, to the end: a
// bulk load that wrote events around InsertEvents needs it. The map reads
// events meanwhile.
func (s *Store) RebuildMapRollup(ctx context.Context) error {
	if err := s.restartRollup(ctx); err != nil {
		return err
	}
	for {
		done, err := s.rebuildStep(ctx)
		if err != nil || done {
			return err
		}
	}
}

// restartRollup empties the rollup and puts its rebuild's cursor before
// the first event.
func (s *Store) restartRollup(ctx context.Context) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fail("rebuild map rollup", err)
	}
	defer tx.Rollback()
	if _, err := s.lockRollup(ctx, tx, true); err != nil {
		return err
	}
	for _, q := range []string{`DELETE FROM map_hours`, `DELETE FROM map_cells`, `DELETE FROM map_nets`,
		`UPDATE map_rollup_state SET rebuild = 1, cursor_us = -9223372036854775808 WHERE id = 1`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fail("rebuild map rollup", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail("rebuild map rollup: commit", err)
	}
	return nil
}

// rebuildStepEvents bounds one rebuild step: well under a second of reading
// and writing, so the step holds inserts back no longer than a batch does.
// A variable only so that tests can take small steps.
var rebuildStepEvents = 20_000

// rebuildStep counts the next rebuildStepEvents events after the cursor
// and moves it past them (all events at one time in one step); done is
// true once the rollup is current.
func (s *Store) rebuildStep(ctx context.Context) (done bool, err error) {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return false, fail("rebuild map rollup", err)
	}
	defer tx.Rollback()
	cursor, err := s.lockRollup(ctx, tx, true)
	if err != nil || cursor == math.MaxInt64 {
		return true, err
	}
	var next sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT at_us FROM events WHERE at_us > $1 ORDER BY at_us LIMIT 1 OFFSET $2`,
		cursor, rebuildStepEvents).Scan(&next)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fail("rebuild map rollup: next step", err)
	}
	end := int64(math.MaxInt64)
	if next.Valid {
		end = next.Int64
	}
	b := newRollupBatch(false)
	// Read to the end before writing: PostgreSQL's connection cannot
	// write while it streams.
	if err := scanRows(ctx, tx, "rebuild map rollup", rollupSelect+` WHERE at_us >= $1 AND at_us < $2`, []any{cursor, end},
		scanRollupEvent, b.addEvent); err != nil {
		return false, err
	}
	if err := s.writeRollup(ctx, tx, b); err != nil {
		return false, err
	}
	done = end == math.MaxInt64
	rebuild := 1
	if done {
		rebuild = 0
	}
	if _, err := tx.ExecContext(ctx, `UPDATE map_rollup_state SET rebuild = $1, cursor_us = $2 WHERE id = 1`, rebuild, end); err != nil {
		return false, fail("rebuild map rollup: cursor", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fail("rebuild map rollup: commit", err)
	}
	return done, nil
}

// rollupSelect reads what the rollup needs of an event.
const rollupSelect = `SELECT id, at_us, ip, domain_id, located, country, country_name, city, lat, lon, asn, as_org FROM events`

// rolledEvent is an event as rollupSelect reads it.
type rolledEvent struct {
	id, at int64
	e      StoredEvent
}

func scanRollupEvent(rows *sql.Rows) (rolledEvent, error) {
	var (
		r   rolledEvent
		ip  string
		asn int64
	)
	e := &r.e
	if err := rows.Scan(&r.id, &r.at, &ip, &e.DomainID, &e.Located, &e.Country, &e.CountryName, &e.City,
		&e.Lat, &e.Lon, &asn, &e.ASOrg); err != nil {
		return r, err
	}
	// A zero address was stored as "invalid IP", which does not parse: no
	// network, as when InsertEvents rolled it up.
	e.IP, _ = netip.ParseAddr(ip)
	e.ASN = uint32(asn)
	return r, nil
}

type hourKey struct{ domain, hour int64 }

type cellKey struct {
	domain, hour int64
	lat, lon     int32
	country      string
}

// eventAt identifies a row's newest event: its time, then its id, the
// order the map reads events in.
type eventAt struct{ us, id int64 }

func (a eventAt) after(b eventAt) bool { return a.us > b.us || (a.us == b.us && a.id > b.id) }

// never is older than any event: what a subtraction's rows carry as their
// newest, so that the stored labels stay.
var never = eventAt{math.MinInt64, math.MinInt64}

type cellRow struct {
	n, sumLat, sumLon int64
	newest            eventAt
	countryName, city string
}

type netKey struct{ domain, net, day int64 }

type netRow struct {
	n       int64
	newest  eventAt
	country string
	asn     int64
	asOrg   string
}

// rollupBatch is events folded into rollup rows, ready to be added to
// (or, removed, subtracted from) the stored ones.
type rollupBatch struct {
	removed bool
	hours   map[hourKey]int64
	cells   map[cellKey]*cellRow
	nets    map[netKey]*netRow
}

func newRollupBatch(removed bool) *rollupBatch {
	return &rollupBatch{removed: removed, hours: map[hourKey]int64{}, cells: map[cellKey]*cellRow{}, nets: map[netKey]*netRow{}}
}

func (b *rollupBatch) addEvent(r rolledEvent) error {
	b.add(r.id, r.at, &r.e)
	return nil
}

// add counts (or uncounts) event id, at atUS, in its domain's rows and in
// rollupAll's.
func (b *rollupBatch) add(id, atUS int64, e *StoredEvent) {
	h, day := floorTo(atUS, hourUS), floorTo(atUS, dayUS)
	at, delta := eventAt{atUS, id}, int64(1)
	if b.removed {
		at, delta = never, -1
	}
	cellLat, cellLon, located := MapCell(e.Located, e.Lat, e.Lon)
	for _, d := range [2]int64{e.DomainID, rollupAll} {
		b.hours[hourKey{d, h}] += delta
		if located || e.Country != "" {
			k := cellKey{d, h, cellLat, cellLon, e.Country}
			c := b.cells[k]
			if c == nil {
				c = &cellRow{newest: never}
				b.cells[k] = c
			}
			c.n += delta
			if located {
				c.sumLat += delta * MapFixed(e.Lat)
				c.sumLon += delta * MapFixed(e.Lon)
			}
			if at.after(c.newest) {
				c.newest, c.countryName, c.city = at, e.CountryName, e.City
			}
		}
		if e.IP.IsValid() {
			k := netKey{d, int64(MapNetKey(e.IP)), day}
			r := b.nets[k]
			if r == nil {
				r = &netRow{newest: never}
				b.nets[k] = r
			}
			r.n += delta
			if at.after(r.newest) {
				r.newest, r.country, r.asn, r.asOrg = at, e.Country, int64(e.ASN), e.ASOrg
			}
		}
	}
}

// newerThan is the condition, in an upsert, that the incoming row's newest
// event is newer than the stored row's.
func newerThan(table string) string {
	return `(excluded.newest_us > ` + table + `.newest_us OR (excluded.newest_us = ` + table +
		`.newest_us AND excluded.newest_id > ` + table + `.newest_id))`
}

// pickNewer sets each column to the incoming value when the incoming row's
// newest event is newer: labels are the newest event's.
func pickNewer(table string, cols ...string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c + ` = CASE WHEN ` + newerThan(table) + ` THEN excluded.` + c + ` ELSE ` + table + `.` + c + ` END`
	}
	return strings.Join(parts, ", ")
}

var (
	upsertHours = ` ON CONFLICT (domain_id, hour_us) DO UPDATE SET n = map_hours.n + excluded.n`
	upsertCells = ` ON CONFLICT (domain_id, hour_us, cell_lat, cell_lon, country) DO UPDATE SET n = map_cells.n + excluded.n,
		sum_lat = map_cells.sum_lat + excluded.sum_lat, sum_lon = map_cells.sum_lon + excluded.sum_lon, ` +
		pickNewer("map_cells", "country_name", "city", "newest_id", "newest_us")
	upsertNets = ` ON CONFLICT (domain_id, net, day_us) DO UPDATE SET n = map_nets.n + excluded.n, ` +
		pickNewer("map_nets", "country", "asn", "as_org", "newest_id", "newest_us")
)

// writeRollup adds b's rows to the stored ones. Rows go in key order, so
// that concurrent writers on PostgreSQL lock shared rows (rollupAll's
// above all) in one order and never deadlock.
func (s *Store) writeRollup(ctx context.Context, tx *sql.Tx, b *rollupBatch) error {
	hours := sortedKeys(b.hours, func(x, y hourKey) int { return cmp.Or(cmp.Compare(x.domain, y.domain), cmp.Compare(x.hour, y.hour)) })
	if err := s.insertRowsTx(ctx, tx, "map_hours", "domain_id, hour_us, n", 3, len(hours), upsertHours, nil,
		func(args []any, i int) []any {
			return append(args, hours[i].domain, hours[i].hour, b.hours[hours[i]])
		}); err != nil {
		return err
	}
	cells := sortedKeys(b.cells, func(x, y cellKey) int {
		return cmp.Or(cmp.Compare(x.domain, y.domain), cmp.Compare(x.hour, y.hour), cmp.Compare(x.lat, y.lat),
			cmp.Compare(x.lon, y.lon), strings.Compare(x.country, y.country))
	})
	if err := s.insertRowsTx(ctx, tx, "map_cells",
		"domain_id, hour_us, cell_lat, cell_lon, country, n, sum_lat, sum_lon, newest_us, newest_id, country_name, city", 12,
		len(cells), upsertCells, nil, func(args []any, i int) []any {
			k, r := cells[i], b.cells[cells[i]]
			return append(args, k.domain, k.hour, k.lat, k.lon, k.country, r.n, r.sumLat, r.sumLon, r.newest.us, r.newest.id,
				r.countryName, r.city)
		}); err != nil {
		return err
	}
	nets := sortedKeys(b.nets, func(x, y netKey) int {
		return cmp.Or(cmp.Compare(x.domain, y.domain), cmp.Compare(x.net, y.net), cmp.Compare(x.day, y.day))
	})
	return s.insertRowsTx(ctx, tx, "map_nets", "domain_id, net, day_us, n, newest_us, newest_id, country, asn, as_org", 9,
		len(nets), upsertNets, nil, func(args []any, i int) []any {
			k, r := nets[i], b.nets[nets[i]]
			return append(args, k.domain, k.net, k.day, r.n, r.newest.us, r.newest.id, r.country, r.asn, r.asOrg)
		})
}

func sortedKeys[K comparable, V any](m map[K]V, order func(K, K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, order)
	return keys
}

// pruneEventsChunk deletes up to pruneChunk of the oldest events before
// before and subtracts them from the rollup, in one transaction.
func (s *Store) pruneEventsChunk(ctx context.Context, before int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, fail("prune events", err)
	}
	defer tx.Rollback()
	cursor, err := s.lockRollup(ctx, tx, false)
	if err != nil {
		return 0, err
	}
	var ids []int64
	b := newRollupBatch(true)
	// The subquery walks the (at_us, id) index from the oldest row;
	// DELETE ... LIMIT is not portable (PostgreSQL has none, SQLite only
	// with a build option).
	if err := scanRows(ctx, tx, "prune events", rollupSelect+` WHERE at_us < $1 ORDER BY at_us, id LIMIT $2`,
		[]any{before, pruneChunk}, scanRollupEvent, func(r rolledEvent) error {
			ids = append(ids, r.id)
			if r.at < cursor {
				return b.addEvent(r)
			}
			return nil
		}); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	in, set := domainSet(s.Dialect, ids)
	if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE at_us < $1 AND id `+in, before, set); err != nil {
		return 0, fail("prune events", err)
	}
	if err := s.writeRollup(ctx, tx, b); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fail("prune events: commit", err)
	}
	return int64(len(ids)), nil
}

// dropEmptyRollup deletes the rows pruning emptied. Readers skip them, so
// this is housekeeping: by hour for cells, and for networks once a
// domain's whole day is empty (each network row spans the day). Only rows
// still empty go, whatever a late batch added meanwhile.
func (s *Store) dropEmptyRollup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fail("drop empty map rollup", err)
	}
	defer tx.Rollback()
	var empty []hourKey
	if err := scanRows(ctx, tx, "drop empty map rollup", `SELECT domain_id, hour_us FROM map_hours WHERE n = 0`, nil,
		func(rows *sql.Rows) (hourKey, error) {
			var k hourKey
			return k, rows.Scan(&k.domain, &k.hour)
		}, func(k hourKey) error {
			empty = append(empty, k)
			return nil
		}); err != nil {
		return err
	}
	days := map[hourKey]bool{}
	for _, k := range empty {
		if _, err := tx.ExecContext(ctx, `DELETE FROM map_cells WHERE domain_id = $1 AND hour_us = $2 AND n = 0`, k.domain, k.hour); err != nil {
			return fail("drop empty map cells", err)
		}
		days[hourKey{k.domain, floorTo(k.hour, dayUS)}] = true
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM map_hours WHERE n = 0`); err != nil {
		return fail("drop empty map hours", err)
	}
	for d := range days {
		var left int64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM map_hours WHERE domain_id = $1 AND hour_us >= $2 AND hour_us < $3`,
			d.domain, d.hour, d.hour+dayUS).Scan(&left); err != nil {
			return fail("drop empty map networks", err)
		}
		if left > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM map_nets WHERE domain_id = $1 AND day_us = $2 AND n = 0`, d.domain, d.hour); err != nil {
			return fail("drop empty map networks", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail("drop empty map rollup: commit", err)
	}
	return nil
}

// sqliteEventIDs gives evs their ids, what the column's default would:
// SQLite's single writer takes none between this read and the insert.
func sqliteEventIDs(ctx context.Context, tx *sql.Tx, evs []StoredEvent) error {
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&last); err != nil {
		return fail("allocate event ids", err)
	}
	for i := range evs {
		evs[i].ID = last + 1 + int64(i)
	}
	return nil
}

// MapSnapshot reads one scope's rollup and events as of one instant, so
// that counts read by separate queries agree. It holds a read transaction
// (on SQLite, the store's one connection: writers wait) until Close.
type MapSnapshot struct {
	tx *sql.Tx
	// all is true for the global scope: rollupAll's rows, every event.
	all     bool
	domains any
	in      string
}

// OpenMapSnapshot starts a snapshot of the events of domains, or of every
// domain when domains is nil.
func (s *Store) OpenMapSnapshot(ctx context.Context, domains []int64) (*MapSnapshot, error) {
	var opts *sql.TxOptions
	if s.Dialect == Postgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := s.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, fail("map snapshot", err)
	}
	m := &MapSnapshot{tx: tx, all: domains == nil}
	if m.all {
		domains = []int64{rollupAll}
	}
	m.in, m.domains = domainSet(s.Dialect, domains)
	return m, nil
}

// Close ends the snapshot.
func (m *MapSnapshot) Close() error { return m.tx.Rollback() }

// MapHour is one hour of the scope's events.
type MapHour struct {
	Start  time.Time
	Events int64
}

// MapDay is the start of the UTC day holding t, the period of network
// counts.
func MapDay(t time.Time) time.Time { return t.Truncate(24 * time.Hour) }

// Hours returns the hours holding the scope's events at or after since,
// newest first, and for each day (MapDay) how many domains' lists its
// network counts are spread over. ok is false when the rollup awaits its
// rebuild: read the events instead.
func (m *MapSnapshot) Hours(ctx context.Context, since time.Time) (hours []MapHour, lists map[time.Time]int, ok bool, err error) {
	var rebuild int
	if err := m.tx.QueryRowContext(ctx, `SELECT rebuild FROM map_rollup_state WHERE id = 1`).Scan(&rebuild); err != nil {
		return nil, nil, false, fail("map hours", err)
	}
	if rebuild != 0 {
		return nil, nil, false, nil
	}
	byHour := map[int64]int64{}
	domainDays := map[hourKey]bool{}
	err = scanRows(ctx, m.tx, "map hours", `SELECT domain_id, hour_us, n FROM map_hours WHERE hour_us >= $1 AND domain_id `+m.in+` AND n > 0`,
		[]any{floorTo(since.UnixMicro(), hourUS), m.domains}, func(rows *sql.Rows) ([3]int64, error) {
			var r [3]int64
			return r, rows.Scan(&r[0], &r[1], &r[2])
		}, func(r [3]int64) error {
			byHour[r[1]] += r[2]
			domainDays[hourKey{r[0], floorTo(r[1], dayUS)}] = true
			return nil
		})
	if err != nil {
		return nil, nil, false, err
	}
	for h, n := range byHour {
		hours = append(hours, MapHour{Start: time.UnixMicro(h).UTC(), Events: n})
	}
	slices.SortFunc(hours, func(x, y MapHour) int { return y.Start.Compare(x.Start) })
	lists = map[time.Time]int{}
	for k := range domainDays {
		lists[time.UnixMicro(k.hour).UTC()]++
	}
	return hours, lists, true, nil
}

// Span returns the oldest event's time in the hour starting at oldest and
// the newest's in the hour starting at newest: the window of the hours
// between, which the rollup does not keep.
func (m *MapSnapshot) Span(ctx context.Context, oldest, newest time.Time) (from, to time.Time, err error) {
	var f, t int64
	q := func(agg string, hour time.Time, v *int64) error {
		sel := `SELECT ` + agg + `(at_us) FROM events WHERE at_us >= $1 AND at_us < $2`
		args := []any{hour.UnixMicro(), hour.UnixMicro() + hourUS}
		if !m.all {
			sel = `SELECT ` + agg + `(at_us) FROM events WHERE at_us >= $1 AND domain_id ` + m.in + ` AND at_us < $3`
			args = []any{args[0], m.domains, args[1]}
		}
		return m.tx.QueryRowContext(ctx, sel, args...).Scan(v)
	}
	if err := q("MIN", oldest, &f); err != nil {
		return from, to, fail("map span", err)
	}
	if err := q("MAX", newest, &t); err != nil {
		return from, to, fail("map span", err)
	}
	return time.UnixMicro(f).UTC(), time.UnixMicro(t).UTC(), nil
}

// MapCellRow is one cell's (or, at NoCell, one country's unplaced) events
// in one hour.
type MapCellRow struct {
	CellLat, CellLon   int32
	Country            string
	Events             int64
	SumLat, SumLon     int64 // MapFixedPerDegree units
	NewestUS, NewestID int64
	CountryName, City  string
}

// Cells streams the cell rows of the hours from..to (inclusive).
func (m *MapSnapshot) Cells(ctx context.Context, from, to time.Time, fn func(MapCellRow) error) error {
	return scanRows(ctx, m.tx, "map cells", `SELECT cell_lat, cell_lon, country, n, sum_lat, sum_lon, newest_us, newest_id,
		country_name, city FROM map_cells WHERE hour_us >= $1 AND domain_id `+m.in+` AND hour_us <= $3 AND n > 0`,
		[]any{from.UnixMicro(), m.domains, to.UnixMicro()},
		func(rows *sql.Rows) (MapCellRow, error) {
			var c MapCellRow
			return c, rows.Scan(&c.CellLat, &c.CellLon, &c.Country, &c.Events, &c.SumLat, &c.SumLon, &c.NewestUS, &c.NewestID,
				&c.CountryName, &c.City)
		}, fn)
}

// MapNetRow is one network's events in one day and one domain's list.
type MapNetRow struct {
	Net                uint64 // MapNetKey
	Events             int64
	NewestUS, NewestID int64
	Country            string
	ASN                uint32
	ASOrg              string
}

const netSelect = `SELECT net, n, newest_us, newest_id, country, asn, as_org FROM map_nets`

func scanNet(rows *sql.Rows) (MapNetRow, error) {
	var (
		r        MapNetRow
		net, asn int64
	)
	err := rows.Scan(&net, &r.Events, &r.NewestUS, &r.NewestID, &r.Country, &asn, &r.ASOrg)
	r.Net, r.ASN = uint64(net), uint32(asn)
	return r, err
}

// BusyNets streams the rows of day with at least least and fewer than
// below events: an index range, however many networks the day has.
func (m *MapSnapshot) BusyNets(ctx context.Context, day time.Time, least, below int64, fn func(MapNetRow) error) error {
	return scanRows(ctx, m.tx, "map networks", netSelect+` WHERE day_us = $1 AND domain_id `+m.in+` AND n >= $3 AND n < $4`,
		[]any{day.UnixMicro(), m.domains, least, below}, scanNet, fn)
}

// Net streams one network's rows with events in the days from..to
// (inclusive).
func (m *MapSnapshot) Net(ctx context.Context, net uint64, from, to time.Time, fn func(MapNetRow) error) error {
	return scanRows(ctx, m.tx, "map network", netSelect+` WHERE day_us >= $1 AND domain_id `+m.in+` AND net = $3 AND day_us <= $4 AND n > 0`,
		[]any{from.UnixMicro(), m.domains, int64(net), to.UnixMicro()}, scanNet, fn)
}

// Sources streams the scope's events of the hour starting at hour, none
// before since, newest first, at most limit (<= 0: all), and returns how
// many it read.
func (m *MapSnapshot) Sources(ctx context.Context, hour, since time.Time, limit int, fn func(Source) error) (int, error) {
	q := `SELECT ` + sourceColumns + ` FROM events WHERE at_us >= $1 AND at_us < $2`
	args := []any{max(hour.UnixMicro(), since.UnixMicro()), hour.UnixMicro() + hourUS}
	if !m.all {
		q = `SELECT ` + sourceColumns + ` FROM events WHERE at_us >= $1 AND domain_id ` + m.in + ` AND at_us < $3`
		args = []any{args[0], m.domains, args[1]}
	}
	q += ` ORDER BY at_us DESC, id DESC`
	if limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(limit)
	}
	n := 0
	err := scanSourcesIn(ctx, m.tx, "map hour events", q, args, func(e Source) error {
		n++
		return fn(e)
	})
	return n, err
}
