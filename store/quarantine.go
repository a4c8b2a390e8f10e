package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

// The quarantine: one row per held message and recipient, and the
// message's body, gzip-compressed, once in quarantine_bodies for all its
// recipients' rows (body_id). Stored per row, a 20 MB message to 60
// recipients wrote 1.2 GB before its 250 and passed the domain's cap on
// its own, so it was delivered tagged instead of held. Rows from before
// (and rows a node of an older version writes during a rolling upgrade)
// keep the body in their own body column and are read as they are.
//
// The per-domain cap counts the cost of each body a held item of the
// domain refers to, once (quarantine.Service counts the message's
// uncompressed size and its items' rows), and is checked in the statement
// inserting the body, one hold of a domain at a time (SQLite's one
// connection; on PostgreSQL checked again under a lock per domain,
// holdLock).

const quarantineComponent = "quarantine"

var quarantineMigrations = []Migration{{
	Version: 1,
	SQLite: `CREATE TABLE quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, at_us INTEGER NOT NULL, queue_id TEXT NOT NULL,
		domain TEXT NOT NULL, domain_id INTEGER NOT NULL, customer_id INTEGER NOT NULL, sender TEXT NOT NULL,
		recipients TEXT NOT NULL, subject TEXT NOT NULL, message_id TEXT NOT NULL, size INTEGER NOT NULL,
		score REAL NOT NULL, symbols TEXT NOT NULL, state TEXT NOT NULL, released_by TEXT NOT NULL,
		released_us INTEGER NOT NULL, body BLOB);
	CREATE INDEX quarantine_domain ON quarantine (domain_id, state);
	CREATE INDEX quarantine_customer ON quarantine (customer_id, id);
	CREATE INDEX quarantine_at ON quarantine (at_us);`,
	Postgres: `CREATE TABLE quarantine (id BIGSERIAL PRIMARY KEY, at_us BIGINT NOT NULL, queue_id TEXT NOT NULL,
		domain TEXT NOT NULL, domain_id BIGINT NOT NULL, customer_id BIGINT NOT NULL, sender TEXT NOT NULL,
		recipients TEXT NOT NULL, subject TEXT NOT NULL, message_id TEXT NOT NULL, size BIGINT NOT NULL,
		score DOUBLE PRECISION NOT NULL, symbols TEXT NOT NULL, state TEXT NOT NULL, released_by TEXT NOT NULL,
		released_us BIGINT NOT NULL, body BYTEA);
	CREATE INDEX quarantine_domain ON quarantine (domain_id, state);
	CREATE INDEX quarantine_customer ON quarantine (customer_id, id);
	CREATE INDEX quarantine_at ON quarantine (at_us);`,
}, {
	// A message used to be held once for all its recipients, and
	// a release delivered to all of them: one recipient's digest link
	// released the message to colleagues who never asked. Such rows,
	// still held after an upgrade or in a restored older backup, become
	// one row per recipient, as messages are held now: the original row
	// keeps its id and its first recipient, each other recipient gets a
	// copy. Rows released, deleted or being released keep their history,
	// and so do rows naming a quoted local part, which SQL cannot split
	// safely (a space may be inside the quotes): their digest links refuse
	// them, and the customer's admin can release them.
	Version: 2,
	SQLite: `INSERT INTO quarantine (at_us, queue_id, domain, domain_id, customer_id, sender, recipients, subject, message_id,
		size, score, symbols, state, released_by, released_us, body)
	WITH RECURSIVE rest(id, n, rcpt, tail) AS (
		SELECT id, 0, '', substr(recipients, instr(recipients, ' ') + 1) || ' ' FROM quarantine
		WHERE state = 'held' AND instr(recipients, ' ') > 0 AND instr(recipients, '"') = 0
		UNION ALL
		SELECT id, n + 1, substr(tail, 1, instr(tail, ' ') - 1), substr(tail, instr(tail, ' ') + 1) FROM rest WHERE tail <> '')
	SELECT q.at_us, q.queue_id, q.domain, q.domain_id, q.customer_id, q.sender, r.rcpt, q.subject, q.message_id,
		q.size, q.score, q.symbols, q.state, q.released_by, q.released_us, q.body
	FROM rest r JOIN quarantine q ON q.id = r.id WHERE r.rcpt <> '' ORDER BY q.id, r.n;
	UPDATE quarantine SET recipients = substr(recipients, 1, instr(recipients, ' ') - 1)
	WHERE state = 'held' AND instr(recipients, ' ') > 0 AND instr(recipients, '"') = 0;`,
	Postgres: `INSERT INTO quarantine (at_us, queue_id, domain, domain_id, customer_id, sender, recipients, subject, message_id,
		size, score, symbols, state, released_by, released_us, body)
	SELECT q.at_us, q.queue_id, q.domain, q.domain_id, q.customer_id, q.sender, r.rcpt, q.subject, q.message_id,
		q.size, q.score, q.symbols, q.state, q.released_by, q.released_us, q.body
	FROM quarantine q CROSS JOIN LATERAL unnest((string_to_array(q.recipients, ' '))[2:]) WITH ORDINALITY AS r(rcpt, n)
	WHERE q.state = 'held' AND position(' ' in q.recipients) > 0 AND position('"' in q.recipients) = 0 AND r.rcpt <> ''
	ORDER BY q.id, r.n;
	UPDATE quarantine SET recipients = split_part(recipients, ' ', 1)
	WHERE state = 'held' AND position(' ' in recipients) > 0 AND position('"' in recipients) = 0;`,
}, {
	// One body for all of a message's recipients (above). The body column
	// stays: rows held before keep theirs, and a node of the previous
	// version, still running during a rolling upgrade, writes and reads it.
	Version: 3,
	SQLite: `CREATE TABLE quarantine_bodies (id INTEGER PRIMARY KEY AUTOINCREMENT, size INTEGER NOT NULL, body BLOB NOT NULL);
	ALTER TABLE quarantine ADD COLUMN body_id INTEGER;
	CREATE INDEX quarantine_body ON quarantine (body_id);`,
	Postgres: `CREATE TABLE quarantine_bodies (id BIGSERIAL PRIMARY KEY, size BIGINT NOT NULL, body BYTEA NOT NULL);
	ALTER TABLE quarantine ADD COLUMN body_id BIGINT;
	CREATE INDEX quarantine_body ON quarantine (body_id);`,
}, {
	// The per-domain cap summed, on every hold, the size of each body a
	// held item of the domain referred to: a lookup of the body's row per
	// item, 144 ms a hold beside 100,000 held (BenchmarkHoldBesideManyHeld),
	// on SQLite's only connection, so that flooding one catch-all domain
	// with tag-band mail slowed every tenant's holds and tracking writes.
	// A body now names its domain, and the sum reads two indexes only
	// (heldBytes). Bodies written by a node of the previous version during
	// a rolling upgrade have none and are left out of the cap: it is soft.
	Version: 4,
	Common: `ALTER TABLE quarantine_bodies ADD COLUMN domain_id BIGINT;
	UPDATE quarantine_bodies SET domain_id = (SELECT q.domain_id FROM quarantine q WHERE q.body_id = quarantine_bodies.id LIMIT 1);
	CREATE INDEX quarantine_bodies_domain ON quarantine_bodies (domain_id, size);
	CREATE INDEX quarantine_own_body ON quarantine (domain_id, state, size, body_id) WHERE body_id IS NULL;`,
}, {
	// Whether the sender asked for SMTPUTF8, which a release asks for
	// again: without it, a message with a UTF-8 header field went to any
	// server, one offering SMTPUTF8 too, without the parameter RFC 6531
	// requires. Rows held before, and rows a node of the previous version
	// writes during a rolling upgrade, are false: unknown, released as
	// they were (SMTPUTF8 only for a non-ASCII address). A constant
	// default rewrites no rows on either database.
	Version: 5,
	Common:  `ALTER TABLE quarantine ADD COLUMN smtputf8 BOOLEAN NOT NULL DEFAULT FALSE;`,
}}

// MigrateQuarantine creates or upgrades the quarantine table.
func (s *Store) MigrateQuarantine(ctx context.Context) error {
	return s.Migrate(ctx, quarantineComponent, quarantineMigrations)
}

const quarantineCols = `id, at_us, queue_id, domain, domain_id, customer_id, sender, recipients, subject, message_id,
	size, score, symbols, state, released_by, released_us, smtputf8`

// heldBytes is what the mail domain $1 holds counts against its cap: each of
// its bodies once, and the items that keep their own body (held before
// bodies were shared). A body lives only while a held (releasing, unconfirmed) item
// refers to it: a release or delete clears the item's body_id and deletes
// the body its last item let go of, in one transaction. Both sums read an
// index alone, whatever the domain holds (TestHeldBytesReadsIndexesOnly).
const heldBytes = `(SELECT COALESCE(SUM(size), 0) FROM quarantine_bodies WHERE domain_id = $1)
	+ (SELECT COALESCE(SUM(size), 0) FROM quarantine WHERE domain_id = $1 AND state IN ('held', 'releasing', 'unconfirmed') AND body_id IS NULL)`

// itemBody is an item's compressed body: its shared one, or its own.
const itemBody = `COALESCE(body, (SELECT b.body FROM quarantine_bodies b WHERE b.id = quarantine.body_id))`

// holdLock serialises a domain's holds until their transaction ends, in
// the two-key space of advisory locks, apart from the migrations' one-key
// lock; domain ids past 32 bits share a key with another domain's, whose
// holds then wait their turn too.
const holdLock = `SELECT pg_advisory_xact_lock(7411924, ($1::bigint % 2147483648)::integer)`

// beforeQuarantineCommit, when a test sets it, sees PutQuarantine's
// transaction just before the commit.
var beforeQuarantineCommit func(context.Context, *sql.Tx)

// PutQuarantine holds one message: its body gz once, and one row per
// item (its recipients are held, released and deleted apart), all or
// none, unless the domain's held bytes and cost, what the caller counts
// the message and its rows, would pass maxBytes (quarantine.ErrOverCap).
// The items are one message's, in one domain.
func (s *Store) PutQuarantine(ctx context.Context, items []quarantine.Item, gz []byte, cost, maxBytes int64) ([]int64, error) {
	if len(items) == 0 {
		return nil, nil
	}
	msg := items[0]
	for _, it := range items[1:] {
		if it.DomainID != msg.DomainID || it.Size != msg.Size {
			return nil, errors.New("store: quarantine a message: its items differ in domain or size")
		}
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return nil, fail("quarantine a message: connect", err)
	}
	defer conn.Close()
	if s.Dialect == SQLite {
		// The sender hears 250 once this commits, and nothing else keeps
		// the message: the commit must reach the disk. The store runs WAL
		// with synchronous=NORMAL, whose commits are fsynced only at the
		// next checkpoint, so a power loss or kernel crash could take back
		// a message already acknowledged. FULL for this transaction only:
		// tracking's batches keep the cheaper setting.
		if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
			return nil, fail("quarantine a message: synchronous", err)
		}
		defer func() {
			// Left FULL if this fails: slower, never less safe.
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), s.Timeout)
			defer rcancel()
			conn.ExecContext(rctx, `PRAGMA synchronous = NORMAL`)
		}()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, fail("quarantine a message: begin", err)
	}
	defer tx.Rollback()
	ids, bodyID, err := s.putHold(ctx, tx, items, gz, cost, maxBytes)
	if err != nil {
		return nil, err
	}
	if beforeQuarantineCommit != nil {
		beforeQuarantineCommit(ctx, tx)
	}
	if err := tx.Commit(); err != nil {
		if s.Dialect != Postgres {
			return nil, fail("quarantine a message: commit", err)
		}
		switch held, known := s.heldAfterAll(parent, msg.DomainID, bodyID); {
		case held:
			return ids, nil
		case !known:
			return nil, fmt.Errorf("%w: %w", quarantine.ErrHoldUnknown, fail("quarantine a message: commit", err))
		}
		return nil, fail("quarantine a message: commit", err)
	}
	return ids, nil
}

// putHold writes a hold's rows in tx: its body, then one item per
// recipient. It returns the items' ids and the body's.
func (s *Store) putHold(ctx context.Context, tx *sql.Tx, items []quarantine.Item, gz []byte, cost, maxBytes int64) ([]int64, int64, error) {
	msg := items[0]
	var bodyID int64
	// The cost goes twice: PostgreSQL deduces one type per parameter, and
	// the sum is numeric where the column is bigint.
	err := tx.QueryRowContext(ctx, `INSERT INTO quarantine_bodies (size, body, domain_id) SELECT $2, $3, $1 WHERE `+heldBytes+` + $5 <= $4 RETURNING id`,
		msg.DomainID, cost, gz, maxBytes, cost).Scan(&bodyID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, quarantine.ErrOverCap
	}
	if err != nil {
		return nil, 0, fail("quarantine a message", err)
	}
	if s.Dialect == Postgres {
		// The insert's check read the bodies committed when it began:
		// holds of a domain racing at its cap all passed it. Checked
		// again under the domain's lock, with this body, which is
		// written before the lock is taken: the lock is held only for
		// the check, the rows and the commit, a waiting hold takes a
		// pooled connection for little time, and a domain that is
		// clearly full is still refused by the insert, writing nothing.
		if _, err := tx.ExecContext(ctx, holdLock, msg.DomainID); err != nil {
			return nil, 0, fail("quarantine a message: lock its domain", err)
		}
		var within bool
		if err := tx.QueryRowContext(ctx, `SELECT `+heldBytes+` <= $2`, msg.DomainID, maxBytes).Scan(&within); err != nil {
			return nil, 0, fail("quarantine a message", err)
		}
		if !within {
			return nil, 0, quarantine.ErrOverCap
		}
	}
	ids := make([]int64, 0, len(items))
	for _, it := range items {
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO quarantine (at_us, queue_id, domain, domain_id, customer_id, sender, recipients,
			subject, message_id, size, score, symbols, state, released_by, released_us, body_id, smtputf8)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, '', 0, $14, $15) RETURNING id`,
			it.Time.UnixMicro(), it.QueueID, it.Domain, it.DomainID, it.CustomerID, it.Sender, strings.Join(it.Recipients, " "),
			it.Subject, it.MessageID, it.Size, it.Score, strings.Join(it.Symbols, " "), string(quarantine.StateHeld), bodyID, it.SMTPUTF8).Scan(&id)
		if err != nil {
			return nil, 0, fail("quarantine a message", err)
		}
		ids = append(ids, id)
	}
	return ids, bodyID, nil
}

// QuarantineTakesHolds makes a hold's writes, an empty message of no
// domain, in a transaction it rolls back: what a failed hold needs of the
// store to be mended. A read is not enough: a store that answers reads
// but takes no writes (a PostgreSQL primary's disk full, or its address
// now a read-only standby's) passed it, and the quarantine read as
// mended a few seconds after every failed hold.
func (s *Store) QuarantineTakesHolds(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fail("try a hold: begin", err)
	}
	defer tx.Rollback()
	_, _, err = s.putHold(ctx, tx, []quarantine.Item{{}}, []byte{}, 0, math.MaxInt64)
	return err
}

// heldAfterAll reports whether a hold whose commit failed on PostgreSQL
// took effect all the same. A commit whose reply is lost (the connection
// broken after the COMMIT went out, or the store's timeout passing while
// the server waits for a synchronous standby, where the cancel leaves the
// transaction committed locally) may have held the message: answered as
// failed, smtpd delivered it tagged too, and the customer got it in the
// mailbox and again in the quarantine, releasable a second time. The
// hold's transaction keeps its domain's lock (holdLock) until it ends, so
// once another transaction has the lock, the hold has committed or never
// will, and its body says which. known is false when that cannot be learnt
// either (the store's timeout, as with a server stopped mid-commit, which
// commits when it goes on).
func (s *Store) heldAfterAll(parent context.Context, domainID, bodyID int64) (held, known bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), s.Timeout)
	defer cancel()
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return false, false
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, holdLock, domainID); err != nil {
		return false, false
	}
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM quarantine_bodies WHERE id = $1)`, bodyID).Scan(&held); err != nil {
		return false, false
	}
	return held, true
}

// ReusableBytes is the space inside the SQLite database file that its
// next writes take before the file grows: its free pages. Held mail the
// retention, a release or a delete removed leaves its pages so, and the
// disk gets none of it back (the store does not vacuum), so a check of
// what a hold may take of the disk counts them too. 0 on PostgreSQL, whose
// disk is the database server's.
func (s *Store) ReusableBytes(ctx context.Context) (int64, error) {
	if s.Dialect != SQLite {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var free, page int64
	if err := s.DB.QueryRowContext(ctx, `SELECT f.freelist_count, p.page_size FROM pragma_freelist_count() f, pragma_page_size() p`).Scan(&free, &page); err != nil {
		return 0, fail("free pages", err)
	}
	return free * page, nil
}

// ListQuarantine returns f's page, newest first (no bodies).
func (s *Store) ListQuarantine(ctx context.Context, f quarantine.Filter) ([]quarantine.Item, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	w := sqlWhere{conds: []string{"state <> 'deleted'"}}
	w.tenant(f.Scope, f.DomainID, f.CustomerID)
	add := w.add
	if f.State != "" {
		add("state = ?", string(f.State))
	}
	if f.Search != "" {
		// Both sides are folded by the database's lower(): folded in Go,
		// the text would not match itself where the database folds less
		// (SQLite: ASCII only).
		like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(f.Search) + "%"
		add(`(lower(sender) LIKE lower(?) ESCAPE '\' OR lower(recipients) LIKE lower(?) ESCAPE '\' OR lower(subject) LIKE lower(?) ESCAPE '\')`, like, like, like)
	}
	if f.Before > 0 {
		add("id < ?", f.Before)
	}
	w.args = append(w.args, f.Limit)
	rows, err := s.DB.QueryContext(ctx, `SELECT `+quarantineCols+` FROM quarantine`+w.sql()+
		` ORDER BY id DESC LIMIT $`+strconv.Itoa(len(w.args)), w.args...)
	if err != nil {
		return nil, fail("list quarantine", err)
	}
	defer rows.Close()
	var out []quarantine.Item
	for rows.Next() {
		it, err := scanItem(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("list quarantine", err)
	}
	return out, nil
}

func scanItem(scan func(...any) error, extra ...any) (quarantine.Item, error) {
	var (
		it                 quarantine.Item
		atUS, relUS        int64
		rcpts, syms, state string
	)
	dest := append([]any{&it.ID, &atUS, &it.QueueID, &it.Domain, &it.DomainID, &it.CustomerID, &it.Sender, &rcpts, &it.Subject,
		&it.MessageID, &it.Size, &it.Score, &syms, &state, &it.ReleasedBy, &relUS, &it.SMTPUTF8}, extra...)
	if err := scan(dest...); err != nil {
		return it, fail("read quarantine", err)
	}
	it.Time = time.UnixMicro(atUS).UTC()
	if relUS > 0 {
		it.ReleasedAt = time.UnixMicro(relUS).UTC()
	}
	it.Recipients = splitRecipients(rcpts)
	it.Symbols = strings.Fields(syms)
	it.State = quarantine.State(state)
	return it, nil
}

// splitRecipients reads the recipients column: addresses in wire form
// joined by spaces. A quoted local part may hold a space ("bob smith", as
// smtpd accepts), so only a space outside quotes separates; splitting at
// every space made two malformed addresses of one: the copy held for it
// was listed in digests to those two and released to them, never to its
// recipient.
func splitRecipients(s string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case quoted && s[i] == '\\':
			i++ // the escaped character, a quote or a backslash
		case s[i] == '"':
			quoted = !quoted
		case s[i] == ' ' && !quoted:
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// scopeWhere is the SQL and argument keeping a query to scope's items.
func scopeWhere(scope tracking.Scope, n int) (string, []any) {
	if scope.Operator {
		return "", nil
	}
	return " AND " + strings.ReplaceAll(resellerScope, "?", "$"+strconv.Itoa(n)), []any{scope.ResellerID}
}

// GetQuarantine returns an item and its compressed body.
func (s *Store) GetQuarantine(ctx context.Context, scope tracking.Scope, id int64) (quarantine.Item, []byte, error) {
	var body []byte
	it, err := s.quarantineItem(ctx, scope, id, `, `+itemBody, &body)
	return it, body, err
}

// QuarantineItem returns an item without its body.
func (s *Store) QuarantineItem(ctx context.Context, scope tracking.Scope, id int64) (quarantine.Item, error) {
	return s.quarantineItem(ctx, scope, id, "")
}

// quarantineItem reads item id in scope, with the extra columns into
// extra's destinations.
func (s *Store) quarantineItem(ctx context.Context, scope tracking.Scope, id int64, columns string, extra ...any) (quarantine.Item, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	cond, sargs := scopeWhere(scope, 2)
	row := s.DB.QueryRowContext(ctx, `SELECT `+quarantineCols+columns+` FROM quarantine WHERE id = $1 AND state <> 'deleted'`+cond,
		append([]any{id}, sargs...)...)
	it, err := scanItem(row.Scan, extra...)
	if errors.Is(err, sql.ErrNoRows) {
		return it, fmt.Errorf("quarantined message %d: %w", id, tenant.ErrNotFound)
	}
	return it, err
}

// beforeClaim, when a test sets it, is called between ClaimRelease's read
// of the item and its claim.
var beforeClaim func()

// ClaimRelease: held -> releasing in one conditional update; whoever
// changes the row delivers.
func (s *Store) ClaimRelease(ctx context.Context, scope tracking.Scope, id int64, by string, now time.Time) (quarantine.Item, []byte, error) {
	it, body, err := s.GetQuarantine(ctx, scope, id)
	if err != nil {
		return it, nil, err
	}
	if beforeClaim != nil {
		beforeClaim()
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	// The claim is in scope too: read in scope alone, an item whose
	// customer the operator gave to another reseller just after the read
	// was claimed, and released, by the reseller that no longer held it.
	cond, sargs := scopeWhere(scope, 4)
	res, err := s.DB.ExecContext(ctx, `UPDATE quarantine SET state = 'releasing', released_by = $2, released_us = $3
		WHERE id = $1 AND state = 'held'`+cond, append([]any{id, by, now.UnixMicro()}, sargs...)...)
	if err != nil {
		return it, nil, fail("claim a release", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return it, nil, fail("claim a release", err)
	} else if n != 1 {
		cur, err := s.QuarantineItem(ctx, scope, id)
		if errors.Is(err, tenant.ErrNotFound) && !scope.Operator {
			if _, err := s.QuarantineItem(ctx, tracking.Scope{Operator: true}, id); err == nil {
				return it, nil, fmt.Errorf("quarantined message %d: %w", id, tenant.ErrNotFound) // another's now
			}
		}
		// Unread (deleted or expired meanwhile, or a failing read), it
		// is simply not held.
		if cur.State == quarantine.StateReleasing {
			return it, nil, quarantine.ErrReleasing
		}
		return it, nil, quarantine.ErrNotHeld
	}
	// The claim, which FinishRelease finishes and no other.
	it.State, it.ReleasedBy, it.ReleasedAt = quarantine.StateReleasing, by, time.UnixMicro(now.UnixMicro()).UTC()
	return it, body, nil
}

// ours is the item whose claim ($2, $3) is release $1's, and no later one.
const ours = `id = $1 AND state = 'releasing' AND released_by = $2 AND released_us = $3`

// FinishRelease records the outcome of claim, as ClaimRelease returned
// it; a delivered message's body is dropped (it lives at the customer
// now). Only that claim is finished: a write retried after its reply was
// lost (done, though it failed) put back to held the claim another release
// had made since, during that one's delivery, and a third release
// delivered the message again.
func (s *Store) FinishRelease(ctx context.Context, claim quarantine.Item, delivered bool, now time.Time) error {
	args := []any{claim.ID, claim.ReleasedBy, claim.ReleasedAt.UnixMicro()}
	if !delivered {
		ctx, cancel := context.WithTimeout(ctx, s.Timeout)
		defer cancel()
		if _, err := s.DB.ExecContext(ctx, `UPDATE quarantine SET state = 'held', released_by = '', released_us = 0 WHERE `+ours, args...); err != nil {
			return fail("finish a release", err)
		}
		return nil
	}
	_, err := s.dropBody(ctx, "finish a release", tracking.Scope{Operator: true}, claim.ID, `UPDATE quarantine SET state = 'released', released_us = $4, body = NULL, body_id = NULL
		WHERE `+ours, append(args, now.UnixMicro())...)
	return err
}

// UnconfirmRelease marks claim's item unconfirmed, if it is still that
// claim's: its delivery may have taken place. It keeps its body, for the
// operator to look at, until the retention.
func (s *Store) UnconfirmRelease(ctx context.Context, claim quarantine.Item) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	if _, err := s.DB.ExecContext(ctx, `UPDATE quarantine SET state = 'unconfirmed' WHERE `+ours,
		claim.ID, claim.ReleasedBy, claim.ReleasedAt.UnixMicro()); err != nil {
		return fail("record a release that may have delivered", err)
	}
	return nil
}

// DeleteQuarantine drops a held item's body and marks it deleted.
func (s *Store) DeleteQuarantine(ctx context.Context, scope tracking.Scope, id int64) error {
	cond, sargs := scopeWhere(scope, 2)
	n, err := s.dropBody(ctx, "delete quarantined message", scope, id, `UPDATE quarantine SET state = 'deleted', body = NULL, body_id = NULL
		WHERE id = $1 AND state = 'held'`+cond, append([]any{id}, sargs...)...)
	if err != nil {
		return err
	}
	if n != 1 {
		it, err := s.QuarantineItem(ctx, scope, id)
		if err != nil {
			return err // not found in this scope
		}
		if it.State == quarantine.StateReleasing {
			return quarantine.ErrReleasing
		}
		return quarantine.ErrNotHeld
	}
	return nil
}

// dropBody runs update, which clears item id's body, and when it changed
// the item deletes the body the item shared if no other item refers to it.
// It returns the rows update changed. On PostgreSQL the item's row, then
// its body's, are locked first: two of its last items dropped at once would
// otherwise each see the other still referring to it, and neither would
// delete it. Only an item in scope is locked: another tenant's delete of
// the item's id must not hold up the owner's releases and deletes, nor
// wait on a lock that tells it the id exists.
func (s *Store) dropBody(ctx context.Context, what string, scope tracking.Scope, id int64, update string, args ...any) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, fail(what+": begin", err)
	}
	defer tx.Rollback()
	var bodyID sql.NullInt64
	cond, sargs := scopeWhere(scope, 2)
	lock := ""
	if s.Dialect == Postgres {
		// The row before its body, in expiry's order (its rows, then
		// their bodies): the body first, a delete of an item expiry was
		// deleting deadlocked with it, and one of them failed.
		lock = " FOR UPDATE"
	}
	if err := tx.QueryRowContext(ctx, `SELECT body_id FROM quarantine WHERE id = $1`+cond+lock, append([]any{id}, sargs...)...).Scan(&bodyID); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fail(what, err)
	}
	if bodyID.Valid && s.Dialect == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT id FROM quarantine_bodies WHERE id = $1 FOR UPDATE`, bodyID.Int64); err != nil {
			return 0, fail(what, err)
		}
	}
	res, err := tx.ExecContext(ctx, update, args...)
	if err != nil {
		return 0, fail(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fail(what, err)
	}
	if n == 1 && bodyID.Valid {
		if _, err := tx.ExecContext(ctx, `DELETE FROM quarantine_bodies WHERE id = $1
			AND NOT EXISTS (SELECT 1 FROM quarantine WHERE body_id = $1)`, bodyID.Int64); err != nil {
			return 0, fail(what, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fail(what+": commit", err)
	}
	return n, nil
}

// pruneBatch is how many items one prune statement deletes: one
// statement for a whole backlog (a week's expiry after an outage, a
// retention shortened) held SQLite's only connection, and with it every
// hold, for the store's whole timeout, then rolled back and did the same
// next round, never deleting anything.
var pruneBatch = 500

// PruneQuarantine deletes rows older than before, whatever their state,
// and the bodies no row refers to any longer, pruneBatch rows at a time,
// each batch committed on its own (under its own timeout, other calls
// served between them), so an interrupted prune keeps what it did. A
// release in progress is spared, but a claim itself older than before is
// one whose node died (or whose outcome could not be written) long ago:
// nothing will finish it, it can be neither released nor deleted, and it
// would keep its body and its share of the domain's cap for ever.
// expired, if not nil, gets each committed batch's items that were still
// held, which nobody released or deleted, or releasing, abandoned.
func (s *Store) PruneQuarantine(ctx context.Context, before time.Time, expired func([]quarantine.Item)) (int64, error) {
	var total int64
	for {
		n, err := s.pruneQuarantineBatch(ctx, before, expired)
		total += n
		if err != nil {
			return total, err
		}
		if n < int64(pruneBatch) {
			break
		}
	}
	// The batches delete their own rows' bodies; this catches a body left
	// by two of its items dropped at once, and any older orphan.
	for after := int64(0); ; {
		last, err := s.sweepBodies(ctx, after)
		if err != nil {
			return total, err
		}
		if last == 0 {
			return total, nil
		}
		after = last
	}
}

// SharedNow is PostgreSQL's clock, which every node sharing the store
// reads alike; on SQLite, a store of the node's own, ok is false: the
// node's clock is the store's.
func (s *Store) SharedNow(ctx context.Context) (now time.Time, ok bool, err error) {
	if s.Dialect != Postgres {
		return time.Time{}, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var us int64
	if err := s.DB.QueryRowContext(ctx, `SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT`).Scan(&us); err != nil {
		return time.Time{}, false, fail("read the database's clock", err)
	}
	return time.UnixMicro(us), true, nil
}

// sweepBodies deletes the bodies no row refers to among the pruneBatch
// after id after, in a statement of its own under its own timeout, and
// returns the last id it looked at (0: none was left). One statement over
// the whole table held SQLite's only connection, and every hold waiting
// for it, for as long as it read a body table of millions, and one that
// failed part way (the store's timeout) kept nothing of what it did. A
// body is inserted in the transaction inserting its rows, so none is seen
// here before its rows are.
func (s *Store) sweepBodies(ctx context.Context, after int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var last sql.NullInt64
	if err := s.DB.QueryRowContext(ctx, `SELECT MAX(id) FROM (SELECT id FROM quarantine_bodies WHERE id > $1 ORDER BY id LIMIT $2) AS step`,
		after, pruneBatch).Scan(&last); err != nil {
		return 0, fail("prune quarantine bodies", err)
	}
	if !last.Valid {
		return 0, nil
	}
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM quarantine_bodies WHERE id > $1 AND id <= $2
		AND NOT EXISTS (SELECT 1 FROM quarantine WHERE quarantine.body_id = quarantine_bodies.id)`, after, last.Int64); err != nil {
		return 0, fail("prune quarantine bodies", err)
	}
	return last.Int64, nil
}

// pruneQuarantineBatch deletes up to pruneBatch expired rows, oldest ids
// first, and the bodies only they referred to, and once that is committed
// hands expired the rows that were held or releasing.
func (s *Store) pruneQuarantineBatch(ctx context.Context, before time.Time, expired func([]quarantine.Item)) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, fail("prune quarantine: begin", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine
		WHERE at_us < $1 AND (state <> 'releasing' OR released_us < $1) ORDER BY id LIMIT $2) RETURNING `+quarantineCols+`, body_id`,
		before.UnixMicro(), pruneBatch)
	if err != nil {
		return 0, fail("prune quarantine", err)
	}
	var (
		n      int64
		bodies []int64
		held   []quarantine.Item
	)
	for rows.Next() {
		var b sql.NullInt64
		it, err := scanItem(rows.Scan, &b)
		if err != nil {
			rows.Close()
			return 0, err
		}
		n++
		if it.State == quarantine.StateHeld || it.State == quarantine.StateReleasing || it.State == quarantine.StateUnconfirmed {
			held = append(held, it)
		}
		if b.Valid && !slices.Contains(bodies, b.Int64) {
			bodies = append(bodies, b.Int64)
		}
	}
	if err := rows.Close(); err != nil {
		return 0, fail("prune quarantine", err)
	}
	if err := rows.Err(); err != nil {
		return 0, fail("prune quarantine", err)
	}
	for _, b := range bodies {
		if _, err := tx.ExecContext(ctx, `DELETE FROM quarantine_bodies WHERE id = $1
			AND NOT EXISTS (SELECT 1 FROM quarantine WHERE body_id = $1)`, b); err != nil {
			return 0, fail("prune quarantine bodies", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fail("prune quarantine: commit", err)
	}
	if expired != nil && len(held) > 0 {
		expired(held)
	}
	return n, nil
}

// ResellerOf is the reseller customer customerID is of, for the share of
// quarantine.max_open_bytes its held messages may take; 0 for the
// operator's own domains (customer 0) and for a customer since deleted.
func (s *Store) ResellerOf(ctx context.Context, customerID int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var id int64
	err := s.DB.QueryRowContext(ctx, `SELECT reseller_id FROM customers WHERE id = $1`, customerID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fail("reseller of a customer", err)
	}
	return id, nil
}
