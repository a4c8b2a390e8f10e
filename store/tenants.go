package store

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/tenant"
)

// tenantsComponent names the tenant tables' migrations in schema_migrations.
const tenantsComponent = "tenants"

// tenantMigrations create the hierarchy, tokens, the audit log and the
// config version. Times are Unix microseconds (see eventMigrations for why);
// policies are JSON text, read only by Go, so both dialects store them alike.
// Audit rows carry no foreign key: the trail must outlive what it describes.
var tenantMigrations = []Migration{{
	Version: 1,
	SQLite: `CREATE TABLE tenant_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
	INSERT INTO tenant_version (id, version) VALUES (1, 0);
	CREATE TABLE resellers (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, policy TEXT NOT NULL,
		created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL);
	CREATE TABLE customers (id INTEGER PRIMARY KEY AUTOINCREMENT,
		reseller_id INTEGER NOT NULL REFERENCES resellers (id),
		name TEXT NOT NULL, policy TEXT NOT NULL, created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL);
	CREATE INDEX customers_reseller ON customers (reseller_id, id);
	CREATE TABLE domains (id INTEGER PRIMARY KEY AUTOINCREMENT,
		customer_id INTEGER NOT NULL REFERENCES customers (id),
		name TEXT NOT NULL UNIQUE, route TEXT NOT NULL, tls TEXT NOT NULL, policy TEXT NOT NULL,
		created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL);
	CREATE INDEX domains_customer ON domains (customer_id, id);
	CREATE TABLE recipients (id INTEGER PRIMARY KEY AUTOINCREMENT,
		domain_id INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
		local TEXT NOT NULL, created_us INTEGER NOT NULL, UNIQUE (domain_id, local));
	CREATE TABLE api_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT,
		reseller_id INTEGER REFERENCES resellers (id) ON DELETE CASCADE,
		name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_us INTEGER NOT NULL);
	CREATE TABLE tenant_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at_us INTEGER NOT NULL,
		actor TEXT NOT NULL, reseller_id INTEGER, action TEXT NOT NULL, object TEXT NOT NULL, detail TEXT NOT NULL);
	CREATE INDEX tenant_audit_reseller ON tenant_audit (reseller_id, id);`,
	Postgres: `CREATE TABLE tenant_version (id INTEGER PRIMARY KEY, version BIGINT NOT NULL);
	INSERT INTO tenant_version (id, version) VALUES (1, 0);
	CREATE TABLE resellers (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, policy TEXT NOT NULL,
		created_us BIGINT NOT NULL, updated_us BIGINT NOT NULL);
	CREATE TABLE customers (id BIGSERIAL PRIMARY KEY,
		reseller_id BIGINT NOT NULL REFERENCES resellers (id),
		name TEXT NOT NULL, policy TEXT NOT NULL, created_us BIGINT NOT NULL, updated_us BIGINT NOT NULL);
	CREATE INDEX customers_reseller ON customers (reseller_id, id);
	CREATE TABLE domains (id BIGSERIAL PRIMARY KEY,
		customer_id BIGINT NOT NULL REFERENCES customers (id),
		name TEXT NOT NULL UNIQUE, route TEXT NOT NULL, tls TEXT NOT NULL, policy TEXT NOT NULL,
		created_us BIGINT NOT NULL, updated_us BIGINT NOT NULL);
	CREATE INDEX domains_customer ON domains (customer_id, id);
	CREATE TABLE recipients (id BIGSERIAL PRIMARY KEY,
		domain_id BIGINT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
		local TEXT NOT NULL, created_us BIGINT NOT NULL, UNIQUE (domain_id, local));
	CREATE TABLE api_tokens (id BIGSERIAL PRIMARY KEY,
		reseller_id BIGINT REFERENCES resellers (id) ON DELETE CASCADE,
		name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_us BIGINT NOT NULL);
	CREATE TABLE tenant_audit (id BIGSERIAL PRIMARY KEY, at_us BIGINT NOT NULL,
		actor TEXT NOT NULL, reseller_id BIGINT, action TEXT NOT NULL, object TEXT NOT NULL, detail TEXT NOT NULL);
	CREATE INDEX tenant_audit_reseller ON tenant_audit (reseller_id, id);`,
}, {
	// Version 2 is the reseller panel's: white label (slug, display name,
	// accent, logo), suspension, the customers' unguessable map keys, and
	// panel users. Existing rows get a slug from their id and a random map
	// key from the database's own CSPRNG. Logos live in their own table so
	// that lists and snapshots never read the blobs.
	Version: 2,
	SQLite: `ALTER TABLE resellers ADD COLUMN slug TEXT;
	UPDATE resellers SET slug = 'reseller-' || id;
	CREATE UNIQUE INDEX resellers_slug ON resellers (slug);
	ALTER TABLE resellers ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
	ALTER TABLE resellers ADD COLUMN accent TEXT NOT NULL DEFAULT '';
	ALTER TABLE customers ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE customers ADD COLUMN map_key TEXT;
	UPDATE customers SET map_key = lower(hex(randomblob(16)));
	CREATE UNIQUE INDEX customers_map_key ON customers (map_key);
	CREATE TABLE reseller_logos (reseller_id INTEGER PRIMARY KEY REFERENCES resellers (id) ON DELETE CASCADE,
		content_type TEXT NOT NULL, data BLOB NOT NULL, updated_us INTEGER NOT NULL);
	CREATE TABLE panel_users (id INTEGER PRIMARY KEY AUTOINCREMENT,
		reseller_id INTEGER NOT NULL REFERENCES resellers (id) ON DELETE CASCADE,
		email TEXT NOT NULL UNIQUE, password TEXT NOT NULL, created_us INTEGER NOT NULL);`,
	Postgres: `ALTER TABLE resellers ADD COLUMN slug TEXT;
	UPDATE resellers SET slug = 'reseller-' || id;
	CREATE UNIQUE INDEX resellers_slug ON resellers (slug);
	ALTER TABLE resellers ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
	ALTER TABLE resellers ADD COLUMN accent TEXT NOT NULL DEFAULT '';
	ALTER TABLE customers ADD COLUMN suspended BOOLEAN NOT NULL DEFAULT FALSE;
	ALTER TABLE customers ADD COLUMN map_key TEXT;
	UPDATE customers SET map_key = replace(gen_random_uuid()::text, '-', '');
	CREATE UNIQUE INDEX customers_map_key ON customers (map_key);
	CREATE TABLE reseller_logos (reseller_id BIGINT PRIMARY KEY REFERENCES resellers (id) ON DELETE CASCADE,
		content_type TEXT NOT NULL, data BYTEA NOT NULL, updated_us BIGINT NOT NULL);
	CREATE TABLE panel_users (id BIGSERIAL PRIMARY KEY,
		reseller_id BIGINT NOT NULL REFERENCES resellers (id) ON DELETE CASCADE,
		email TEXT NOT NULL UNIQUE, password TEXT NOT NULL, created_us BIGINT NOT NULL);`,
}, {
	// Version 3 is domain ownership: a reseller's new domain is pending
	// until its TXT token or MX records prove it. Domains that existed
	// before already received mail under the old rules, so they stay active
	// (the operator reviews them; see docs/security.md).
	Version: 3,
	Common: `ALTER TABLE domains ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
	ALTER TABLE domains ADD COLUMN verify_token TEXT NOT NULL DEFAULT '';
	CREATE INDEX domains_status ON domains (status, id);`,
}, {
	// Version 4 is the change log nodes apply as deltas: one row per
	// version, naming the reseller, customer or domain that write changed
	// (a domain's recipients and routes are the domain's). Only the last
	// changeLogKeep versions are kept; a node further behind loads
	// everything, as does one that finds the log empty after this
	// migration.
	Version: 4,
	Common:  `CREATE TABLE tenant_changes (version BIGINT PRIMARY KEY, kind TEXT NOT NULL, object_id BIGINT NOT NULL);`,
}, {
	// Version 5 records when a domain's name became pending, so that an
	// unproven claim lapses (admin: OwnershipOptions.PendingClaimTTL) and
	// no longer keeps the name from another reseller. Pending rows date
	// from their last update, the best the earlier schema knew.
	Version: 5,
	Common: `ALTER TABLE domains ADD COLUMN pending_since_us BIGINT NOT NULL DEFAULT 0;
	UPDATE domains SET pending_since_us = updated_us WHERE status = 'pending';`,
}, {
	// Version 6 remembers the names whose unproven claim gave way to
	// another reseller's (DeleteLapsedClaim) until the name is active
	// again: their MX records would prove only that the domain points at
	// the cluster, not which reseller the customer chose, so only the TXT
	// token proves them (admin: Service.verify). Names pending now whose
	// audit trail shows a lapse are marked too: the audit object ends in
	// the name, and over-marking only asks for the TXT token.
	Version: 6,
	Common: `CREATE TABLE domain_takeovers (name TEXT PRIMARY KEY);
	INSERT INTO domain_takeovers (name) SELECT d.name FROM domains d
		WHERE d.status = 'pending' AND EXISTS (SELECT 1 FROM tenant_audit a
			WHERE a.action = 'lapse' AND a.object LIKE ('domain % ' || d.name));`,
}, {
	// Version 7 is the operator's per-reseller quota override; 0 takes
	// the configured default (Tenants.DefaultQuota).
	Version: 7,
	Common: `ALTER TABLE resellers ADD COLUMN max_domains BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE resellers ADD COLUMN max_recipients BIGINT NOT NULL DEFAULT 0;`,
}, {
	// Version 8 keeps each domain's number of recipients in its row, kept
	// by the writes that add and delete them, so that a reseller's
	// recipient quota is checked by summing its domains' counts rather
	// than counting its recipients: 70-160 ms per write at a million.
	Version: 8,
	Common: `ALTER TABLE domains ADD COLUMN recipient_count BIGINT NOT NULL DEFAULT 0;
	UPDATE domains SET recipient_count = (SELECT COUNT(*) FROM recipients r WHERE r.domain_id = domains.id);`,
}, {
	// Version 9 remembers since when a reseller has claimed a name it gave
	// up unproven (deleted, or renamed away): its next claim of the name
	// goes on from then (continueClaim) until a proof settles the name.
	// Otherwise deleting and re-creating a claim before it lapsed started
	// its clock again, and a reseller doing so every few days kept the
	// name from every other one for ever.
	Version: 9,
	Common: `CREATE TABLE domain_claims (name TEXT NOT NULL, reseller_id BIGINT NOT NULL, since_us BIGINT NOT NULL,
		PRIMARY KEY (name, reseller_id));`,
}, {
	// Version 10: API tokens may expire (0: never, as every token before).
	Version: 10,
	Common:  `ALTER TABLE api_tokens ADD COLUMN expires_us BIGINT NOT NULL DEFAULT 0;`,
}, {
	// Version 11 remembers a given-up claim's verification token beside
	// its clock: the reseller's next claim of the name takes it again, so
	// the TXT record its customer published still proves it (continueClaim).
	// Claims remembered before have none ('') and keep their new token.
	Version: 11,
	Common:  `ALTER TABLE domain_claims ADD COLUMN verify_token TEXT NOT NULL DEFAULT '';`,
}}

// What a tenant change log row names.
const (
	changedReseller = "reseller"
	changedCustomer = "customer"
	changedDomain   = "domain"
)

// changed names the object a write changes; id is read after the write
// ran, so a create can point at the id its INSERT returned.
type changed struct {
	kind string
	id   *int64
}

// changeLogKeep is how many versions of changes the log keeps: a node
// that missed more loads everything, which at that distance costs less
// than replaying.
const changeLogKeep = 50000

// maxDeltaObjects bounds how many changed objects, and domains read, a
// node applies as a delta; past that a full load is cheaper and simpler.
const maxDeltaObjects = 20000

// maxDeltaRecipients bounds the recipients a delta reads: it has the
// store's timeout, not a full load's, and a change to a large reseller
// reads all of its domains' recipients.
const maxDeltaRecipients = 1000000

// Tenants implements admin.Store (and PanelStore, panel.go) for the admin
// side and tenant.Loader for the snapshot, over the store's handle. It
// applies its migrations on first use, and again on the next use after they
// failed (the database was down), so a node started during an outage gets
// its tenant API and reloads back as soon as the database answers, without
// a restart.
type Tenants struct {
	st *Store

	// DefaultQuota is the quota of resellers whose own is unset (zero
	// fields); a zero field here means no cap. Set it before use.
	DefaultQuota tenant.Quota

	mu     sync.Mutex
	schema bool // migrations applied
}

var (
	_ admin.Store   = (*Tenants)(nil)
	_ tenant.Loader = (*Tenants)(nil)
)

// NewTenants serves tenants from st.
func NewTenants(st *Store) *Tenants {
	return &Tenants{st: st}
}

// db returns the store once the tenant tables are migrated.
func (t *Tenants) db(ctx context.Context) (*Store, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.schema {
		ctx, cancel := context.WithTimeout(ctx, t.st.Timeout)
		defer cancel()
		if err := t.st.Migrate(ctx, tenantsComponent, tenantMigrations); err != nil {
			return nil, err
		}
		if err := t.st.Migrate(ctx, routesComponent, routeMigrations); err != nil {
			return nil, err
		}
		t.schema = true
	}
	return t.st, nil
}

// mapErr turns driver errors into the admin.Store contract's errors.
func mapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return tenant.ErrNotFound
	}
	if errors.Is(err, tenant.ErrNotFound) || errors.Is(err, tenant.ErrConflict) || errors.Is(err, ErrUnavailable) ||
		errors.Is(err, tenant.ErrQuotaExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	msg := err.Error()
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23505", strings.Contains(msg, "UNIQUE constraint failed"):
		return fmt.Errorf("%w: %s already exists", tenant.ErrConflict, what)
	case errors.As(err, &pgErr) && pgErr.Code == "23503", strings.Contains(msg, "FOREIGN KEY constraint failed"):
		return fmt.Errorf("%w: %s still has dependent objects (delete them first) or refers to a missing one", tenant.ErrConflict, what)
	}
	// The database failing us, not the caller's input (which the service
	// validated), is ErrUnavailable, a 503 that says try again later.
	// Anything else is a bug (a wrong query, a schema mismatch): it must
	// surface as one (500, logged), not pass for an outage.
	return fail(what, err)
}

// unavailable reports whether err means the database cannot serve now:
// unreachable, timed out, shutting down, out of resources, busy or
// closed, or a transaction to retry.
func unavailable(err error) bool {
	var (
		pgErr   *pgconn.PgError
		connErr *pgconn.ConnectError
		netErr  net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &connErr), errors.As(err, &netErr),
		pgconn.Timeout(err), pgconn.SafeToRetry(err):
		return true
	case errors.As(err, &pgErr):
		// Connection exception, insufficient resources, operator
		// intervention (shutdown, cancel), serialization failure, deadlock.
		class := pgErr.Code[:min(2, len(pgErr.Code))]
		return class == "08" || class == "53" || class == "57" || pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	msg := err.Error()
	for _, s := range []string{"database is closed", "database is locked", "database table is locked",
		"SQLITE_BUSY", "disk I/O error", "unable to open database file", "database or disk is full", "conn closed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func micros(t time.Time) int64      { return t.UnixMicro() }
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nowUTC() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func encodePolicy(p tenant.Policy) (string, error) {
	b, err := json.Marshal(p)
	return string(b), err
}

func decodePolicy(s string) (tenant.Policy, error) {
	var p tenant.Policy
	err := json.Unmarshal([]byte(s), &p)
	return p, err
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// write runs fn, appends the audit entry, bumps the config version and
// logs what changed, all in one transaction, and returns the new version.
func (t *Tenants) write(ctx context.Context, what string, a admin.AuditEntry, ch changed, fn func(tx *sql.Tx) error) (uint64, error) {
	return t.writeTx(ctx, what, a, &ch, fn)
}

// writeTx is write for a change the nodes must see (ch set: bump the
// version and log it) or one they need not (ch nil: tokens, panel users).
func (t *Tenants) writeTx(ctx context.Context, what string, a admin.AuditEntry, ch *changed, fn func(tx *sql.Tx) error) (uint64, error) {
	st, err := t.db(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	tx, err := st.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, mapErr(err, what)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return 0, mapErr(err, what)
	}
	v, err := logChange(ctx, tx, a, ch)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, mapErr(err, what)
	}
	return v, nil
}

// logChange appends the audit entry of a change made in tx and, when ch
// is set, bumps the config version and logs what changed; it returns the
// new version (0 without ch).
func logChange(ctx context.Context, tx *sql.Tx, a admin.AuditEntry, ch *changed) (uint64, error) {
	if _, err := tx.ExecContext(ctx, `INSERT INTO tenant_audit (at_us, actor, reseller_id, action, object, detail)
		VALUES ($1, $2, $3, $4, $5, $6)`, micros(nowUTC()), a.Actor, nullID(a.ResellerID), a.Action, a.Object, a.Detail); err != nil {
		return 0, mapErr(err, "audit entry")
	}
	if ch == nil {
		return 0, nil
	}
	var v int64
	if err := tx.QueryRowContext(ctx, `UPDATE tenant_version SET version = version + 1 WHERE id = 1 RETURNING version`).Scan(&v); err != nil {
		return 0, mapErr(err, "config version")
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tenant_changes (version, kind, object_id) VALUES ($1, $2, $3)`, v, ch.kind, *ch.id); err != nil {
		return 0, mapErr(err, "change log")
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tenant_changes WHERE version <= $1`, v-changeLogKeep); err != nil {
		return 0, mapErr(err, "change log")
	}
	return uint64(v), nil
}

// query runs a read with the store's timeout.
func (t *Tenants) query(ctx context.Context, q string, args []any, scan func(*sql.Rows) error) error {
	st, err := t.db(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	rows, err := st.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return mapErr(err, "query")
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return mapErr(err, "scan")
		}
	}
	return mapErr(rows.Err(), "query")
}

// where builds a WHERE clause; conditions use $N in order.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(w.args))))
}

// nameLike matches a case-insensitive substring; LIKE's own metacharacters
// in the filter are escaped so "50%" means the text "50%".
func (w *where) nameLike(col, s string) {
	if s == "" {
		return
	}
	// Both sides folded by the database's lower() (SQLite's is ASCII
	// only): folded in Go, "Ölwerk" did not find "Ölwerk GmbH".
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
	w.add("lower("+col+") LIKE lower($?) ESCAPE '\\'", "%"+esc+"%")
}

func (w *where) page(col string, f admin.Filter) string {
	if f.After > 0 {
		w.add(col+" > $?", f.After)
	}
	limit := f.Limit
	if limit <= 0 || limit > admin.MaxPageSize {
		limit = admin.DefaultPageSize
	}
	s := ""
	if len(w.conds) > 0 {
		s = " WHERE " + strings.Join(w.conds, " AND ")
	}
	return s + " ORDER BY " + col + " LIMIT " + strconv.Itoa(limit)
}

// --- resellers

// Slugs and map keys are NULL when unset (rows written by tools below the
// service), which the unique indexes allow any number of.
const resellerCols = `id, name, COALESCE(slug, ''), display_name, accent, policy, created_us, updated_us, max_domains, max_recipients`

func scanReseller(sc interface{ Scan(...any) error }) (tenant.Reseller, error) {
	var (
		r        tenant.Reseller
		pol      string
		cre, upd int64
	)
	if err := sc.Scan(&r.ID, &r.Name, &r.Slug, &r.DisplayName, &r.Accent, &pol, &cre, &upd, &r.Quota.Domains, &r.Quota.Recipients); err != nil {
		return r, err
	}
	r.Created, r.Updated = fromMicros(cre), fromMicros(upd)
	p, err := decodePolicy(pol)
	if err != nil {
		return r, fmt.Errorf("%w: policy: %v", errDamaged, err)
	}
	r.Policy = p
	return r, nil
}

func (t *Tenants) ListResellers(ctx context.Context, f admin.Filter) ([]tenant.Reseller, error) {
	var w where
	if f.ResellerID > 0 {
		w.add("id = $?", f.ResellerID)
	}
	w.nameLike("name", f.Name)
	return listOf(ctx, t, "SELECT "+resellerCols+" FROM resellers"+w.page("id", f), w.args, scanReseller)
}

func (t *Tenants) GetReseller(ctx context.Context, id int64) (tenant.Reseller, error) {
	return getOne(ctx, t, "SELECT "+resellerCols+" FROM resellers WHERE id = $1", id, scanReseller)
}

// listOf reads every row q selects.
func listOf[T any](ctx context.Context, t *Tenants, q string, args []any, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	out := []T{}
	err := t.query(ctx, q, args, func(rows *sql.Rows) error {
		v, err := scan(rows)
		out = append(out, v)
		return err
	})
	return out, err
}

// getOne reads one row by key.
func getOne[T any](ctx context.Context, t *Tenants, q string, key any, scan func(interface{ Scan(...any) error }) (T, error)) (T, error) {
	var zero T
	st, err := t.db(ctx)
	if err != nil {
		return zero, err
	}
	ctx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	v, err := scan(st.DB.QueryRowContext(ctx, q, key))
	if err != nil {
		return zero, mapErr(err, "get")
	}
	return v, nil
}

func (t *Tenants) CreateReseller(ctx context.Context, r *tenant.Reseller, a admin.AuditEntry) (uint64, error) {
	pol, err := encodePolicy(r.Policy)
	if err != nil {
		return 0, err
	}
	now := nowUTC()
	return t.write(ctx, "reseller "+r.Name, a, changed{changedReseller, &r.ID}, func(tx *sql.Tx) error {
		r.Created, r.Updated = now, now
		return tx.QueryRowContext(ctx, `INSERT INTO resellers (name, slug, display_name, accent, policy, created_us, updated_us, max_domains, max_recipients)
			VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8) RETURNING id`,
			r.Name, nullStr(r.Slug), r.DisplayName, r.Accent, pol, micros(now), r.Quota.Domains, r.Quota.Recipients).Scan(&r.ID)
	})
}

func (t *Tenants) UpdateReseller(ctx context.Context, r *tenant.Reseller, a admin.AuditEntry) (uint64, error) {
	pol, err := encodePolicy(r.Policy)
	if err != nil {
		return 0, err
	}
	read, written := versions(r.Updated)
	v, err := t.write(ctx, "reseller "+r.Name, a, changed{changedReseller, &r.ID}, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE resellers SET name = $1, slug = $2, display_name = $3, accent = $4,
			policy = $5, updated_us = $6, max_domains = $7, max_recipients = $8 WHERE id = $9 AND updated_us = $10`,
			r.Name, nullStr(r.Slug), r.DisplayName, r.Accent, pol, written, r.Quota.Domains, r.Quota.Recipients, r.ID, read)
		return expectFresh(ctx, tx, "resellers", r.ID, res, err)
	})
	if err == nil {
		r.Updated = time.UnixMicro(written).UTC()
	}
	return v, err
}

func (t *Tenants) DeleteReseller(ctx context.Context, id int64, a admin.AuditEntry) (uint64, error) {
	return t.write(ctx, "reseller "+strconv.FormatInt(id, 10), a, changed{changedReseller, &id}, func(tx *sql.Tx) error {
		return expectRow(tx.ExecContext(ctx, `DELETE FROM resellers WHERE id = $1`, id))
	})
}

// versions returns the updated_us a record was read at and the one to
// write. Writes are made only on the version read (WHERE updated_us =
// read), and each moves it forward by at least a microsecond, so a
// read-modify-write cannot undo a write that came between its read and
// its write (tenant.ErrStale; the service reads again).
func versions(read time.Time) (was, next int64) {
	was = micros(read)
	return was, max(micros(nowUTC()), was+1)
}

// expectFresh is expectRow for a write made only on the version read: no
// row affected is ErrStale while the row is still there.
func expectFresh(ctx context.Context, tx *sql.Tx, table string, id int64, res sql.Result, err error) error {
	if err := expectRow(res, err); !errors.Is(err, tenant.ErrNotFound) {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE id = $1`, id).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return tenant.ErrStale
	}
	return tenant.ErrNotFound
}

// expectRow turns "no row affected" into ErrNotFound.
func expectRow(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return tenant.ErrNotFound
	}
	return nil
}

// --- customers

const customerCols = `id, reseller_id, name, policy, suspended, COALESCE(map_key, ''), created_us, updated_us`

func scanCustomer(sc interface{ Scan(...any) error }) (tenant.Customer, error) {
	var (
		c        tenant.Customer
		pol      string
		cre, upd int64
	)
	if err := sc.Scan(&c.ID, &c.ResellerID, &c.Name, &pol, &c.Suspended, &c.MapKey, &cre, &upd); err != nil {
		return c, err
	}
	c.Created, c.Updated = fromMicros(cre), fromMicros(upd)
	p, err := decodePolicy(pol)
	if err != nil {
		return c, fmt.Errorf("%w: policy: %v", errDamaged, err)
	}
	c.Policy = p
	return c, nil
}

func (t *Tenants) ListCustomers(ctx context.Context, f admin.Filter) ([]tenant.Customer, error) {
	var w where
	if f.ResellerID > 0 {
		w.add("reseller_id = $?", f.ResellerID)
	}
	if f.CustomerID > 0 {
		w.add("id = $?", f.CustomerID)
	}
	w.nameLike("name", f.Name)
	return listOf(ctx, t, "SELECT "+customerCols+" FROM customers"+w.page("id", f), w.args, scanCustomer)
}

func (t *Tenants) GetCustomer(ctx context.Context, id int64) (tenant.Customer, error) {
	return getOne(ctx, t, "SELECT "+customerCols+" FROM customers WHERE id = $1", id, scanCustomer)
}

func (t *Tenants) CreateCustomer(ctx context.Context, c *tenant.Customer, a admin.AuditEntry) (uint64, error) {
	pol, err := encodePolicy(c.Policy)
	if err != nil {
		return 0, err
	}
	now := nowUTC()
	return t.write(ctx, "customer "+c.Name, a, changed{changedCustomer, &c.ID}, func(tx *sql.Tx) error {
		if err := t.lockParent(ctx, tx, resellerParent, c.ResellerID, c.ResellerID); err != nil {
			return err
		}
		c.Created, c.Updated = now, now
		if err := tx.QueryRowContext(ctx, `INSERT INTO customers (reseller_id, name, policy, suspended, map_key, created_us, updated_us)
			VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`,
			c.ResellerID, c.Name, pol, c.Suspended, nullStr(c.MapKey), micros(now)).Scan(&c.ID); err != nil {
			return err
		}
		return t.enforceQuota(ctx, tx, c.ResellerID, quotaCustomers, 1)
	})
}

func (t *Tenants) UpdateCustomer(ctx context.Context, c *tenant.Customer, a admin.AuditEntry) (uint64, error) {
	pol, err := encodePolicy(c.Policy)
	if err != nil {
		return 0, err
	}
	read, written := versions(c.Updated)
	v, err := t.write(ctx, "customer "+c.Name, a, changed{changedCustomer, &c.ID}, func(tx *sql.Tx) error {
		from, err := ownerOf(ctx, tx, ownerOfCustomer, c.ID)
		if err != nil {
			return err
		}
		if err := t.lockParent(ctx, tx, resellerParent, c.ResellerID, c.ResellerID); err != nil {
			return err
		}
		// The map key never changes: embeds already published keep working.
		res, err := tx.ExecContext(ctx, `UPDATE customers SET reseller_id = $1, name = $2, policy = $3, suspended = $4,
			updated_us = $5 WHERE id = $6 AND updated_us = $7`,
			c.ResellerID, c.Name, pol, c.Suspended, written, c.ID, read)
		if err := expectFresh(ctx, tx, "customers", c.ID, res, err); err != nil {
			return err
		}
		if c.ResellerID == from {
			return nil
		}
		return t.enforceMoved(ctx, tx, c.ResellerID, `SELECT id FROM domains WHERE customer_id = $1`, c.ID)
	})
	if err == nil {
		c.Updated = time.UnixMicro(written).UTC()
	}
	return v, err
}

func (t *Tenants) DeleteCustomer(ctx context.Context, id, owner int64, a admin.AuditEntry) (uint64, error) {
	return t.write(ctx, "customer "+strconv.FormatInt(id, 10), a, changed{changedCustomer, &id}, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM customers WHERE id = $1 AND reseller_id = $2`, id, owner)
		return expectFresh(ctx, tx, "customers", id, res, err)
	})
}

// --- domains

var domainCols = `d.id, d.customer_id, c.reseller_id, d.name, d.route, d.tls, d.policy, d.created_us, d.updated_us,
	COALESCE(rt.rules, '[]'), d.status, d.verify_token, ` + pendingSinceUs("d.")

const domainFrom = ` FROM domains d JOIN customers c ON c.id = d.customer_id LEFT JOIN domain_routes rt ON rt.domain_id = d.id`

// pendingSinceUs is the expression of when a domain row (its columns
// prefixed by table) became pending. A node from before tenants schema 5,
// still writing during a rolling upgrade, leaves the column at 0, which
// made its claims lapse at once: they date from their last update, as
// that migration dated the claims pending then.
func pendingSinceUs(table string) string {
	return "CASE WHEN " + table + "pending_since_us = 0 THEN " + table + "updated_us ELSE " + table + "pending_since_us END"
}

func scanDomain(sc interface{ Scan(...any) error }) (tenant.DomainRecord, error) {
	var (
		d             tenant.DomainRecord
		pol, rts      string
		cre, upd, pen int64
	)
	if err := sc.Scan(&d.ID, &d.CustomerID, &d.ResellerID, &d.Name, &d.Route, &d.TLS, &pol, &cre, &upd, &rts, &d.Status, &d.VerifyToken, &pen); err != nil {
		return d, err
	}
	d.Created, d.Updated = fromMicros(cre), fromMicros(upd)
	if d.Status == tenant.StatusPending {
		d.PendingSince = fromMicros(pen)
	}
	p, err := decodePolicy(pol)
	if err != nil {
		return d, fmt.Errorf("%w: policy: %v", errDamaged, err)
	}
	d.Policy = p
	if d.Routes, err = decodeRoutes(rts); err != nil {
		return d, fmt.Errorf("%w: routes: %v", errDamaged, err)
	}
	return d, nil
}

// errDamaged is a row read whole whose JSON columns do not decode: not
// what the store writes, so edited by hand or restored wrong.
var errDamaged = errors.New("stored row does not decode")

// keepDamaged lets a snapshot read keep a damaged row, why in *why, for
// the syncer to leave out loudly: failing the read kept every node from
// loading any domain.
func keepDamaged(err error, why *string) error {
	if errors.Is(err, errDamaged) {
		*why = err.Error()
		return nil
	}
	return err
}

func (t *Tenants) ListDomains(ctx context.Context, f admin.Filter) ([]tenant.DomainRecord, error) {
	var w where
	if f.ResellerID > 0 {
		w.add("c.reseller_id = $?", f.ResellerID)
	}
	if f.CustomerID > 0 {
		w.add("d.customer_id = $?", f.CustomerID)
	}
	w.nameLike("d.name", f.Name)
	return listOf(ctx, t, "SELECT "+domainCols+domainFrom+w.page("d.id", f), w.args, scanDomain)
}

func (t *Tenants) GetDomain(ctx context.Context, id int64) (tenant.DomainRecord, error) {
	return getOne(ctx, t, "SELECT "+domainCols+domainFrom+" WHERE d.id = $1", id, scanDomain)
}

func (t *Tenants) CreateDomain(ctx context.Context, d *tenant.DomainRecord, a admin.AuditEntry) (uint64, error) {
	pol, err := encodePolicy(d.Policy)
	if err != nil {
		return 0, err
	}
	return t.write(ctx, "domain "+d.Name, a, changed{changedDomain, &d.ID}, func(tx *sql.Tx) error {
		return t.createDomain(ctx, tx, d, pol)
	})
}

// TakeOverDomain removes the lapsed claim and creates d in one
// transaction: removed first and created after, a create refused past
// the reseller's quota (by a create of its own that took the last place
// meanwhile) left another tenant's claim removed for nothing.
func (t *Tenants) TakeOverDomain(ctx context.Context, d *tenant.DomainRecord, lapsedID int64, pendingBefore time.Time, lapse, create admin.AuditEntry) (uint64, error) {
	pol, err := encodePolicy(d.Policy)
	if err != nil {
		return 0, err
	}
	return t.write(ctx, "domain "+d.Name, create, changed{changedDomain, &d.ID}, func(tx *sql.Tx) error {
		if err := deleteLapsedClaim(ctx, tx, lapsedID, pendingBefore); err != nil {
			return err
		}
		if err := t.createDomain(ctx, tx, d, pol); err != nil {
			return err
		}
		// The version's row is locked last, as every tenant write locks
		// it: bumped before the create's quota check, the take-over held
		// it waiting for the reseller's row, which a create of that
		// reseller held waiting for the version's, and one was aborted.
		_, err := logChange(ctx, tx, lapse, &changed{changedDomain, &lapsedID})
		return err
	})
}

// createDomain inserts d, its policy encoded as pol, in tx.
func (t *Tenants) createDomain(ctx context.Context, tx *sql.Tx, d *tenant.DomainRecord, pol string) error {
	if err := t.lockActivations(ctx, tx, d, false); err != nil {
		return err
	}
	if err := t.lockParent(ctx, tx, customerParent, d.CustomerID, d.ResellerID); err != nil {
		return err
	}
	now := nowUTC()
	d.Created, d.Updated = now, now
	if err := tx.QueryRowContext(ctx, `INSERT INTO domains (customer_id, name, route, tls, policy, created_us, updated_us, status, verify_token, pending_since_us)
		VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9) RETURNING id`,
		d.CustomerID, d.Name, d.Route, d.TLS, pol, micros(now), d.Status, d.VerifyToken, pendingSince(d)).Scan(&d.ID); err != nil {
		return err
	}
	owner, err := ownerOf(ctx, tx, ownerOfDomain, d.ID)
	if err != nil {
		return err
	}
	d.ResellerID = owner
	if err := t.enforceQuota(ctx, tx, owner, quotaDomains, 1); err != nil {
		return err
	}
	if err := continueClaim(ctx, tx, d, owner); err != nil {
		return err
	}
	if err := forgetTakeover(ctx, tx, d); err != nil {
		return err
	}
	return putRoutes(ctx, tx, d.ID, d.Routes)
}

func (t *Tenants) UpdateDomain(ctx context.Context, d *tenant.DomainRecord, owner int64, a admin.AuditEntry) (uint64, error) {
	return t.updateDomain(ctx, d, owner, a, nil)
}

// ActivateDomain writes d, made active, as UpdateDomain does, after the
// lock every write of an active domain takes. With byMX it first checks,
// in that transaction, that MX records may still prove d's name (mxProves).
// Checked before the transaction, two resellers proving a parent and its
// subdomain by MX at the same moment, on two nodes or two goroutines of
// one, each found the other's name pending and both became active.
func (t *Tenants) ActivateDomain(ctx context.Context, d *tenant.DomainRecord, byMX bool, a admin.AuditEntry) (uint64, error) {
	return t.updateDomain(ctx, d, d.ResellerID, a, func(tx *sql.Tx) error {
		if !byMX {
			return nil
		}
		ok, err := mxProves(ctx, tx, d.Name, d.ResellerID)
		if err == nil && !ok {
			err = admin.ErrNotProvenByMX
		}
		return err
	})
}

// updateDomain is UpdateDomain, running check (when set) in its
// transaction after the activation lock and before any write.
func (t *Tenants) updateDomain(ctx context.Context, d *tenant.DomainRecord, owner int64, a admin.AuditEntry, check func(tx *sql.Tx) error) (uint64, error) {
	pol, err := encodePolicy(d.Policy)
	if err != nil {
		return 0, err
	}
	read, written := versions(d.Updated)
	var to int64
	v, err := t.write(ctx, "domain "+d.Name, a, changed{changedDomain, &d.ID}, func(tx *sql.Tx) error {
		if err := t.lockActivations(ctx, tx, d, true); err != nil {
			return err
		}
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		if err := t.lockOwnedDomain(ctx, tx, d.ID, owner); err != nil {
			return err
		}
		if err := rememberFreedName(ctx, tx, d.ID, d.Name); err != nil {
			return err
		}
		if err := rememberClaim(ctx, tx, d.ID, d.Name); err != nil {
			return err
		}
		if err := t.lockParent(ctx, tx, customerParent, d.CustomerID, d.ResellerID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE domains SET customer_id = $1, name = $2, route = $3, tls = $4, policy = $5, updated_us = $6,
			status = $7, verify_token = $8, pending_since_us = $9 WHERE id = $10 AND updated_us = $11`,
			d.CustomerID, d.Name, d.Route, d.TLS, pol, written, d.Status, d.VerifyToken, pendingSince(d), d.ID, read)
		if err := expectFresh(ctx, tx, "domains", d.ID, res, err); err != nil {
			return err
		}
		if to, err = ownerOf(ctx, tx, ownerOfDomain, d.ID); err != nil {
			return err
		}
		if to != owner {
			if err := t.enforceMoved(ctx, tx, to, `SELECT id FROM domains WHERE id = $1`, d.ID); err != nil {
				return err
			}
		}
		if err := continueClaim(ctx, tx, d, to); err != nil {
			return err
		}
		if err := forgetTakeover(ctx, tx, d); err != nil {
			return err
		}
		return putRoutes(ctx, tx, d.ID, d.Routes)
	})
	if err == nil {
		d.Updated, d.ResellerID = time.UnixMicro(written).UTC(), to
	}
	return v, err
}

// activationLock is the advisory lock (PostgreSQL) that every write of an
// active domain takes first, so that an MX proof's check (mxProves) and
// its activation see every other activation committed before them: the
// nodes sharing the database activate one at a time. Such writes are few
// (proofs, approvals, the operator's creates and edits), and every tenant
// write waits for the config version's row anyway. SQLite's one
// connection writes one transaction at a time already.
//
// Renames of pending domains take it too: two of them into each other's
// names at once (a swap, on two nodes) each held its old name in the
// unique index while it waited for the other's, and PostgreSQL aborted
// one as a deadlock, a 503 where both are refused as taken. Renames are
// few as well.
const activationLock = 7411925

// lockActivations takes activationLock in tx when it writes d active or,
// for an update (update set), renames it.
func (t *Tenants) lockActivations(ctx context.Context, tx *sql.Tx, d *tenant.DomainRecord, update bool) error {
	if t.st.Dialect != Postgres {
		return nil
	}
	if d.Status != tenant.StatusActive {
		renamed := false
		if update {
			if err := tx.QueryRowContext(ctx, `SELECT name <> $2 FROM domains WHERE id = $1`, d.ID, d.Name).Scan(&renamed); err != nil {
				return err
			}
		}
		if !renamed {
			return nil
		}
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, activationLock)
	return err
}

// forgetTakeover ends the TXT-only rule of an active domain's name, and
// the clocks of the claims given up on it (rememberClaim): a proof or the
// operator settled who holds it.
func forgetTakeover(ctx context.Context, tx *sql.Tx, d *tenant.DomainRecord) error {
	if d.Status != tenant.StatusActive {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM domain_takeovers WHERE name = $1`, d.Name); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM domain_claims WHERE name = $1`, d.Name)
	return err
}

// rememberClaim records, when domain id is pending and about to be
// deleted or renamed (to a name other than keep), since when its reseller
// has claimed the name, and with which token, for continueClaim. A clock
// already recorded is kept: the claim that gave it up had gone on from it.
func rememberClaim(ctx context.Context, tx *sql.Tx, id int64, keep string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO domain_claims (name, reseller_id, since_us, verify_token)
		SELECT d.name, c.reseller_id, `+pendingSinceUs("d.")+`, d.verify_token FROM domains d JOIN customers c ON c.id = d.customer_id
		WHERE d.id = $1 AND d.status = $2 AND d.name <> $3
		ON CONFLICT (name, reseller_id) DO NOTHING`, id, tenant.StatusPending, keep)
	return err
}

// continueClaim dates pending d, written for resellerID, from that
// reseller's earlier claim on the name when it gave one up unproven
// (rememberClaim): a claim given up and taken again lapses when the first
// would have, rather than keeping the name from the other resellers for
// another whole TTL. It takes that claim's token again too: dated from a
// lapsed clock, the claim may be taken over at once, and a new token each
// time left the TXT record the customer published proving none of them.
// A claim already dated so (an edit of it) is left as it is.
func continueClaim(ctx context.Context, tx *sql.Tx, d *tenant.DomainRecord, resellerID int64) error {
	if d.Status != tenant.StatusPending {
		return nil
	}
	var (
		since int64
		token string
	)
	err := tx.QueryRowContext(ctx, `SELECT since_us, verify_token FROM domain_claims WHERE name = $1 AND reseller_id = $2`,
		d.Name, resellerID).Scan(&since, &token)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil || since >= pendingSince(d) {
		return err
	}
	token = cmp.Or(token, d.VerifyToken)
	if _, err := tx.ExecContext(ctx, `UPDATE domains SET pending_since_us = $1, verify_token = $2 WHERE id = $3`, since, token, d.ID); err != nil {
		return err
	}
	d.PendingSince, d.VerifyToken = fromMicros(since), token
	return nil
}

func (t *Tenants) DeleteDomain(ctx context.Context, id, owner int64, a admin.AuditEntry) (uint64, error) {
	return t.write(ctx, "domain "+strconv.FormatInt(id, 10), a, changed{changedDomain, &id}, func(tx *sql.Tx) error {
		if err := t.lockOwnedDomain(ctx, tx, id, owner); err != nil {
			return err
		}
		if err := rememberFreedName(ctx, tx, id, ""); err != nil {
			return err
		}
		if err := rememberClaim(ctx, tx, id, ""); err != nil {
			return err
		}
		return expectRow(tx.ExecContext(ctx, `DELETE FROM domains WHERE id = $1`, id))
	})
}

// rememberFreedName puts the name of domain id, when it is active and
// about to be deleted or renamed (to a name other than keep), among the
// names only a TXT proof (or the operator) gives again: its MX records still point at the cluster
// for the customer who held it, so they would let any reseller that
// claims the name the moment it is freed prove it and receive that
// customer's mail. The next active domain of the name ends the rule
// (forgetTakeover).
func rememberFreedName(ctx context.Context, tx *sql.Tx, id int64, keep string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO domain_takeovers (name)
		SELECT name FROM domains WHERE id = $1 AND status = $2 AND name <> $3
		ON CONFLICT (name) DO NOTHING`, id, tenant.StatusActive, keep)
	return err
}

// pendingSince is the column value of d.PendingSince: 0 for an active
// domain, whose claim never lapses.
func pendingSince(d *tenant.DomainRecord) int64 {
	if d.Status != tenant.StatusPending || d.PendingSince.IsZero() {
		return 0
	}
	return micros(d.PendingSince)
}

func (t *Tenants) DomainByName(ctx context.Context, name string) (tenant.DomainRecord, error) {
	return getOne(ctx, t, "SELECT "+domainCols+domainFrom+" WHERE d.name = $1", name, scanDomain)
}

func (t *Tenants) DeleteLapsedClaim(ctx context.Context, id int64, pendingBefore time.Time, a admin.AuditEntry) (uint64, error) {
	return t.write(ctx, "domain "+strconv.FormatInt(id, 10), a, changed{changedDomain, &id}, func(tx *sql.Tx) error {
		return deleteLapsedClaim(ctx, tx, id, pendingBefore)
	})
}

// deleteLapsedClaim is DeleteLapsedClaim's change, in tx.
func deleteLapsedClaim(ctx context.Context, tx *sql.Tx, id int64, pendingBefore time.Time) error {
	// The condition is checked in the statements themselves: a proof
	// that activated the domain a moment ago keeps it, and marks
	// nothing (the DELETE finds no row and the transaction rolls back).
	// The holder's clock is kept as for a claim given up: two
	// resellers (one tenant's two accounts) taking the name from each
	// other in turn each started a whole TTL again, and kept it from
	// every other reseller for ever.
	if err := rememberClaim(ctx, tx, id, ""); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO domain_takeovers (name)
		SELECT name FROM domains WHERE id = $1 AND status = $2 AND `+pendingSinceUs("")+` < $3
		ON CONFLICT (name) DO NOTHING`, id, tenant.StatusPending, micros(pendingBefore)); err != nil {
		return err
	}
	return expectRow(tx.ExecContext(ctx, `DELETE FROM domains WHERE id = $1 AND status = $2 AND `+pendingSinceUs("")+` < $3`,
		id, tenant.StatusPending, micros(pendingBefore)))
}

// rowQuerier is a *sql.DB or a *sql.Tx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// mxProves reports whether MX records at the cluster may prove name for
// resellerID: not a name taken over from a lapsed claim or freed by an
// active domain's delete or rename (takenOver), nor one under or above
// another reseller's active domain. MX records show that the customer
// chose this service, not which reseller, and the one whose claim lapsed
// (or who held the name, or who holds the customer's domain above it or
// a subdomain below it) may be that one: only the TXT token proves those.
func mxProves(ctx context.Context, q rowQuerier, name string, resellerID int64) (bool, error) {
	for _, nested := range []func(context.Context, rowQuerier, string, int64) (bool, error){othersActiveAbove, othersActiveBelow} {
		if found, err := nested(ctx, q, name, resellerID); err != nil || found {
			return false, err
		}
	}
	taken, err := takenOver(ctx, q, name)
	return !taken, err
}

// takenOver reports whether a lapsed claim on name gave way to another,
// or an active domain of the name was deleted or renamed, since the name
// was last active.
func takenOver(ctx context.Context, q rowQuerier, name string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM domain_takeovers WHERE name = $1`, name).Scan(&n)
	return n > 0, err
}

// othersActiveAbove reports whether a parent of name (with a dot: not a
// top-level domain) is the active domain of a reseller other than
// resellerID.
func othersActiveAbove(ctx context.Context, q rowQuerier, name string, resellerID int64) (bool, error) {
	args := []any{tenant.StatusActive, resellerID}
	var in []string
	for n := name; ; {
		_, parent, ok := strings.Cut(n, ".")
		if !ok || !strings.Contains(parent, ".") {
			break
		}
		args = append(args, parent)
		in = append(in, "$"+strconv.Itoa(len(args)))
		n = parent
	}
	if len(in) == 0 {
		return false, nil
	}
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM domains d JOIN customers c ON c.id = d.customer_id
		WHERE d.status = $1 AND c.reseller_id <> $2 AND d.name IN (`+strings.Join(in, ", ")+`)`, args...).Scan(&n)
	return n > 0, err
}

// othersActiveBelow reports whether an active domain of a reseller other
// than resellerID is named something ending in "." + name. It compares
// the end of each name rather than matching LIKE '%.' || name, which
// would read a '_' or '%' in name as a wildcard (the service's names hold
// neither, but the store does not lean on that). The length test leaves
// out names too short to end so, for which substr's start would fall
// before the first character, where the dialects differ (SQLite counts a
// negative start from the end).
func othersActiveBelow(ctx context.Context, q rowQuerier, name string, resellerID int64) (bool, error) {
	suffix := "." + name
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM domains d JOIN customers c ON c.id = d.customer_id
		WHERE d.status = $1 AND c.reseller_id <> $2 AND length(d.name) > $3 AND substr(d.name, length(d.name) - $3 + 1) = $4`,
		tenant.StatusActive, resellerID, utf8.RuneCountInString(suffix), suffix).Scan(&n)
	return n > 0, err
}

// --- recipients

func scanRecipient(sc interface{ Scan(...any) error }) (admin.Recipient, error) {
	var (
		r   admin.Recipient
		cre int64
	)
	err := sc.Scan(&r.ID, &r.DomainID, &r.Local, &cre)
	r.Created = fromMicros(cre)
	return r, err
}

func (t *Tenants) ListRecipients(ctx context.Context, f admin.Filter) ([]admin.Recipient, error) {
	var w where
	w.add("domain_id = $?", f.DomainID)
	w.nameLike("local", f.Name)
	return listOf(ctx, t, "SELECT id, domain_id, local, created_us FROM recipients"+w.page("id", f), w.args, scanRecipient)
}

func (t *Tenants) GetRecipient(ctx context.Context, domainID int64, local string) (admin.Recipient, error) {
	st, err := t.db(ctx)
	if err != nil {
		return admin.Recipient{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	r, err := scanRecipient(st.DB.QueryRowContext(ctx,
		`SELECT id, domain_id, local, created_us FROM recipients WHERE domain_id = $1 AND local = $2`, domainID, local))
	return r, mapErr(err, "recipient "+local)
}

// recipientsPerStatement bounds a multi-row INSERT's parameters (3 each)
// well under both dialects' limits.
const recipientsPerStatement = 500

func (t *Tenants) AddRecipients(ctx context.Context, domainID, owner int64, locals []string, replace bool, a admin.AuditEntry) (int, uint64, error) {
	added := 0
	now := micros(nowUTC())
	v, err := t.write(ctx, "recipients", a, changed{changedDomain, &domainID}, func(tx *sql.Tx) error {
		if err := t.lockOwnedDomain(ctx, tx, domainID, owner); err != nil {
			return err
		}
		var removed int64
		if replace {
			res, err := tx.ExecContext(ctx, `DELETE FROM recipients WHERE domain_id = $1`, domainID)
			if err != nil {
				return err
			}
			if removed, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		for start := 0; start < len(locals); start += recipientsPerStatement {
			chunk := locals[start:min(start+recipientsPerStatement, len(locals))]
			var b strings.Builder
			// ON CONFLICT DO NOTHING (both dialects) makes a re-import
			// idempotent; RowsAffected counts only the new rows.
			b.WriteString("INSERT INTO recipients (domain_id, local, created_us) VALUES ")
			args := make([]any, 0, 3*len(chunk))
			for i, l := range chunk {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "($%d, $%d, $%d)", 3*i+1, 3*i+2, 3*i+3)
				args = append(args, domainID, l, now)
			}
			b.WriteString(" ON CONFLICT (domain_id, local) DO NOTHING")
			res, err := tx.ExecContext(ctx, b.String(), args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			added += int(n)
		}
		if err := countRecipients(ctx, tx, domainID, int64(added)-removed); err != nil {
			return err
		}
		if added == 0 {
			// Nothing new (a re-import, or a replace that only shrank):
			// a reseller over a lowered quota may still clean up.
			return nil
		}
		return t.enforceQuota(ctx, tx, owner, quotaRecipients, int64(added)-removed)
	})
	return added, v, err
}

func (t *Tenants) DeleteRecipient(ctx context.Context, domainID, owner int64, local string, a admin.AuditEntry) (uint64, error) {
	return t.write(ctx, "recipient "+local, a, changed{changedDomain, &domainID}, func(tx *sql.Tx) error {
		if err := t.lockOwnedDomain(ctx, tx, domainID, owner); err != nil {
			return err
		}
		if err := expectRow(tx.ExecContext(ctx, `DELETE FROM recipients WHERE domain_id = $1 AND local = $2`, domainID, local)); err != nil {
			return err
		}
		return countRecipients(ctx, tx, domainID, -1)
	})
}

// lockOwnedDomain finds domain id held by reseller owner, the one the
// service checked it against, before the write that follows; missing, it
// is ErrNotFound, another's ErrStale, for the service to read it again. Checked by the service alone, a write by id landed
// on whoever held the domain by then: the operator giving it (or its
// customer) to another reseller between the check and the write had one
// reseller delete, import into or reroute another's domain.
//
// On PostgreSQL it locks the domain's row (FOR NO KEY UPDATE, the least
// that orders its writes) and its customer's (FOR SHARE), so that neither
// changes hands before the write commits; SQLite's one connection writes
// one transaction at a time already. A delete's FOR UPDATE is left to its
// DELETE: taken here, the customer's delete, holding its own row and
// checking its foreign key (KEY SHARE of the domain's, which NO KEY
// UPDATE lets through), waited for the domain's delete, which waited for
// the customer's row, and PostgreSQL aborted one as deadlocked. The
// domain's row locked first also orders a domain's recipient writes: each
// replace's DELETE reads what the one before committed (at once, on two
// nodes, the second deleted only the rows committed when it began and
// left the first's new list beside its own), and no two deadlock (each
// locked its recipients in its own order, an import's list or a
// replace's DELETE, and the domain's row, for its count, last).
func (t *Tenants) lockOwnedDomain(ctx context.Context, tx *sql.Tx, id, owner int64) error {
	locks := ""
	if t.st.Dialect == Postgres {
		locks = " FOR NO KEY UPDATE OF d FOR SHARE OF c"
	}
	var held int64
	if err := tx.QueryRowContext(ctx, `SELECT c.reseller_id FROM domains d JOIN customers c ON c.id = d.customer_id WHERE d.id = $1`+locks,
		id).Scan(&held); err != nil {
		return err
	}
	if held != owner {
		return tenant.ErrStale
	}
	return nil
}

// countRecipients keeps domains.recipient_count: every write that adds or
// deletes a domain's recipients calls it in the same transaction. (A
// domain's deletion takes its count with it.)
func countRecipients(ctx context.Context, tx *sql.Tx, domainID, delta int64) error {
	if delta == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE domains SET recipient_count = recipient_count + $1 WHERE id = $2`, delta, domainID)
	return err
}

// --- quotas

// What a quota caps (tenant.QuotaError.What).
const (
	quotaDomains    = "domains"
	quotaRecipients = "recipients"
	// quotaCustomers is capped by the domain quota: a customer exists to
	// hold domains, so a reseller needs no more of them than domains, and
	// each one (with a policy of up to the API's body limit) is held in
	// every node's memory. Uncapped, a reseller at its domain quota could
	// still create customers until the nodes ran out of memory.
	quotaCustomers = "customers"
)

// quotaCount counts what a quota caps of reseller $1.
var quotaCount = map[string]string{
	quotaDomains:    `SELECT COUNT(*) FROM domains d JOIN customers c ON c.id = d.customer_id WHERE c.reseller_id = $1`,
	quotaRecipients: `SELECT COALESCE(SUM(d.recipient_count), 0) FROM domains d JOIN customers c ON c.id = d.customer_id WHERE c.reseller_id = $1`,
	quotaCustomers:  `SELECT COUNT(*) FROM customers WHERE reseller_id = $1`,
}

// Queries of the reseller ($1: a domain's or customer's id) holding an
// object, for ownerOf.
const (
	ownerOfDomain   = `SELECT c.reseller_id FROM domains d JOIN customers c ON c.id = d.customer_id WHERE d.id = $1`
	ownerOfCustomer = `SELECT reseller_id FROM customers WHERE id = $1`
)

// parent is what a create or a move writes under, for lockParent: the
// query of the reseller holding parent $1, and the lock (PostgreSQL)
// that keeps its answer true until the transaction ends.
type parent struct{ query, lock string }

var (
	// A customer's FOR SHARE also keeps it from being given to another
	// reseller (its reseller_id is no key).
	customerParent = parent{`SELECT reseller_id FROM customers WHERE id = $1`, " FOR SHARE"}
	resellerParent = parent{`SELECT id FROM resellers WHERE id = $1`, " FOR KEY SHARE"}
)

// lockParent finds parent id for a write under it and keeps it there,
// held by reseller want (0: by whoever holds it), until tx ends. Missing,
// it is admin.ErrParentGone, which the service answers as its own check
// of the parent does ("no such customer"); another's, ErrStale, for the
// service to check it again: a reseller finds it gone, the operator
// writes under it where it went. Left to the
// insert's foreign key, a parent deleted since the service checked it
// answered a conflict, "... still has dependent objects (delete them
// first) or refers to a missing one" (for a domain, that its name was
// taken), where the same request a moment later was told there is no
// such parent; and a customer given to another reseller since took the
// domain created under it there.
func (t *Tenants) lockParent(ctx context.Context, tx *sql.Tx, p parent, id, want int64) error {
	lock := ""
	if t.st.Dialect == Postgres {
		lock = p.lock
	}
	var held int64
	err := tx.QueryRowContext(ctx, p.query+lock, id).Scan(&held)
	if errors.Is(err, sql.ErrNoRows) {
		return admin.ErrParentGone
	}
	if err == nil && want != 0 && held != want {
		return tenant.ErrStale
	}
	return err
}

// ownerOf runs one of the owner queries in tx. A missing object is
// ErrNotFound, like the write it precedes would report.
func ownerOf(ctx context.Context, tx *sql.Tx, query string, id int64) (int64, error) {
	var owner int64
	err := tx.QueryRowContext(ctx, query, id).Scan(&owner)
	return owner, err
}

// enforceQuota fails tx when the write it just made (delta more of what,
// quotaDomains, quotaRecipients or quotaCustomers) left resellerID over
// its quota.
// Counting after the write makes duplicates, replaced lists and skipped
// existing rows count as they are stored. The reseller's row is locked
// first on PostgreSQL, so concurrent writes of one reseller count one
// after another and each sees the others' rows (SQLite runs one write at
// a time anyway): two requests cannot both pass the last free place.
func (t *Tenants) enforceQuota(ctx context.Context, tx *sql.Tx, resellerID int64, what string, delta int64) error {
	lock := ""
	if t.st.Dialect == Postgres {
		// NO KEY: customers' foreign keys (KEY SHARE) need not wait.
		lock = " FOR NO KEY UPDATE"
	}
	var own tenant.Quota
	if err := tx.QueryRowContext(ctx, `SELECT max_domains, max_recipients FROM resellers WHERE id = $1`+lock,
		resellerID).Scan(&own.Domains, &own.Recipients); err != nil {
		return err
	}
	q := own.Over(t.DefaultQuota)
	limit := q.Domains
	if what == quotaRecipients {
		limit = q.Recipients
	}
	if limit <= 0 {
		return nil
	}
	var n int64
	if err := tx.QueryRowContext(ctx, quotaCount[what], resellerID).Scan(&n); err != nil {
		return err
	}
	if n > limit {
		return &tenant.QuotaError{What: what, Quota: limit, Used: n - delta, After: n}
	}
	return nil
}

// enforceMoved checks both quotas of resellerID after the domains that
// domainIDs selects (by $1 = id) moved to it with their recipients: an
// operator's move is a create for the reseller receiving them.
func (t *Tenants) enforceMoved(ctx context.Context, tx *sql.Tx, resellerID int64, domainIDs string, id int64) error {
	for _, m := range []struct{ what, count string }{
		{quotaDomains, `SELECT COUNT(*) FROM (` + domainIDs + `) moved`},
		{quotaRecipients, `SELECT COALESCE(SUM(recipient_count), 0) FROM domains WHERE id IN (` + domainIDs + `)`},
	} {
		var n int64
		if err := tx.QueryRowContext(ctx, m.count, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		if err := t.enforceQuota(ctx, tx, resellerID, m.what, n); err != nil {
			return err
		}
	}
	return nil
}

// ResellerUsage counts what reseller id holds against its quota.
func (t *Tenants) ResellerUsage(ctx context.Context, id int64) (admin.Usage, error) {
	r, err := t.GetReseller(ctx, id)
	if err != nil {
		return admin.Usage{}, err
	}
	q := r.Quota.Over(t.DefaultQuota)
	u := admin.Usage{Domains: admin.Use{Quota: q.Domains}, Recipients: admin.Use{Quota: q.Recipients}}
	for what, n := range map[string]*int64{quotaDomains: &u.Domains.Used, quotaRecipients: &u.Recipients.Used} {
		if err := t.query(ctx, quotaCount[what], []any{id}, func(rows *sql.Rows) error { return rows.Scan(n) }); err != nil {
			return admin.Usage{}, err
		}
	}
	return u, nil
}

// --- tokens

const tokenCols = `id, reseller_id, name, hash, created_us, expires_us`

func scanToken(sc interface{ Scan(...any) error }) (admin.Token, error) {
	var (
		tk       admin.Token
		rid      sql.NullInt64
		cre, exp int64
	)
	err := sc.Scan(&tk.ID, &rid, &tk.Name, &tk.Hash, &cre, &exp)
	tk.ResellerID = rid.Int64
	tk.Created = fromMicros(cre)
	if exp != 0 {
		tk.Expires = fromMicros(exp)
	}
	return tk, err
}

func (t *Tenants) ListTokens(ctx context.Context, f admin.Filter) ([]admin.Token, error) {
	var w where
	if f.ResellerID > 0 {
		w.add("reseller_id = $?", f.ResellerID)
	}
	w.nameLike("name", f.Name)
	return listOf(ctx, t, "SELECT "+tokenCols+" FROM api_tokens"+w.page("id", f), w.args, scanToken)
}

func (t *Tenants) GetToken(ctx context.Context, id int64) (admin.Token, error) {
	return getOne(ctx, t, "SELECT "+tokenCols+" FROM api_tokens WHERE id = $1", id, scanToken)
}

func (t *Tenants) TokenByHash(ctx context.Context, hash string) (admin.Token, error) {
	return getOne(ctx, t, "SELECT "+tokenCols+" FROM api_tokens WHERE hash = $1", hash, scanToken)
}

// Tokens are not tenant config: they do not bump the version (nodes need
// not reload for them), but they are audited like everything else.
func (t *Tenants) CreateToken(ctx context.Context, tk *admin.Token, a admin.AuditEntry) error {
	now := nowUTC()
	_, err := t.writeTx(ctx, "token "+tk.Name, a, nil, func(tx *sql.Tx) error {
		if tk.ResellerID != 0 {
			if err := t.lockParent(ctx, tx, resellerParent, tk.ResellerID, tk.ResellerID); err != nil {
				return err
			}
		}
		tk.Created = now
		var expires int64
		if !tk.Expires.IsZero() {
			expires = micros(tk.Expires)
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO api_tokens (reseller_id, name, hash, created_us, expires_us) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			nullID(tk.ResellerID), tk.Name, tk.Hash, micros(now), expires).Scan(&tk.ID); err != nil {
			return err
		}
		return capPerReseller(ctx, tx, "api_tokens", "tokens", tk.ResellerID)
	})
	return err
}

// MaxPerReseller caps a reseller's API tokens and panel users, each. No
// hosting reseller needs more, and without a cap one (or a stolen token
// of its) could grow the store's tables, and every audit and login
// lookup, without bound. The operator's own tokens are not capped.
const MaxPerReseller = 1000

// capPerReseller fails tx when the insert it just made into table left
// resellerID (0: the operator) with more than MaxPerReseller rows there,
// with a quota error saying what. Unlike enforceQuota it locks nothing:
// on PostgreSQL two concurrent creates may both take the last place, a
// bound on growth all the same.
func capPerReseller(ctx context.Context, tx *sql.Tx, table, what string, resellerID int64) error {
	if resellerID == 0 {
		return nil
	}
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE reseller_id = $1`, resellerID).Scan(&n); err != nil {
		return err
	}
	if n > MaxPerReseller {
		return &tenant.QuotaError{What: what, Quota: MaxPerReseller, Used: n - 1, After: n}
	}
	return nil
}

func (t *Tenants) DeleteToken(ctx context.Context, id int64, a admin.AuditEntry) error {
	_, err := t.writeTx(ctx, "token "+strconv.FormatInt(id, 10), a, nil, func(tx *sql.Tx) error {
		return expectRow(tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE id = $1`, id))
	})
	return err
}

// --- audit

// ListAudit pages newest first: After is the smallest id already seen.
func (t *Tenants) ListAudit(ctx context.Context, f admin.Filter) ([]admin.AuditEntry, error) {
	var w where
	if f.ResellerID > 0 {
		w.add("reseller_id = $?", f.ResellerID)
	}
	if f.After > 0 {
		w.add("id < $?", f.After)
	}
	limit := f.Limit
	if limit <= 0 || limit > admin.MaxPageSize {
		limit = admin.DefaultPageSize
	}
	q := "SELECT id, at_us, actor, reseller_id, action, object, detail FROM tenant_audit"
	if len(w.conds) > 0 {
		q += " WHERE " + strings.Join(w.conds, " AND ")
	}
	q += " ORDER BY id DESC LIMIT " + strconv.Itoa(limit)
	out := []admin.AuditEntry{}
	err := t.query(ctx, q, w.args, func(rows *sql.Rows) error {
		var (
			e   admin.AuditEntry
			at  int64
			rid sql.NullInt64
		)
		err := rows.Scan(&e.ID, &at, &e.Actor, &rid, &e.Action, &e.Object, &e.Detail)
		e.Time, e.ResellerID = fromMicros(at), rid.Int64
		out = append(out, e)
		return err
	})
	return out, err
}

// --- snapshot

// fullLoadTimeout bounds Load instead of the store's timeout, which is
// sized for single queries: reading 100,000 domains with ten million
// recipients takes tens of seconds, and a node that could never finish
// it would never load. An unreachable database still fails at once.
const fullLoadTimeout = 10 * time.Minute

// Load reads the version and every row a snapshot needs in one
// transaction.
func (t *Tenants) Load(ctx context.Context) (tenant.Data, error) {
	var data tenant.Data
	err := t.snapshotTx(ctx, fullLoadTimeout, func(ctx context.Context, tx *sql.Tx, version uint64) error {
		data.Version = version
		if err := readHierarchy(ctx, tx, &data, "", nil); err != nil {
			return err
		}
		data.Recipients = make(map[int64]tenant.Recipients)
		return readDomains(ctx, tx, &data, "", "")
	})
	return data, err
}

// changedIDs selects the ids of the objects of one kind ($2) changed after
// version $1.
const changedIDs = `SELECT object_id FROM tenant_changes WHERE version > $1 AND kind = $2`

// changedDomainIDs selects the domains a delta after version $1 carries:
// those changed, and every domain of a changed customer or reseller; each
// part an index lookup from the few changed rows.
const changedDomainIDs = `SELECT object_id FROM tenant_changes WHERE version > $1 AND kind = 'domain'
	UNION SELECT id FROM domains WHERE customer_id IN (SELECT object_id FROM tenant_changes WHERE version > $1 AND kind = 'customer')
	UNION SELECT id FROM domains WHERE customer_id IN (SELECT id FROM customers
		WHERE reseller_id IN (SELECT object_id FROM tenant_changes WHERE version > $1 AND kind = 'reseller'))`

// domainsPerRead bounds the ids listed in one read of a delta's domains.
const domainsPerRead = 1000

// LoadSince reads what changed after version, in one transaction like
// Load, from the change log; tenant.ErrChangesGone when the log does not
// hold every version since (it no longer reaches back that far, or a node
// without the log wrote one), holds more than maxDeltaObjects objects, or the
// store is behind the node (it was restored from a backup).
func (t *Tenants) LoadSince(ctx context.Context, version uint64) (tenant.Delta, error) {
	var d tenant.Delta
	err := t.snapshotTx(ctx, 0, func(ctx context.Context, tx *sql.Tx, current uint64) error {
		d.Version = current
		if current == version {
			return nil
		}
		if version > current {
			return tenant.ErrChangesGone
		}
		// Every version has its row, so fewer rows than versions since
		// means the log no longer reaches back, or a node from before the
		// log (tenants schema 4, still running during a rolling upgrade)
		// changed tenants without one: a delta would leave its change out.
		var logged, objects int64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenant_changes WHERE version > $1`, int64(version)).Scan(&logged); err != nil {
			return mapErr(err, "change log")
		}
		if logged != int64(current-version) {
			return tenant.ErrChangesGone
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT DISTINCT kind, object_id FROM tenant_changes WHERE version > $1) ch`,
			int64(version)).Scan(&objects); err != nil {
			return mapErr(err, "change log")
		}
		v := int64(version)
		// A reseller or customer is one object in the log, yet the delta
		// reads all its domains.
		var domains, recipients int64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(recipient_count), 0) FROM domains WHERE id IN (`+changedDomainIDs+`)`,
			v).Scan(&domains, &recipients); err != nil {
			return mapErr(err, "change log")
		}
		if objects > maxDeltaObjects || domains > maxDeltaObjects || recipients > maxDeltaRecipients {
			return tenant.ErrChangesGone
		}
		if err := readHierarchy(ctx, tx, &d.Data, " WHERE id IN ("+changedIDs+")", []any{v}); err != nil {
			return err
		}
		// The ids first, then the rows by primary key and the recipients
		// by their (domain_id, local) index: a plan that cannot fall back
		// to scanning ten million recipients.
		var ids []int64
		rows, err := tx.QueryContext(ctx, changedDomainIDs, v)
		if err != nil {
			return mapErr(err, "change log")
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return mapErr(err, "change log")
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return mapErr(err, "change log")
		}
		d.Recipients = make(map[int64]tenant.Recipients)
		for chunk := range slices.Chunk(ids, domainsPerRead) {
			// Integers formatted here, never client text.
			list := make([]string, len(chunk))
			for i, id := range chunk {
				list[i] = strconv.FormatInt(id, 10)
			}
			in := " IN (" + strings.Join(list, ",") + ")"
			if err := readDomains(ctx, tx, &d.Data, " WHERE d.id"+in, " WHERE domain_id"+in); err != nil {
				return err
			}
		}
		if d.RemovedResellers, err = removedIDs(ctx, tx, v, changedReseller, d.Resellers, func(r tenant.Reseller) int64 { return r.ID }); err != nil {
			return err
		}
		if d.RemovedCustomers, err = removedIDs(ctx, tx, v, changedCustomer, d.Customers, func(c tenant.Customer) int64 { return c.ID }); err != nil {
			return err
		}
		d.RemovedDomains, err = removedIDs(ctx, tx, v, changedDomain, d.Domains, func(dr tenant.DomainRecord) int64 { return dr.ID })
		return err
	})
	return d, err
}

// snapshotTx runs fn in one read transaction with the config version it
// sees: on PostgreSQL at REPEATABLE READ, so the version matches the rows
// even while others write (SQLite's transactions are serializable). It is
// bounded by timeout, or the store's when that is longer.
func (t *Tenants) snapshotTx(ctx context.Context, timeout time.Duration, fn func(ctx context.Context, tx *sql.Tx, version uint64) error) error {
	st, err := t.db(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, max(timeout, st.Timeout))
	defer cancel()
	var opts *sql.TxOptions
	if st.Dialect == Postgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := st.DB.BeginTx(ctx, opts)
	if err != nil {
		return mapErr(err, "load")
	}
	defer tx.Rollback()
	var v int64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM tenant_version WHERE id = 1`).Scan(&v); err != nil {
		return mapErr(err, "load version")
	}
	return fn(ctx, tx, uint64(v))
}

// eachRow runs q in tx and fn on each row.
func eachRow(ctx context.Context, tx *sql.Tx, q string, args []any, fn func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return mapErr(err, "load")
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return mapErr(err, "load")
		}
	}
	return mapErr(rows.Err(), "load")
}

// readHierarchy reads resellers and customers into data, narrowed by
// where, whose last parameter is the kind of object (all rows when where
// is empty).
func readHierarchy(ctx context.Context, tx *sql.Tx, data *tenant.Data, where string, args []any) error {
	kind := func(k string) []any {
		if where == "" {
			return nil
		}
		return append(slices.Clone(args), k)
	}
	if err := eachRow(ctx, tx, "SELECT "+resellerCols+" FROM resellers"+where, kind(changedReseller), func(rows *sql.Rows) error {
		r, err := scanReseller(rows)
		data.Resellers = append(data.Resellers, r)
		return keepDamaged(err, &data.Resellers[len(data.Resellers)-1].Damaged)
	}); err != nil {
		return err
	}
	return eachRow(ctx, tx, "SELECT "+customerCols+" FROM customers"+where, kind(changedCustomer), func(rows *sql.Rows) error {
		c, err := scanCustomer(rows)
		data.Customers = append(data.Customers, c)
		return keepDamaged(err, &data.Customers[len(data.Customers)-1].Damaged)
	})
}

// readDomains reads domains and their recipients into data, narrowed by
// the WHERE clauses (all rows when empty). Recipients come ordered by
// domain, so each domain's are packed as soon as they are read: ten
// million of them never exist as separate strings.
func readDomains(ctx context.Context, tx *sql.Tx, data *tenant.Data, whereDomain, whereRecipient string) error {
	if err := eachRow(ctx, tx, "SELECT "+domainCols+domainFrom+whereDomain, nil, func(rows *sql.Rows) error {
		d, err := scanDomain(rows)
		data.Domains = append(data.Domains, d)
		return keepDamaged(err, &data.Domains[len(data.Domains)-1].Damaged)
	}); err != nil {
		return err
	}
	var (
		cur    int64
		locals []string
	)
	flush := func() {
		if len(locals) > 0 {
			data.Recipients[cur] = tenant.PackRecipients(locals)
			locals = locals[:0]
		}
	}
	if err := eachRow(ctx, tx, "SELECT domain_id, local FROM recipients"+whereRecipient+" ORDER BY domain_id", nil, func(rows *sql.Rows) error {
		var (
			id    int64
			local string
		)
		if err := rows.Scan(&id, &local); err != nil {
			return err
		}
		if id != cur {
			flush()
			cur = id
		}
		locals = append(locals, local)
		return nil
	}); err != nil {
		return err
	}
	flush()
	return nil
}

// removedIDs are the ids of kind the log names after version that are no
// longer in present: deleted.
func removedIDs[T any](ctx context.Context, tx *sql.Tx, version int64, kind string, present []T, id func(T) int64) ([]int64, error) {
	have := make(map[int64]bool, len(present))
	for _, p := range present {
		have[id(p)] = true
	}
	rows, err := tx.QueryContext(ctx, "SELECT DISTINCT object_id FROM tenant_changes WHERE version > $1 AND kind = $2", version, kind)
	if err != nil {
		return nil, mapErr(err, "change log")
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var oid int64
		if err := rows.Scan(&oid); err != nil {
			return nil, mapErr(err, "change log")
		}
		if !have[oid] {
			out = append(out, oid)
		}
	}
	return out, mapErr(rows.Err(), "change log")
}
