package store

import (
	"context"
	"testing"
	"time"
)

// TestRecentDomainSourcesByID: a scoped map reads a domain's events by id,
// so a name deleted by one tenant and re-created by another starts empty
// for the new owner, on both dialects.
func TestRecentDomainSourcesByID(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Microsecond)
			var evs []StoredEvent
			for i := range 6 {
				e := sampleEvent(i, now.Add(-time.Duration(i)*time.Minute))
				e.Domain = "reused.example"
				e.DomainID = 7 // the previous owner's domain
				e.Country = "BR"
				if i%3 == 0 {
					e.DomainID = 9 // the same name, re-created by another tenant
					e.Country = "NZ"
				}
				evs = append(evs, e)
			}
			if err := s.InsertEvents(ctx, evs); err != nil {
				t.Fatal(err)
			}
			owner := map[int64]string{7: "BR", 9: "NZ"}
			count := func(ids ...int64) (n int) {
				t.Helper()
				var last time.Time
				err := s.RecentDomainSources(ctx, ids, 100, now.Add(-time.Hour), func(e Source) error {
					if e.Country != owner[ids[0]] && (len(ids) < 2 || e.Country != owner[ids[len(ids)-1]]) {
						t.Errorf("event from %s in the map of %v", e.Country, ids)
					}
					if !last.IsZero() && e.Time.After(last) {
						t.Errorf("events of %v not newest first", ids)
					}
					last = e.Time
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
			// A reseller with more domains than a query has parameters:
			// the set is one parameter, and the rows still stream.
			many := []int64{7}
			for id := int64(100); len(many) < 40_000; id++ {
				many = append(many, id)
			}
			if got := count(append(many, 9)...); got != 6 {
				t.Errorf("%d domains: %d events, want 6", len(many)+1, got)
			}
			if got := count(8); got != 0 {
				t.Errorf("unrelated id: %d events, want 0", got)
			}
		})
	}
}
