package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestAFrozenNodeLetsGoOfItsLocks: a node frozen inside one of its
// transactions (SIGSTOP, a paused VM, a host gone without closing its
// connections) leaves its PostgreSQL session idle in that transaction,
// holding what it locked: the config version's row, a domain's hold lock.
// Every other node's tenant writes, and holds of that domain, waited on it
// and failed (the API's 503) for as long as it stayed frozen: for ever
// under SIGSTOP, seen with a real node frozen amid API writes. The server
// now ends such a session, and the writes go through again.
func TestAFrozenNodeLetsGoOfItsLocks(t *testing.T) {
	dsn := testenv.PostgresDB(t)
	open := func(timeout time.Duration) *Store {
		s, err := Open(Config{Driver: Postgres, DSN: dsn, Timeout: timeout}, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	ctx := context.Background()
	audit := admin.AuditEntry{Actor: "test", Action: "create", Object: "reseller"}
	if _, err := NewTenants(open(30*time.Second)).CreateReseller(ctx, &tenant.Reseller{Name: "R0", Slug: "r0"}, audit); err != nil {
		t.Fatal(err)
	}
	// The frozen node's write got as far as the config version, and no
	// further: its transaction stays open, nothing more said on it.
	frozen := open(500 * time.Millisecond)
	tx, err := frozen.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE tenant_version SET version = version + 1 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}

	ts := NewTenants(open(time.Second))
	deadline := time.Now().Add(10 * time.Second)
	for try := 1; ; try++ {
		// A name of its own each time: a try that timed out as it
		// committed holds the last one.
		_, err := ts.CreateReseller(ctx, &tenant.Reseller{Name: fmt.Sprint("R", try), Slug: fmt.Sprint("r", try)}, audit)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other node's writes still fail behind the frozen node's transaction: %v", err)
		}
	}
}
