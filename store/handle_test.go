package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestHandleTellsBugsFromOutages: Open does not connect, so an unreachable
// database is no error until used; then every kind of method (events, maps,
// statistics, sessions, tenants) answers ErrUnavailable for an outage and
// the wrapped cause, without ErrUnavailable, for a bug.
func TestHandleTellsBugsFromOutages(t *testing.T) {
	ctx := context.Background()
	down, err := Open(Config{Driver: Postgres, DSN: "postgres://u@127.0.0.1:1/x?connect_timeout=1", Timeout: 2 * time.Second}, "")
	if err != nil {
		t.Fatalf("Open of an unreachable database: %v, want a handle", err)
	}
	defer down.Close()
	closed := openSQLite(t)
	closed.Close()
	// No domain_stats nor maps table: the queries are wrong for this schema.
	unmigrated := openSQLite(t)

	calls := map[string]func(s *Store) error{
		"CountEvents": func(s *Store) error { _, err := s.CountEvents(ctx); return err },
		"DomainCounts": func(s *Store) error {
			_, err := s.DomainCounts(ctx, 1, time.Now())
			return err
		},
		"GetMap":     func(s *Store) error { _, _, err := s.GetMap(ctx, "world"); return err },
		"GetSession": func(s *Store) error { _, err := s.PanelSessions().GetSession(ctx, "id"); return err },
		"Load":       func(s *Store) error { _, err := NewTenants(s).Load(ctx); return err },
	}
	tests := []struct {
		name        string
		st          *Store
		unavailable bool
		skip        map[string]bool // calls that succeed on this store
	}{
		{"unreachable", down, true, nil},
		{"closed", closed, true, nil},
		{"schema bug", unmigrated, false, map[string]bool{"CountEvents": true, "Load": true}},
	}
	for _, tt := range tests {
		for name, call := range calls {
			if tt.skip[name] {
				continue
			}
			err := call(tt.st)
			if err == nil {
				t.Errorf("%s %s: no error", tt.name, name)
				continue
			}
			if got := errors.Is(err, ErrUnavailable); got != tt.unavailable {
				t.Errorf("%s %s: %v; ErrUnavailable %v, want %v", tt.name, name, err, got, tt.unavailable)
			}
			if !hasCause(err) {
				t.Errorf("%s %s: %v carries no cause", tt.name, name, err)
			}
		}
	}
}

// hasCause reports whether err wraps an error besides ErrUnavailable.
func hasCause(err error) bool {
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if e != ErrUnavailable {
				return true
			}
		}
	case interface{ Unwrap() error }:
		return u.Unwrap() != nil
	}
	return false
}
