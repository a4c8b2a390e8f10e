package store

import (
	"context"
	"testing"
	"time"
)

// TestRecentDomainEventsByID: a scoped map reads a domain's events by id,
// so a name deleted by one tenant and re-created by another starts empty
// for the new owner, on both dialects.
func TestRecentDomainEventsByID(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) *Store
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Microsecond)
			var evs []StoredEvent
			for i := range 6 {
				e := sampleEvent(i, now.Add(-time.Duration(i)*time.Minute))
				e.Domain = "reused.example"
				e.DomainID = 7 // the previous owner's domain
				if i%3 == 0 {
					e.DomainID = 9 // the same name, re-created by another tenant
				}
				evs = append(evs, e)
			}
			if err := s.InsertEvents(ctx, evs); err != nil {
				t.Fatal(err)
			}
			count := func(ids ...int64) (n int) {
				t.Helper()
				err := s.RecentDomainEvents(ctx, ids, 100, now.Add(-time.Hour), func(e StoredEvent) error {
					if e.DomainID != ids[0] && (len(ids) < 2 || e.DomainID != ids[1]) {
						t.Errorf("event of domain %d in the map of %v", e.DomainID, ids)
					}
					n++
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			if got := count(9); got != 2 {
				t.Errorf("new owner's map: %d events, want its 2", got)
			}
			if got := count(7); got != 4 {
				t.Errorf("old owner's map: %d events, want 4", got)
			}
			if got := count(7, 9); got != 6 {
				t.Errorf("both: %d events, want 6", got)
			}
			if got := count(8); got != 0 {
				t.Errorf("unrelated id: %d events, want 0", got)
			}
		})
	}
}
