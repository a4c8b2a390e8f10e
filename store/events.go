package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// StoredEvent is one refused or tagged message's source as stored: who sent
// it, what we decided, and where the sender is, when the GeoIP database knew.
type StoredEvent struct {
	// ID is set by InsertEvents (0 before): the rollup keeps the newest
	// event's id to break ties between events recorded in the same
	// microsecond as the map does, so ids are known before the rows are
	// written; and a batch given again with its ids is the same batch
	// (see batchIDs).
	ID       int64
	Time     time.Time
	IP       netip.Addr
	Node     string
	Provider string
	Domain   string
	// DomainID is the stored domain's id, 0 for config domains and for
	// events recorded before ids were.
	DomainID int64
	Verdict  string
	Action   string
	Score    float64
	// Symbols are the top symbols, most significant first. Symbol names are
	// identifiers (letters, digits, '_', '-', '.') and never contain spaces,
	// which is what lets them be stored space-separated.
	Symbols []string

	// Located is false when the address was not looked up (private range, no
	// database) or the location database did not know it; the location
	// fields are then zero. ASN and ASOrg come from the ASN database and
	// may be set either way.
	Located     bool
	Country     string // ISO 3166-1 alpha-2
	CountryName string
	City        string
	Lat, Lon    float64
	AccuracyKM  int
	ASN         uint32
	ASOrg       string
}

// eventsComponent names the events table's migrations in schema_migrations.
const eventsComponent = "events"

// eventMigrations create the events table. Time is stored as Unix
// microseconds in a BIGINT in both dialects: SQLite has no timestamp type
// (modernc writes time.Time as text whose order is not time order), and one
// representation keeps every query common to both.
//
// One index on (at_us, id) serves both hot paths: RecentEvents walks it
// backwards (newest first, id breaks ties so pages are stable) and
// PruneEvents walks it forwards from the oldest row.
var eventMigrations = []Migration{{
	Version: 1,
	SQLite: `CREATE TABLE events (
		id INTEGER PRIMARY KEY,
		at_us INTEGER NOT NULL,
		ip TEXT NOT NULL,
		node TEXT NOT NULL,
		provider TEXT NOT NULL,
		domain TEXT NOT NULL,
		verdict TEXT NOT NULL,
		action TEXT NOT NULL,
		score REAL NOT NULL,
		symbols TEXT NOT NULL,
		located INTEGER NOT NULL,
		country TEXT NOT NULL,
		country_name TEXT NOT NULL,
		city TEXT NOT NULL,
		lat REAL NOT NULL,
		lon REAL NOT NULL,
		accuracy_km INTEGER NOT NULL,
		asn INTEGER NOT NULL,
		as_org TEXT NOT NULL);
	CREATE INDEX events_at ON events (at_us, id);`,
	Postgres: `CREATE TABLE events (
		id BIGSERIAL PRIMARY KEY,
		at_us BIGINT NOT NULL,
		ip TEXT NOT NULL,
		node TEXT NOT NULL,
		provider TEXT NOT NULL,
		domain TEXT NOT NULL,
		verdict TEXT NOT NULL,
		action TEXT NOT NULL,
		score DOUBLE PRECISION NOT NULL,
		symbols TEXT NOT NULL,
		located BOOLEAN NOT NULL,
		country TEXT NOT NULL,
		country_name TEXT NOT NULL,
		city TEXT NOT NULL,
		lat DOUBLE PRECISION NOT NULL,
		lon DOUBLE PRECISION NOT NULL,
		accuracy_km INTEGER NOT NULL,
		asn BIGINT NOT NULL,
		as_org TEXT NOT NULL);
	CREATE INDEX events_at ON events (at_us, id);`,
}, {
	// The panel lists a domain's latest refusals and draws per-reseller and
	// per-customer maps: both read one domain's newest events, which
	// events_at would find only by scanning every domain's.
	Version:  2,
	SQLite:   `CREATE INDEX events_domain ON events (domain, at_us)`,
	Postgres: `CREATE INDEX events_domain ON events (domain, at_us)`,
}, {
	// A domain's history belongs to the stored domain, not its name: a
	// reseller re-creating a name another deleted must not see the old
	// owner's refusals. Older events cannot be attributed: domain id 0.
	Version: 3,
	Common: `ALTER TABLE events ADD COLUMN domain_id BIGINT NOT NULL DEFAULT 0;
	CREATE INDEX events_domain_id ON events (domain_id, at_us)`,
}, {
	// Since version 3 every per-domain read goes by domain_id: the index
	// on the name served no query and cost every event written (the node
	// writes one per refused or tagged message) a B-tree insert.
	Version: 4,
	Common:  `DROP INDEX IF EXISTS events_domain`,
}}

// MigrateEvents creates or upgrades the events table and the map rollup
// kept with it (maprollup.go), building the rollup of existing events.
func (s *Store) MigrateEvents(ctx context.Context) error {
	if err := s.Migrate(ctx, eventsComponent, eventMigrations); err != nil {
		return err
	}
	return s.migrateMapRollup(ctx)
}

const eventColumns = `at_us, ip, node, provider, domain, verdict, action, score, symbols,
	located, country, country_name, city, lat, lon, accuracy_km, asn, as_org, domain_id`

// eventColumnCount must match eventColumns and eventArgs.
const eventColumnCount = 19

// maxParams bounds one multi-row INSERT's parameters: under SQLite's 32766
// and PostgreSQL's 65535 limits, and large enough (about 500 rows) that
// per-statement overhead is amortised.
const maxParams = 9500

// insertSQL builds "INSERT INTO table (columns) VALUES ($1, ...), (...)"
// for n rows of ncols on PostgreSQL, and on SQLite
// "INSERT OR ROLLBACK INTO table (columns) VALUES (?, ...), (...)".
//
// SQLite needs the anonymous form: for each bound parameter modernc asks
// SQLite for the parameter's name, which SQLite finds by a linear scan of
// every named or numbered parameter ("$N" and "?N" alike), so a
// 9000-parameter statement spent 100+ ms binding; with bare "?" there are
// no names to scan.
//
// OR ROLLBACK: a statement that fails ends its whole transaction, which
// is what every caller does with a failed insert anyway. Under the default
// (ABORT) SQLite must be able to undo one statement alone, so a multi-row
// INSERT inside a transaction copied every page it touched to a statement
// journal, a temporary file: 2.5 % of a node's CPU in pwrite calls.
func insertSQL(table, columns string, ncols, n int, dialect string) string {
	numbered := dialect != SQLite
	var b strings.Builder
	b.Grow(64 + len(columns) + n*ncols*6)
	if numbered {
		b.WriteString("INSERT INTO ")
	} else {
		b.WriteString("INSERT OR ROLLBACK INTO ")
	}
	b.WriteString(table)
	b.WriteString(" (")
	b.WriteString(columns)
	b.WriteString(") VALUES ")
	p := 1
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range ncols {
			if c > 0 {
				b.WriteByte(',')
			}
			if numbered {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(p))
				p++
			} else {
				b.WriteByte('?')
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}

// eventArgs appends e's id and values in eventColumns' order; text holds
// the batch's joined symbols and addresses.
func eventArgs(args []any, text *batchText, e *StoredEvent) []any {
	a := rowArgs{args: args, ncols: eventColumnCount + 1}
	a.ints(e.ID, e.Time.UnixMicro())
	a.strs(text.addr(e.IP), e.Node, e.Provider, e.Domain, e.Verdict, e.Action)
	a.floats(e.Score)
	a.strs(text.join(e.Symbols, " "))
	a.bools(e.Located)
	a.strs(e.Country, e.CountryName, e.City)
	a.floats(e.Lat, e.Lon)
	a.ints(int64(e.AccuracyKM), int64(e.ASN))
	a.strs(e.ASOrg)
	a.ints(e.DomainID)
	return a.args
}

// InsertEvents writes evs in one transaction with multi-row INSERTs, and
// adds them to the map rollup in the same transaction: either the whole
// batch is stored and counted or none of it is. The call is bounded by the
// store's timeout unless ctx has an earlier deadline.
//
// It sets the events' IDs; on PostgreSQL the first time it is given the
// batch, and given again with them (the events queue's retry of a batch
// whose commit reply was lost) it does not store or count the batch twice.
func (s *Store) InsertEvents(ctx context.Context, evs []StoredEvent) error {
	if len(evs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	if s.Dialect == Postgres {
		stored, err := s.batchIDs(ctx, "events", len(evs), evs[0].ID, evs[0].Time,
			func(i int, id int64) { evs[i].ID = id })
		if err != nil || stored {
			return err
		}
	}
	what := fmt.Sprintf("insert %d events", len(evs))
	const columns, ncols = "id, " + eventColumns, eventColumnCount + 1
	stmts, err := s.insertStatements(ctx, "events", columns, ncols, len(evs))
	if err != nil {
		return err
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fail(what+": begin", err)
	}
	defer tx.Rollback()
	cursor, err := s.lockRollup(ctx, tx, false)
	if err != nil {
		return err
	}
	if s.Dialect != Postgres {
		if err := sqliteEventIDs(ctx, tx, evs); err != nil {
			return err
		}
	}
	var text batchText
	if err := s.insertRowsTx(ctx, tx, "events", columns, ncols, len(evs), "", stmts, func(args []any, i int) []any {
		return eventArgs(args, &text, &evs[i])
	}); err != nil {
		return err
	}
	// Events past a rebuild's cursor are the rebuild's to count.
	b := newRollupBatch(false)
	for i := range evs {
		if at := evs[i].Time.UnixMicro(); at < cursor {
			b.add(evs[i].ID, at, &evs[i])
		}
	}
	if err := s.writeRollup(ctx, tx, b); err != nil {
		return err
	}
	if beforeInsertCommit != nil {
		beforeInsertCommit("events")
	}
	if err := tx.Commit(); err != nil {
		return fail(what+": commit", err)
	}
	if cursor != math.MaxInt64 {
		// The batch is stored; a step that fails (this call's deadline)
		// is retried by the next batch, and the map reads events until
		// the rebuild is done.
		_, _ = s.rebuildStep(ctx)
	}
	return nil
}

// beforeInsertCommit, when a test sets it, is called with the table just
// before insertRows or InsertEvents commits.
var beforeInsertCommit func(table string)

// insertRows writes n rows in one transaction, with prepared statements;
// see insertRowsTx.
func (s *Store) insertRows(ctx context.Context, table, columns string, ncols, n int, argsOf func(args []any, i int) []any) error {
	stmts, err := s.insertStatements(ctx, table, columns, ncols, n)
	if err != nil {
		return err
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fail(fmt.Sprintf("insert %d %s rows: begin", n, table), err)
	}
	defer tx.Rollback()
	if err := s.insertRowsTx(ctx, tx, table, columns, ncols, n, "", stmts, argsOf); err != nil {
		return err
	}
	if beforeInsertCommit != nil {
		beforeInsertCommit(table)
	}
	if err := tx.Commit(); err != nil {
		return fail(fmt.Sprintf("insert %d %s rows: commit", n, table), err)
	}
	return nil
}

// insertRowsTx writes n rows in tx, in the chunks insertChunks gives;
// argsOf appends row i's values and suffix follows each statement's VALUES
// (an ON CONFLICT clause). stmts, from insertStatements for the same
// arguments, are the chunks' prepared statements; without them each
// statement is built and parsed here.
func (s *Store) insertRowsTx(ctx context.Context, tx *sql.Tx, table, columns string, ncols, n int, suffix string, stmts []*sql.Stmt, argsOf func(args []any, i int) []any) error {
	chunks := insertChunks(n, maxParams/ncols, stmts != nil)
	args := make([]any, 0, min(n, maxParams/ncols)*ncols)
	start := 0
	for i, rows := range chunks {
		args = args[:0]
		for row := start; row < start+rows; row++ {
			args = argsOf(args, row)
		}
		start += rows
		var err error
		if stmts != nil {
			_, err = tx.StmtContext(ctx, stmts[i]).ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertSQL(table, columns, ncols, rows, s.Dialect)+suffix, args...)
		}
		if err != nil {
			return fail(fmt.Sprintf("insert %d %s rows", n, table), err)
		}
	}
	return nil
}

// RecentEvents calls fn for each event at or after since, newest first, at
// most limit of them (limit <= 0: all). Rows are streamed, never held in a
// slice, so 250,000 events cost one row of memory. fn must not call the
// store: on SQLite the single connection is busy until RecentEvents returns
// (writers wait meanwhile). An error from fn stops the scan and is returned.
// The caller's ctx bounds the scan: it may legitimately take longer than the
// store's per-request timeout.
func (s *Store) RecentEvents(ctx context.Context, limit int, since time.Time, fn func(StoredEvent) error) error {
	query := `SELECT id, ` + eventColumns + ` FROM events WHERE at_us >= $1 ORDER BY at_us DESC, id DESC`
	args := []any{since.UnixMicro()}
	if limit > 0 {
		query += ` LIMIT $2`
		args = append(args, limit)
	}
	return s.scanEvents(ctx, "recent events", query, args, fn)
}

// scanEvents runs a query selecting id and eventColumns and calls fn for each
// decoded row; what names the query in errors.
func (s *Store) scanEvents(ctx context.Context, what, q string, args []any, fn func(StoredEvent) error) error {
	return scanRows(ctx, s.DB, what, q, args, func(rows *sql.Rows) (StoredEvent, error) {
		var (
			e       StoredEvent
			atUS    int64
			ip      string
			symbols string
			asn     int64
		)
		if err := rows.Scan(&e.ID, &atUS, &ip, &e.Node, &e.Provider, &e.Domain, &e.Verdict, &e.Action, &e.Score,
			&symbols, &e.Located, &e.Country, &e.CountryName, &e.City, &e.Lat, &e.Lon,
			&e.AccuracyKM, &asn, &e.ASOrg, &e.DomainID); err != nil {
			return e, err
		}
		e.Time = time.UnixMicro(atUS).UTC()
		var err error
		if e.IP, err = netip.ParseAddr(ip); err != nil {
			return e, fmt.Errorf("bad ip %q: %w", ip, err)
		}
		if symbols != "" {
			e.Symbols = strings.Split(symbols, " ")
		}
		e.ASN = uint32(asn)
		return e, nil
	}, fn)
}

// querier is a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scanRows runs q and calls fn with each row decoded by scan, streaming:
// nothing is held per row.
func scanRows[T any](ctx context.Context, db querier, what, q string, args []any, scan func(*sql.Rows) (T, error), fn func(T) error) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return fail(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return fail(fmt.Sprintf("%s: scan", what), err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fail(what, err)
	}
	return nil
}

// Source is where an event came from: all the spam map reads of it.
type Source struct {
	Time                       time.Time
	IP                         netip.Addr
	Located                    bool
	Country, CountryName, City string
	Lat, Lon                   float64
	ASN                        uint32
	ASOrg                      string
}

// sourceColumns are the columns a Source needs: half of eventColumns, and
// none that is split or parsed per row (symbols).
const sourceColumns = `at_us, ip, located, country, country_name, city, lat, lon, asn, as_org`

// RecentSources is RecentEvents for the map: the same events, newest
// first, read as Sources.
func (s *Store) RecentSources(ctx context.Context, limit int, since time.Time, fn func(Source) error) error {
	query := `SELECT ` + sourceColumns + ` FROM events WHERE at_us >= $1 ORDER BY at_us DESC, id DESC`
	args := []any{since.UnixMicro()}
	if limit > 0 {
		query += ` LIMIT $2`
		args = append(args, limit)
	}
	return s.scanSources(ctx, "recent sources", query, args, fn)
}

func (s *Store) scanSources(ctx context.Context, what, q string, args []any, fn func(Source) error) error {
	return scanSourcesIn(ctx, s.DB, what, q, args, fn)
}

// scanSourcesIn runs q, selecting sourceColumns, in db (the store or a
// snapshot's transaction).
func scanSourcesIn(ctx context.Context, db querier, what, q string, args []any, fn func(Source) error) error {
	return scanRows(ctx, db, what, q, args, func(rows *sql.Rows) (Source, error) {
		var (
			e    Source
			atUS int64
			ip   string
			asn  int64
		)
		if err := rows.Scan(&atUS, &ip, &e.Located, &e.Country, &e.CountryName, &e.City, &e.Lat, &e.Lon, &asn, &e.ASOrg); err != nil {
			return e, err
		}
		e.Time = time.UnixMicro(atUS).UTC()
		var err error
		if e.IP, err = netip.ParseAddr(ip); err != nil {
			return e, fmt.Errorf("bad ip %q: %w", ip, err)
		}
		e.ASN = uint32(asn)
		return e, nil
	}, fn)
}

// pruneChunk bounds one DELETE so that pruning a large backlog never holds
// SQLite's single writer (or a PostgreSQL transaction) for long: event
// inserts interleave between chunks.
const pruneChunk = 5000

// PruneEvents deletes events older than before, in chunks, and returns how
// many it deleted. Each chunk is bounded by the store's timeout and
// subtracts its events from the map rollup in its transaction.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.pruneEventsChunk(ctx, before.UnixMicro())
		total += n
		if err != nil {
			return total, err
		}
		if n < pruneChunk {
			return total, s.dropEmptyRollup(ctx)
		}
	}
}

// pruneTable deletes table's rows older than before (at_us), pruneChunk at
// a time; table must have an (at_us, id) index.
func (s *Store) pruneTable(ctx context.Context, table string, before time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.pruneChunk(ctx, table, before.UnixMicro())
		total += n
		if err != nil {
			return total, err
		}
		if n < pruneChunk {
			return total, nil
		}
	}
}

func (s *Store) pruneChunk(ctx context.Context, table string, beforeUS int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	// The subquery walks the (at_us, id) index from the oldest row; DELETE
	// ... LIMIT is not portable (PostgreSQL has none, SQLite only with a
	// build option).
	res, err := s.DB.ExecContext(ctx, `DELETE FROM `+table+` WHERE id IN (
		SELECT id FROM `+table+` WHERE at_us < $1 ORDER BY at_us, id LIMIT $2)`, beforeUS, pruneChunk)
	if err != nil {
		return 0, fail("prune "+table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fail("prune "+table+": rows affected", err)
	}
	return n, nil
}

// CountEvents returns how many events are stored; for tests and the admin
// view, not for hot paths.
func (s *Store) CountEvents(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var n int64
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
		return 0, fail("count events", err)
	}
	return n, nil
}
