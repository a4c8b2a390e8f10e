// Package store is mxgrid's persistence: tenants, events and maps. One
// implementation over database/sql serves both the embedded SQLite file (the
// default: nothing to install) and PostgreSQL (shared by a cluster); SQL that
// differs between the two lives in per-dialect migrations, and queries use
// only the common subset ($N placeholders work in both).
//
// Each subsystem owns its tables: it declares its migrations as a Component
// and calls Migrate once at start. Versions are tracked per component so
// subsystems evolve independently.
package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/tenant"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Driver names accepted in store.driver.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Config is the `store:` section.
type Config struct {
	// Driver is sqlite (embedded, a file in data_dir) or postgres.
	Driver string `yaml:"driver"`
	// DSN is the PostgreSQL connection string, or for sqlite an optional
	// file path (default data_dir/mxgrid.db).
	DSN string `yaml:"dsn"`
	// Timeout bounds every store call made on behalf of a request.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig is the embedded SQLite store.
func DefaultConfig() Config {
	return Config{Driver: SQLite, Timeout: 5 * time.Second}
}

// Validate checks the section; messages name the key.
func (c Config) Validate() error {
	switch c.Driver {
	case SQLite:
	case Postgres:
		if c.DSN == "" {
			return errors.New("dsn: required when driver is postgres")
		}
		if _, err := url.Parse(c.DSN); err != nil && !strings.Contains(c.DSN, "=") {
			return fmt.Errorf("dsn: not a PostgreSQL URL or key=value string: %w", err)
		}
	default:
		return fmt.Errorf("driver: %q is not sqlite or postgres", c.Driver)
	}
	if c.Timeout <= 0 {
		return errors.New("timeout: must be positive")
	}
	return nil
}

// Identity names the database c points at, for the tenant snapshot file
// (tenant.SyncOptions.Store): PostgreSQL's host, port and database, which
// a password change or an added option leave as they are. SQLite's file
// lives in data_dir beside the snapshot, so a copied data_dir brings its
// own store: the driver is enough.
func (c Config) Identity() string {
	if c.Driver != Postgres {
		return c.Driver
	}
	pc, err := pgconn.ParseConfig(c.DSN)
	if err != nil {
		// Connecting refuses it too; a digest still tells it from
		// another DSN without writing its password into the file.
		sum := sha256.Sum256([]byte(c.DSN))
		return Postgres + " " + hex.EncodeToString(sum[:8])
	}
	return fmt.Sprintf("%s %s/%s", Postgres, net.JoinHostPort(pc.Host, strconv.Itoa(int(pc.Port))), pc.Database)
}

// Store is the handle on the database: one per node, never nil, safe for
// concurrent use. It connects lazily and reconnects by itself (database/sql
// does), so a node started while its database was down picks it up when
// it comes back, without a restart. Its methods return an error wrapping
// ErrUnavailable when the database cannot serve now, and any other error
// (a wrong query, a schema mismatch: a bug) wrapped with its cause.
type Store struct {
	DB      *sql.DB
	Dialect string
	Timeout time.Duration

	// partitions remembers the message log's day partitions known to
	// exist (PostgreSQL), so a batch creates only a new day's.
	partitions sync.Map
	inserts    preparedInserts
}

// ErrUnavailable wraps the errors of a database that cannot serve now:
// unreachable, shutting down, timed out, closed. It is the admin
// contract's tenant.ErrUnavailable, so a handler tells an outage (503, try
// later) from a bug (500) with one errors.Is whichever store method failed.
var ErrUnavailable = tenant.ErrUnavailable

// fail wraps a database error with what was being done, adding
// ErrUnavailable when the database cannot serve now.
func fail(what string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("%w: store: %s: %w", ErrUnavailable, what, err)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// Open returns the store cfg describes, without connecting: the database
// is reached on first use. For sqlite the file lives in dataDir unless the
// DSN names one, and is created here. Its errors are configuration errors
// (an unknown driver, a DSN that does not parse, a file that cannot be
// created), never an outage.
func Open(cfg Config, dataDir string) (*Store, error) {
	var (
		db  *sql.DB
		err error
	)
	switch cfg.Driver {
	case SQLite:
		path := SQLitePath(cfg, dataDir)
		if err := os.MkdirAll(filepath.Dir(path), fsperm.DirMode); err != nil {
			return nil, fmt.Errorf("store: create data directory: %w", err)
		}
		// SQLite would create the file 0644, and its -wal and -shm files
		// take the database's mode: made 0600 first, all three stay so.
		// Only a regular file (fsperm.CreatePrivate): a dangling link was
		// followed and its target created, a link to an empty file made a
		// database, wherever it led.
		if err := fsperm.CreatePrivate(path); errors.Is(err, fsperm.ErrNotRegular) {
			return nil, fmt.Errorf("store: %w: the database must be a file of its own; to keep it elsewhere, set store.dsn to its path", err)
		} else if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		// WAL lets the map and the API read while events are written;
		// busy_timeout turns writer contention into a short wait, not an error.
		// A 16 MB page cache (SQLite's default is 2 MB) holds the index pages
		// a batch of tracking rows touches, which otherwise spill to the WAL
		// mid-transaction; checkpoints every 10,000 pages (~40 MB of WAL)
		// rather than 1,000 copy each hot page back once, not ten times.
		// Both cut the batch writers' CPU by a quarter to a third.
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(ON)" +
			"&_pragma=cache_size(-16384)&_pragma=wal_autocheckpoint(10000)"
		db, err = sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
		}
		// SQLite has one writer; one connection avoids SQLITE_BUSY storms
		// and keeps transactions serialised.
		db.SetMaxOpenConns(1)
	case Postgres:
		// The pgx driver's connector parses the DSN at every connection,
		// so a passfile is read again for each, as sql.Open("pgx") does.
		c, err := stdlib.GetDefaultDriver().(driver.DriverContext).OpenConnector(cfg.DSN)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		db = sql.OpenDB(endsIdleTransactions{Connector: c, after: idleInTransaction(cfg.Timeout)})
		db.SetMaxOpenConns(16)
		db.SetConnMaxIdleTime(time.Minute)
	default:
		return nil, fmt.Errorf("store: unknown driver %q", cfg.Driver)
	}
	return &Store{DB: db, Dialect: cfg.Driver, Timeout: cfg.Timeout}, nil
}

// idleInTransaction is how long PostgreSQL keeps a session of ours that
// sits idle inside a transaction before it ends the session, and with it
// the transaction and its locks. Ours say their next statement within
// milliseconds (a map's aggregation between its reads: a few seconds at
// worst), and those bound by the store's timeout are rolled back by it; a
// node that stops inside one (SIGSTOP, a paused VM, a host gone without a
// word) says nothing more, and its locks (the config version's row, a
// domain's hold lock) made every other node's tenant writes and holds of
// that domain wait and fail until it came back: for ever under SIGSTOP,
// two hours and more for a host gone, until TCP keepalive found it out.
func idleInTransaction(timeout time.Duration) time.Duration { return 4 * timeout }

// endsIdleTransactions sets idle_in_transaction_session_timeout on each of
// its connections: once connected rather than as a startup parameter,
// which a pooler such as PgBouncer refuses.
type endsIdleTransactions struct {
	driver.Connector
	after time.Duration
}

func (c endsIdleTransactions) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, errors.New("store: the postgres driver's connection cannot execute a statement")
	}
	if _, err := ex.ExecContext(ctx, fmt.Sprintf("SET idle_in_transaction_session_timeout = %d", c.after.Milliseconds()), nil); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.closeInserts()
	return s.DB.Close()
}

// Migration is one schema step. SQLite and Postgres hold the statements for
// each dialect; when the two are identical set only Common.
type Migration struct {
	Version  int
	Common   string
	SQLite   string
	Postgres string
}

func (m Migration) sqlFor(dialect string) string {
	switch {
	case dialect == SQLite && m.SQLite != "":
		return m.SQLite
	case dialect == Postgres && m.Postgres != "":
		return m.Postgres
	}
	return m.Common
}

func (s *Store) createMigrationTable(ctx context.Context) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fail("create schema_migrations", err)
	}
	defer tx.Rollback()
	if s.Dialect == Postgres {
		// IF NOT EXISTS does not make two creations at once safe: the
		// second waits for the first's catalog row, then fails on it
		// (duplicate key in pg_type), and a node of a cluster started
		// together on a new database reported its store unavailable.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fail("lock for schema_migrations", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT NOT NULL,
		version INTEGER NOT NULL,
		applied_at TIMESTAMP NOT NULL,
		PRIMARY KEY (component, version))`); err != nil {
		return fail("create schema_migrations", err)
	}
	if err := tx.Commit(); err != nil {
		return fail("create schema_migrations", err)
	}
	return nil
}

// migrationLock is the advisory lock under which nodes change the schema.
const migrationLock = 7411923

// Migrate applies component's migrations that are not applied yet, each in
// its own transaction, in version order. Versions must be increasing.
func (s *Store) Migrate(ctx context.Context, component string, migrations []Migration) error {
	if err := s.createMigrationTable(ctx); err != nil {
		return err
	}
	var current int
	err := s.DB.QueryRowContext(ctx,
		`SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = $1`, component).Scan(&current)
	if err != nil {
		return fail(fmt.Sprintf("read %s schema version", component), err)
	}
	if last := migrations[len(migrations)-1].Version; current > last {
		return &SchemaTooNewError{Component: component, Stored: current, Known: last}
	}
	prev := 0
	for _, m := range migrations {
		if m.Version <= prev {
			return fmt.Errorf("store: %s migration versions must increase (%d after %d)", component, m.Version, prev)
		}
		prev = m.Version
		if m.Version <= current {
			continue
		}
		if err := s.apply(ctx, component, m); err != nil {
			return err
		}
	}
	return nil
}

// SchemaTooNewError is a database a newer mxgrid migrated: this version
// would read and write tables whose meaning it does not know (a rollback
// after an upgrade), so it refuses to run on it rather than guess.
type SchemaTooNewError struct {
	Component string
	Stored    int // the database's version
	Known     int // this build's newest; 0 for a component it does not have
}

func (e *SchemaTooNewError) Error() string {
	if e.Known == 0 {
		return fmt.Sprintf("store: the database holds a %s schema (version %d) this mxgrid does not know: "+
			"a newer mxgrid migrated it; run that version or a newer one", e.Component, e.Stored)
	}
	return fmt.Sprintf("store: the database's %s schema is version %d, newer than this mxgrid knows (%d): "+
		"a newer mxgrid migrated it; run that version or a newer one", e.Component, e.Stored, e.Known)
}

// CheckSchema refuses, with a *SchemaTooNewError, a database holding any
// component newer than this build knows, including one whose tables this
// node only migrates later (the tenants' on first load).
func (s *Store) CheckSchema(ctx context.Context) error {
	if err := s.createMigrationTable(ctx); err != nil {
		return err
	}
	stored, err := schemaVersions(ctx, s.DB)
	if err != nil {
		return fail("read schema versions", err)
	}
	known := knownSchemas()
	for _, c := range slices.Sorted(maps.Keys(stored)) {
		if stored[c] > known[c] {
			return &SchemaTooNewError{Component: c, Stored: stored[c], Known: known[c]}
		}
	}
	return nil
}

// migrationTimeout bounds one migration. The caller's deadline is the
// store's timeout, meant for one query of a node serving mail: a migration
// rewriting a large table (quarantine v4 over 1,000,000 held messages:
// 9 s on PostgreSQL) failed at it, rolled back, and was retried every 5 s
// for ever, each try locking the table from the nodes still serving.
const migrationTimeout = 15 * time.Minute

// beforeMigrationStatement, when a test sets it, runs in apply's
// transaction just before the migration's statements, with its context.
var beforeMigrationStatement func(context.Context)

// migrationContext is ctx without its deadline, bounded by
// migrationTimeout instead, still ended when ctx is cancelled (shutdown).
func migrationContext(ctx context.Context) (context.Context, context.CancelFunc) {
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), migrationTimeout)
	stop := context.AfterFunc(ctx, func() {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	return mctx, func() {
		stop()
		cancel()
	}
}

func (s *Store) apply(ctx context.Context, component string, m Migration) error {
	ctx, cancel := migrationContext(ctx)
	defer cancel()
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fail(fmt.Sprintf("migrate %s v%d", component, m.Version), err)
	}
	defer tx.Rollback()
	if s.Dialect == Postgres {
		// Nodes of a cluster start together against one database: the
		// lock makes the second wait for the first, then find the version
		// applied, instead of failing on a duplicate table.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fail(fmt.Sprintf("lock for %s v%d", component, m.Version), err)
		}
		var applied int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE component = $1 AND version = $2`,
			component, m.Version).Scan(&applied); err != nil {
			return fail(fmt.Sprintf("migrate %s v%d", component, m.Version), err)
		}
		if applied > 0 {
			return nil
		}
	}
	if beforeMigrationStatement != nil {
		beforeMigrationStatement(ctx)
	}
	if _, err := tx.ExecContext(ctx, m.sqlFor(s.Dialect)); err != nil {
		return fail(fmt.Sprintf("migrate %s v%d", component, m.Version), err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (component, version, applied_at) VALUES ($1, $2, $3)`,
		component, m.Version, time.Now().UTC()); err != nil {
		return fail(fmt.Sprintf("record %s v%d", component, m.Version), err)
	}
	if err := tx.Commit(); err != nil {
		return fail(fmt.Sprintf("commit %s v%d", component, m.Version), err)
	}
	return nil
}
