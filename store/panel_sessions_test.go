package store

import (
	"context"
	"testing"
	"time"
)

// openPanelSessions is a fresh store's migrated session table.
func openPanelSessions(t *testing.T, open func(testing.TB) *Store) *PanelSessions {
	t.Helper()
	s := open(t)
	if err := s.MigratePanelSessions(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s.PanelSessions()
}

// TestPanelSessionUpdateDoesNotResurrect: a node writing back a session it
// read before another node deleted it (a logout) must find no row and
// leave none, while a live session is rewritten.
func TestPanelSessionUpdateDoesNotResurrect(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			ps := openPanelSessions(t, d.open)
			later := time.Now().Add(time.Hour)
			for _, tc := range []struct {
				id      string
				deleted bool
				want    string
			}{
				{"live", false, "v2"},
				{"logged-out", true, ""},
			} {
				if err := ps.PutSession(ctx, tc.id, "user:1", []byte("v1"), later, 20); err != nil {
					t.Fatal(err)
				}
				if tc.deleted {
					if err := ps.DeleteSession(ctx, tc.id); err != nil {
						t.Fatal(err)
					}
				}
				ok, err := ps.UpdateSession(ctx, tc.id, []byte("v2"), later)
				if err != nil {
					t.Fatal(err)
				}
				if ok != !tc.deleted {
					t.Errorf("%s: UpdateSession = %v, want %v", tc.id, ok, !tc.deleted)
				}
				got, err := ps.GetSession(ctx, tc.id)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tc.want {
					t.Errorf("%s: session after update = %q, want %q", tc.id, got, tc.want)
				}
			}
		})
	}
}

// TestPanelSessionsKeptPerOwner: putting a session ends its owner's oldest
// beyond keep, never the new one nor another owner's.
func TestPanelSessionsKeptPerOwner(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			ps := openPanelSessions(t, d.open)
			later := time.Now().Add(time.Hour)
			put := func(id, owner string) {
				t.Helper()
				if err := ps.PutSession(ctx, id, owner, []byte(id), later, 3); err != nil {
					t.Fatal(err)
				}
			}
			put("b1", "user:2")
			for _, id := range []string{"a1", "a2", "a3", "a4", "a5"} {
				put(id, "user:1")
			}
			for id, want := range map[string]bool{"a1": false, "a2": false, "a3": true, "a4": true, "a5": true, "b1": true} {
				got, err := ps.GetSession(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if (got != nil) != want {
					t.Errorf("session %s kept = %v, want %v", id, got != nil, want)
				}
			}
		})
	}
}
