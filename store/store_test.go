package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/testenv"
)

func TestMigrateAppliesOnceAndInOrder(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(DefaultConfig(), dir)
	if err != nil {
		t.Fatal(err)
	}
	migs := []Migration{
		{Version: 1, Common: `CREATE TABLE t (id INTEGER PRIMARY KEY)`},
		{Version: 2, SQLite: `ALTER TABLE t ADD COLUMN name TEXT`, Postgres: `ALTER TABLE t ADD COLUMN name TEXT`},
	}
	if err := s.Migrate(ctx, "test", migs); err != nil {
		t.Fatal(err)
	}
	// A second run (a restarted node) must be a no-op, not a "table exists" error.
	if err := s.Migrate(ctx, "test", migs); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO t (id, name) VALUES ($1, $2)`, 1, "x"); err != nil {
		t.Fatalf("schema not applied: %v", err)
	}
	s.Close()

	s, err = Open(Config{Driver: SQLite, DSN: filepath.Join(dir, "mxgrid.db"), Timeout: DefaultConfig().Timeout}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE component = 'test'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("schema_migrations rows = %d, %v; want 2", n, err)
	}
	bad := []Migration{{Version: 2}, {Version: 1}}
	if err := s.Migrate(ctx, "other", bad); err == nil {
		t.Fatal("decreasing versions accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"default", DefaultConfig(), false},
		{"postgres needs dsn", Config{Driver: Postgres, Timeout: 1}, true},
		{"postgres with dsn", Config{Driver: Postgres, DSN: "postgres://u@127.0.0.1/db", Timeout: 1}, false},
		{"unknown driver", Config{Driver: "mysql", Timeout: 1}, true},
		{"zero timeout", Config{Driver: SQLite}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// TestSQLiteSettings: the embedded store runs with the settings its batch
// writers were measured with (store.go says why each).
func TestSQLiteSettings(t *testing.T) {
	s, err := Open(DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for pragma, want := range map[string]string{
		"journal_mode": "wal", "synchronous": "1", "foreign_keys": "1",
		"cache_size": "-16384", "wal_autocheckpoint": "10000",
	} {
		var got string
		if err := s.DB.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

// TestRefusesASchemaANewerVersionMigrated: the binary rolled back onto a
// database a newer mxgrid migrated refuses it, naming the component and
// both versions, instead of running on tables it does not know.
func TestRefusesASchemaANewerVersionMigrated(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		component     string
		version       int
		stored, known int
	}{
		{trackingComponent, 99, 99, knownSchemas()[trackingComponent]},
		{"component_of_the_future", 1, 1, 0},
	} {
		t.Run(tc.component, func(t *testing.T) {
			s, err := Open(DefaultConfig(), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.MigrateTracking(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.CheckSchema(ctx); err != nil {
				t.Fatalf("check of this version's own schema: %v", err)
			}
			if _, err := s.DB.ExecContext(ctx, `INSERT INTO schema_migrations (component, version, applied_at) VALUES ($1, $2, $3)`,
				tc.component, tc.version, time.Now().UTC()); err != nil {
				t.Fatal(err)
			}
			var tooNew *SchemaTooNewError
			err = s.CheckSchema(ctx)
			if !errors.As(err, &tooNew) || *tooNew != (SchemaTooNewError{tc.component, tc.stored, tc.known}) {
				t.Fatalf("CheckSchema = %v, want the %s schema refused as newer", err, tc.component)
			}
			if tc.known > 0 {
				if err := s.MigrateTracking(ctx); !errors.As(err, &tooNew) {
					t.Fatalf("MigrateTracking on a newer schema = %v, want it refused", err)
				}
			}
		})
	}
}

// TestMigrationOutlivesTheQueryTimeout: a migration still running when
// the caller's deadline (the store's timeout, 5 s) passes completes: one
// rewriting a large table failed at it and was retried, locking the
// table, for ever. A cancelled caller (shutdown) still stops it.
func TestMigrationOutlivesTheQueryTimeout(t *testing.T) {
	defer func() { beforeMigrationStatement = nil }()
	migs := []Migration{{Version: 1, Common: `CREATE TABLE t (id INTEGER PRIMARY KEY)`}}
	for _, tc := range []struct {
		name    string
		end     func(context.Context) (context.Context, context.CancelFunc)
		applied bool
	}{
		{"deadline", func(ctx context.Context) (context.Context, context.CancelFunc) {
			d := &expiring{Context: ctx, done: make(chan struct{})}
			return d, sync.OnceFunc(func() { close(d.done) })
		}, true},
		{"cancelled", context.WithCancel, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(DefaultConfig(), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx, end := tc.end(context.Background())
			defer end()
			beforeMigrationStatement = func(mctx context.Context) {
				end()
				<-ctx.Done()
				if !tc.applied {
					<-mctx.Done()
				}
			}
			err = s.Migrate(ctx, "test", migs)
			if tc.applied && err != nil {
				t.Fatalf("migration past the caller's deadline: %v", err)
			}
			if !tc.applied && !errors.Is(err, context.Canceled) {
				t.Fatalf("migration of a cancelled caller = %v, want context.Canceled", err)
			}
		})
	}
}

// expiring is a context whose deadline passes when done is closed.
type expiring struct {
	context.Context
	done chan struct{}
}

func (e *expiring) Done() <-chan struct{} { return e.done }

func (e *expiring) Err() error {
	select {
	case <-e.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// TestNodesCreatingTheSchemaTogether: a node starting on a new PostgreSQL
// database while another is creating schema_migrations waits for it: the
// second CREATE TABLE IF NOT EXISTS failed on the first's uncommitted
// catalog row (duplicate key in pg_type), and that node started with its
// store reported unavailable.
func TestNodesCreatingTheSchemaTogether(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDB(t)
	open := func() *Store { return openPostgresAt(t, dsn) }
	first, second := open(), open()
	tx, err := first.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL,
		applied_at TIMESTAMP NOT NULL, PRIMARY KEY (component, version))`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- second.Migrate(ctx, "test", []Migration{{Version: 1, Common: `CREATE TABLE t (id BIGINT)`}})
	}()
	// Commit once the second is waiting, on the lock or on the catalog.
	for waiting := 0; waiting == 0; {
		select {
		case err := <-done:
			t.Fatalf("migrate beside a node creating the schema did not wait for it: %v", err)
		default:
		}
		if err := first.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("migrate beside a node creating the schema: %v", err)
	}
}

// TestConfigIdentity: the name a tenant snapshot file records of its
// store follows the database, not how the DSN is spelt nor its password.
func TestConfigIdentity(t *testing.T) {
	id := func(dsn string) string { return Config{Driver: Postgres, DSN: dsn}.Identity() }
	a := id("postgres://mx:one@db.a:5432/mxgrid?sslmode=require")
	for _, same := range []string{"postgres://mx:two@db.a/mxgrid?connect_timeout=5", "host=db.a port=5432 dbname=mxgrid user=mx password=three"} {
		if got := id(same); got != a {
			t.Errorf("Identity(%q) = %q, want %q", same, got, a)
		}
	}
	for _, other := range []string{"postgres://mx:one@db.b:5432/mxgrid", "postgres://mx:one@db.a:5433/mxgrid", "postgres://mx:one@db.a:5432/other"} {
		if got := id(other); got == a {
			t.Errorf("Identity(%q) = %q, the same as another database's", other, got)
		}
	}
	if got := id("postgres://mx:secret@db.a:notaport/mxgrid"); strings.Contains(got, "secret") {
		t.Errorf("Identity of a DSN it cannot parse = %q, with its password", got)
	}
	if got := DefaultConfig().Identity(); got != SQLite {
		t.Errorf("SQLite Identity = %q", got)
	}
}
