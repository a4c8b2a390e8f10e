package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
	"github.com/mxgrid/mxgrid/verdict"
)

// The message log: one row per recipient outcome (tracking.Record).
//
// On PostgreSQL the table is partitioned by day (at_us ranges), so keeping
// 30 days costs one DROP TABLE a day instead of deleting millions of rows;
// partitions are created when a batch first needs one. SQLite has no
// partitions: old rows go in bounded batched deletes, as events do.

const trackingComponent = "tracking"

const trackingColumns = `at_us, node, queue_id, client_ip, helo, sender, recipient, domain, domain_id, customer_id,
	size, message_id, subject, action, reason, score, symbols, status, reply_code, reply, downstream,
	reference, defer_reason, tls_in, tls_out, duration_ms`

const trackingColumnCount = 26

// The indexes serve the searches a support desk makes: by recipient, by
// sender, by Message-ID, queue id or reference, each within a tenant and a
// time range, newest first.
const trackingIndexes = `
	CREATE INDEX message_log_at ON message_log (at_us, id);
	CREATE INDEX message_log_customer ON message_log (customer_id, at_us);
	CREATE INDEX message_log_domain ON message_log (domain_id, at_us);
	CREATE INDEX message_log_rcpt ON message_log (lower(recipient), at_us);
	CREATE INDEX message_log_sender ON message_log (lower(sender), at_us);
	CREATE INDEX message_log_msgid ON message_log (message_id);
	CREATE INDEX message_log_queue ON message_log (queue_id);
	CREATE INDEX message_log_ref ON message_log (reference);`

const trackingTable = `
		node TEXT NOT NULL,
		queue_id TEXT NOT NULL,
		client_ip TEXT NOT NULL,
		helo TEXT NOT NULL,
		sender TEXT NOT NULL,
		recipient TEXT NOT NULL,
		domain TEXT NOT NULL,
		domain_id BIGINT NOT NULL,
		customer_id BIGINT NOT NULL,
		size BIGINT NOT NULL,
		message_id TEXT NOT NULL,
		subject TEXT NOT NULL,
		action TEXT NOT NULL,
		reason TEXT NOT NULL,
		score DOUBLE PRECISION NOT NULL,
		symbols TEXT NOT NULL,
		status TEXT NOT NULL,
		reply_code INTEGER NOT NULL,
		reply TEXT NOT NULL,
		downstream TEXT NOT NULL,
		reference TEXT NOT NULL,
		defer_reason TEXT NOT NULL,
		tls_in BOOLEAN NOT NULL,
		tls_out BOOLEAN NOT NULL,
		duration_ms BIGINT NOT NULL`

var trackingMigrations = []Migration{{
	Version: 1,
	SQLite: `CREATE TABLE message_log (
		id INTEGER PRIMARY KEY,
		at_us INTEGER NOT NULL,` + trackingTable + `);` + trackingIndexes,
	Postgres: `CREATE TABLE message_log (
		id BIGSERIAL,
		at_us BIGINT NOT NULL,` + trackingTable + `,
		PRIMARY KEY (at_us, id)) PARTITION BY RANGE (at_us);
	CREATE INDEX message_log_id ON message_log (id);` + trackingIndexes,
}, {
	// SQLite: with an index on an expression, every multi-row INSERT in a
	// transaction kept a statement journal (the expression might fail
	// half-way), which spilled to a temporary file: twice the page writes
	// of the same batch under plain indexes. NOCASE folds ASCII exactly as
	// SQLite's lower() does, and SearchTracking asks in the form these
	// indexes serve (caselessEquals). PostgreSQL keeps lower().
	Version: 2,
	SQLite: `DROP INDEX message_log_rcpt;
	DROP INDEX message_log_sender;
	CREATE INDEX message_log_rcpt ON message_log (recipient COLLATE NOCASE, at_us);
	CREATE INDEX message_log_sender ON message_log (sender COLLATE NOCASE, at_us);`,
	Postgres: `SELECT 1`,
}}

// MigrateTracking creates or upgrades the message log.
func (s *Store) MigrateTracking(ctx context.Context) error {
	return s.Migrate(ctx, trackingComponent, trackingMigrations)
}

// dayOf is the UTC day a time falls in, as the partition bounds use.
func dayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func partitionName(day time.Time) string { return "message_log_" + day.Format("20060102") }

// ensurePartitions creates the PostgreSQL partitions recs need. Two nodes
// may race to create one: the loser's error is ignored when the partition
// exists afterwards.
func (s *Store) ensurePartitions(ctx context.Context, recs []tracking.Record) error {
	if s.Dialect != Postgres {
		return nil
	}
	for i := range recs {
		day := dayOf(recs[i].Time)
		if _, ok := s.partitions.Load(day); ok {
			continue
		}
		next := day.AddDate(0, 0, 1)
		q := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF message_log FOR VALUES FROM (%d) TO (%d)`,
			partitionName(day), day.UnixMicro(), next.UnixMicro())
		if _, err := s.DB.ExecContext(ctx, q); err != nil {
			var exists bool
			if qerr := s.DB.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, partitionName(day)).Scan(&exists); qerr != nil || !exists {
				return fail("create message log partition "+partitionName(day), err)
			}
		}
		s.partitions.Store(day, true)
	}
	return nil
}

// trackingArgs appends r's values in trackingColumns' order, after its id
// when withID; text holds the batch's joined symbols and addresses.
func trackingArgs(args []any, text *batchText, r *tracking.Record, withID bool) []any {
	ip := ""
	if r.ClientIP.IsValid() {
		ip = text.addr(r.ClientIP)
	}
	a := rowArgs{args: args, ncols: trackingColumnCount}
	if withID {
		a.ncols++
		a.ints(r.ID)
	}
	a.ints(r.Time.UnixMicro())
	a.strs(r.Node, r.QueueID, ip, r.HELO, r.Sender, r.Recipient, r.Domain)
	a.ints(r.DomainID, r.CustomerID, r.Size)
	a.strs(r.MessageID, r.Subject, r.Action, string(r.Reason))
	a.floats(r.Score)
	a.strs(text.join(r.Symbols, " "), string(r.Status))
	a.ints(int64(r.ReplyCode))
	a.strs(r.Reply, r.Downstream, r.Reference, string(r.DeferReason))
	a.bools(r.TLSIn, r.TLSOut)
	a.ints(r.Duration.Milliseconds())
	return a.args
}

// InsertTracking writes recs in one transaction (all or none).
//
// On PostgreSQL it sets each record's ID, from the log's sequence, the
// first time it is given the batch: a commit can take effect while its
// reply is lost (the connection broken after the COMMIT went out, the
// store's timeout passing meanwhile), and tracking's queue writes a batch
// that failed again, whole. Written again under new ids, every record of
// the batch was in the log twice. Given again with its ids, a batch one of
// whose rows is stored was committed, and is not written twice.
func (s *Store) InsertTracking(ctx context.Context, recs []tracking.Record) error {
	if len(recs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	if err := s.ensurePartitions(ctx, recs); err != nil {
		return err
	}
	withID := s.Dialect == Postgres
	if withID {
		stored, err := s.batchIDs(ctx, "message_log", len(recs), recs[0].ID, recs[0].Time,
			func(i int, id int64) { recs[i].ID = id })
		if err != nil || stored {
			return err
		}
	}
	columns, ncols := trackingColumns, trackingColumnCount
	if withID {
		columns, ncols = "id, "+columns, ncols+1
	}
	var text batchText
	return s.insertRows(ctx, "message_log", columns, ncols, len(recs), func(args []any, i int) []any {
		return trackingArgs(args, &text, &recs[i], withID)
	})
}

// PruneTracking deletes records older than before: whole day partitions on
// PostgreSQL (a day is dropped once all of it is older), batched deletes on
// SQLite.
func (s *Store) PruneTracking(ctx context.Context, before time.Time) (int64, error) {
	if s.Dialect != Postgres {
		return s.pruneTable(ctx, "message_log", before)
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	rows, err := s.DB.QueryContext(ctx, `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relname = 'message_log'`)
	if err != nil {
		return 0, fail("list message log partitions", err)
	}
	var old []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return 0, fail("list message log partitions: scan", err)
		}
		day, err := time.Parse("20060102", strings.TrimPrefix(name, "message_log_"))
		if err == nil && !day.AddDate(0, 0, 1).After(before) {
			old = append(old, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fail("list message log partitions", err)
	}
	var total int64
	for _, name := range old {
		var n int64
		if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+name).Scan(&n); err != nil {
			return total, fail("count "+name, err)
		}
		if _, err := s.DB.ExecContext(ctx, `DROP TABLE IF EXISTS `+name); err != nil {
			return total, fail("drop "+name, err)
		}
		day, _ := time.Parse("20060102", strings.TrimPrefix(name, "message_log_"))
		s.partitions.Delete(day)
		total += n
	}
	return total, nil
}

// sqlWhere gathers a query's conditions and their arguments, numbering
// the "?" placeholders as $1, $2... in order.
type sqlWhere struct {
	conds []string
	args  []any
}

func (w *sqlWhere) add(cond string, v ...any) {
	for _, x := range v {
		w.args = append(w.args, x)
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

// tenant adds the scope and the domain and customer filters every tenant
// object's list takes.
func (w *sqlWhere) tenant(scope tracking.Scope, domainID, customerID int64) {
	if !scope.Operator {
		w.add(resellerScope, scope.ResellerID)
	}
	if domainID != 0 {
		w.add("domain_id = ?", domainID)
	}
	if customerID != 0 {
		w.add("customer_id = ?", customerID)
	}
}

// sql is " WHERE a AND b", or "" without conditions.
func (w *sqlWhere) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// resellerScope keeps a reseller to its customers' records. Records carry
// the customer, not the reseller: history follows a customer the operator
// moves, as a domain's statistics follow the domain. Ids are never reused
// (AUTOINCREMENT, sequences), so a new customer never inherits a deleted
// one's records. Config domains (customer 0) are the operator's alone.
const resellerScope = `customer_id IN (SELECT id FROM customers WHERE reseller_id = ?)`

// SearchTracking returns a page of records matching f, newest first, and
// the cursor of the next page (zero when this was the last).
func (s *Store) SearchTracking(ctx context.Context, f tracking.Filter) ([]tracking.Record, tracking.Cursor, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	limit := f.Limit
	if limit <= 0 || limit > tracking.MaxLimit {
		limit = tracking.MaxLimit
	}
	var w sqlWhere
	w.tenant(f.Scope, f.DomainID, f.CustomerID)
	add := w.add
	if f.Recipient != "" {
		add(s.caselessEquals("recipient", "?"), f.Recipient)
	}
	if f.Sender != "" {
		spellings := []any{f.Sender}
		conds := []string{s.caselessEquals("sender", "?")}
		for _, o := range f.SenderSpellings {
			spellings = append(spellings, o)
			conds = append(conds, s.caselessEquals("sender", "?"))
		}
		add("("+strings.Join(conds, " OR ")+")", spellings...)
	}
	for _, c := range []struct{ col, v string }{{"queue_id", f.QueueID}, {"message_id", f.MessageID}, {"reference", f.Reference}, {"status", string(f.Status)}} {
		if c.v != "" {
			add(c.col+" = ?", c.v)
		}
	}
	if !f.Since.IsZero() {
		add("at_us >= ?", ceilMicro(f.Since))
	}
	if !f.Until.IsZero() {
		add("at_us < ?", ceilMicro(f.Until))
	}
	if !f.After.IsZero() {
		at := f.After.Time.UnixMicro()
		add("(at_us < ? OR (at_us = ? AND id < ?))", at, at, f.After.ID)
	}
	w.args = append(w.args, limit+1)
	q := `SELECT id, ` + trackingColumns + ` FROM message_log` + w.sql() + fmt.Sprintf(` ORDER BY at_us DESC, id DESC LIMIT $%d`, len(w.args))
	recs, err := s.scanTracking(ctx, q, w.args)
	if err != nil {
		return nil, tracking.Cursor{}, err
	}
	var next tracking.Cursor
	if len(recs) > limit {
		recs = recs[:limit]
		last := recs[limit-1]
		next = tracking.Cursor{Time: last.Time, ID: last.ID}
	}
	return recs, next, nil
}

// ceilMicro is t in the microseconds records are kept in, rounded up:
// a bound a nanosecond past a record's time is past the record, and cut
// down it would compare as the record's own time.
func ceilMicro(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}

// caselessEquals compares col with other (a parameter, "?", or another
// column) regardless of case, in the form the dialect's message_log index
// on col serves.
func (s *Store) caselessEquals(col, other string) string {
	if s.Dialect == SQLite {
		return col + " = " + other + " COLLATE NOCASE"
	}
	return "lower(" + col + ") = lower(" + other + ")"
}

// GetTracking returns one record by id within scope; another tenant's id
// is ErrNotFound, as a missing one is.
func (s *Store) GetTracking(ctx context.Context, scope tracking.Scope, id int64) (tracking.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	q := `SELECT id, ` + trackingColumns + ` FROM message_log WHERE id = $1`
	args := []any{id}
	if !scope.Operator {
		q += ` AND ` + strings.ReplaceAll(resellerScope, "?", "$2")
		args = append(args, scope.ResellerID)
	}
	recs, err := s.scanTracking(ctx, q, args)
	if err != nil {
		return tracking.Record{}, err
	}
	if len(recs) == 0 {
		return tracking.Record{}, fmt.Errorf("message record %d: %w", id, tenant.ErrNotFound)
	}
	return recs[0], nil
}

func (s *Store) scanTracking(ctx context.Context, q string, args []any) ([]tracking.Record, error) {
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fail("search message log", err)
	}
	defer rows.Close()
	var out []tracking.Record
	for rows.Next() {
		var (
			r                       tracking.Record
			atUS, durMS             int64
			ip, symbols, st, reason string
			reasonV                 string
		)
		if err := rows.Scan(&r.ID, &atUS, &r.Node, &r.QueueID, &ip, &r.HELO, &r.Sender, &r.Recipient, &r.Domain, &r.DomainID,
			&r.CustomerID, &r.Size, &r.MessageID, &r.Subject, &r.Action, &reasonV, &r.Score, &symbols, &st,
			&r.ReplyCode, &r.Reply, &r.Downstream, &r.Reference, &reason, &r.TLSIn, &r.TLSOut, &durMS); err != nil {
			return nil, fail("search message log: scan", err)
		}
		r.Time = time.UnixMicro(atUS).UTC()
		r.Duration = time.Duration(durMS) * time.Millisecond
		r.ClientIP, _ = netip.ParseAddr(ip) // "" for records without a client: invalid
		if symbols != "" {
			r.Symbols = strings.Split(symbols, " ")
		}
		r.Status, r.DeferReason, r.Reason = tracking.Status(st), tracking.DeferReason(reason), verdict.Reason(reasonV)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fail("search message log", err)
	}
	return out, nil
}

// waitingSQL selects the deferrals matching where that no later success
// answered, oldest first. The answer is looked up per deferral through
// the recipient index, so the comparison must be in the form it serves:
// on SQLite, lower() on both sides scanned the whole log once per
// deferral.
// Only a record of the deferral's domain (by id) answers it: an address
// outlives its domain, and once one tenant deleted a name and another
// created it, the other's deliveries to the name took the first tenant's
// deferrals off its view, which then told it what mail the other's
// customer had received.
// The limit is shared out among the domains, each newest first (every
// domain's newest deferral, then every domain's second newest...): the
// oldest rows of the window took every place, so a domain that piled
// deferrals up (a tenant's own domain routed to a dead server costs it
// nothing) hid every other domain's, the operator's gauge included,
// and its own newest ones.
func (s *Store) waitingSQL(where []string, limitArg int) string {
	return `SELECT domain, domain_id, customer_id, recipient, sender, message_id, at_us, defer_reason, reply FROM (
		SELECT d.id, d.domain, d.domain_id, d.customer_id, d.recipient, d.sender, d.message_id, d.at_us, d.defer_reason, d.reply,
			ROW_NUMBER() OVER (PARTITION BY d.domain_id ORDER BY d.at_us DESC, d.id DESC) AS turn
		FROM message_log d WHERE ` + strings.Join(where, " AND ") + `
		AND NOT EXISTS (SELECT 1 FROM message_log s WHERE s.status <> 'deferred' AND s.at_us > d.at_us
			AND ` + s.caselessEquals("s.recipient", "d.recipient") + ` AND ` + s.caselessEquals("s.sender", "d.sender") + `
			AND s.domain_id = d.domain_id AND (d.message_id = '' OR s.message_id = d.message_id))
		ORDER BY turn, d.at_us DESC, d.id DESC LIMIT $` + strconv.Itoa(limitArg) + `) w
		ORDER BY at_us, id`
}

// WaitingTracking is the deferral view: deferrals since f.Since that no
// later success (delivered, refused for good, quarantined) of the same
// recipient and sender (and Message-ID, when the deferral had one) has
// answered, grouped per message, oldest first.
func (s *Store) WaitingTracking(ctx context.Context, f tracking.WaitingFilter) ([]tracking.Waiting, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	args := []any{f.Since.UnixMicro(), string(tracking.StatusDeferred)}
	where := []string{"d.at_us >= $1", "d.status = $2"}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if !f.Scope.Operator {
		add("d."+resellerScope, f.Scope.ResellerID)
	}
	if f.DomainID != 0 {
		add("d.domain_id = ?", f.DomainID)
	}
	if f.CustomerID != 0 {
		add("d.customer_id = ?", f.CustomerID)
	}
	args = append(args, tracking.MaxWaitingRows)
	rows, err := s.DB.QueryContext(ctx, s.waitingSQL(where, len(args)), args...)
	if err != nil {
		return nil, fail("deferral view", err)
	}
	defer rows.Close()
	type key struct{ rcpt, sender, msgID string }
	var out []tracking.Waiting
	index := map[key]int{}
	for rows.Next() {
		var (
			w      tracking.Waiting
			atUS   int64
			reason string
		)
		if err := rows.Scan(&w.Domain, &w.DomainID, &w.CustomerID, &w.Recipient, &w.Sender, &w.MessageID, &atUS, &reason, &w.LastReply); err != nil {
			return nil, fail("deferral view: scan", err)
		}
		at := time.UnixMicro(atUS).UTC()
		k := key{strings.ToLower(w.Recipient), strings.ToLower(w.Sender), w.MessageID}
		if w.MessageID != "" {
			// A DATA-time deferral continues the RCPT-time ones of the
			// same pair (the retry got further): one message, not two.
			if i, ok := index[key{k.rcpt, k.sender, ""}]; ok {
				delete(index, key{k.rcpt, k.sender, ""})
				out[i].MessageID = w.MessageID
				index[k] = i
			}
		}
		if i, ok := index[k]; ok {
			out[i].Attempts++
			out[i].LastSeen, out[i].LastReason, out[i].LastReply = at, tracking.DeferReason(reason), w.LastReply
			continue
		}
		w.FirstSeen, w.LastSeen, w.Attempts, w.LastReason = at, at, 1, tracking.DeferReason(reason)
		index[k] = len(out)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("deferral view", err)
	}
	return out, nil
}
