package store

import (
	"context"
	"errors"
	"testing"

	"github.com/mxgrid/mxgrid/tenant"
)

// TestMapErrTellsBugsFromOutages: a wrong query is a bug (500), not "the
// database is unavailable" (503); a database that cannot serve is.
func TestMapErrTellsBugsFromOutages(t *testing.T) {
	s := openSQLite(t)
	ctx := context.Background()

	_, err := s.DB.ExecContext(ctx, `SELEKT 1`)
	if err == nil {
		t.Fatal("a syntax error ran")
	}
	if got := mapErr(err, "probe"); errors.Is(got, tenant.ErrUnavailable) || !errors.Is(got, err) {
		t.Errorf("syntax error mapped to %v: want a wrapped bug, not ErrUnavailable", got)
	}
	_, err = s.DB.ExecContext(ctx, `SELECT no_such_column FROM events`)
	if got := mapErr(err, "probe"); errors.Is(got, tenant.ErrUnavailable) {
		t.Errorf("schema mismatch mapped to %v, want a bug", got)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.DB.ExecContext(cctx, `SELECT 1`)
	if got := mapErr(err, "probe"); !errors.Is(got, tenant.ErrUnavailable) {
		t.Errorf("canceled query mapped to %v, want ErrUnavailable", got)
	}
	s.Close()
	_, err = s.DB.ExecContext(ctx, `SELECT 1`)
	if got := mapErr(err, "probe"); !errors.Is(got, tenant.ErrUnavailable) {
		t.Errorf("closed database mapped to %v, want ErrUnavailable", got)
	}
}
