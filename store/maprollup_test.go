package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// rollupRows lists the rollup's rows that count something, as text, in
// key order: pruning leaves emptied rows until their hour or day is gone,
// and a negative count is always wrong.
func rollupRows(t *testing.T, s *Store) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for _, q := range []string{
		`SELECT domain_id, hour_us, n FROM map_hours`,
		`SELECT domain_id, hour_us, cell_lat, cell_lon, country, n, sum_lat, sum_lon, newest_us, newest_id, country_name, city FROM map_cells`,
		`SELECT domain_id, day_us, net, n, newest_us, newest_id, country, asn, as_org FROM map_nets`,
	} {
		rows, err := s.DB.QueryContext(ctx, q+` WHERE n <> 0`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(q[:20], vals))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	slices.Sort(out)
	return out
}

// TestRollupPrune: pruning at boundaries inside hours and days, with late
// batches before and after the boundary, leaves the rollup exactly the
// rollup of the events left (as a rebuild computes it), and drops the rows
// it emptied once their hour (cells) or day (networks) is gone.
func TestRollupPrune(t *testing.T) {
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(9, 9))
			base := time.Now().UTC().Truncate(24 * time.Hour)
			at := func(hours, minutes int) []StoredEvent {
				evs := make([]StoredEvent, 30)
				for i := range evs {
					evs[i] = spreadEvent(rng, base)
					evs[i].Time = base.Add(time.Duration(hours)*time.Hour + time.Duration(minutes)*time.Minute)
				}
				return evs
			}
			insert := func(evs ...[]StoredEvent) {
				for _, b := range evs {
					if err := s.InsertEvents(ctx, b); err != nil {
						t.Fatal(err)
					}
				}
			}
			prune := func(before time.Time) {
				if _, err := s.PruneEvents(ctx, before); err != nil {
					t.Fatal(err)
				}
			}
			check := func(step string) {
				t.Helper()
				got := rollupRows(t, s)
				if err := s.RebuildMapRollup(ctx); err != nil {
					t.Fatal(err)
				}
				if want := rollupRows(t, s); !slices.Equal(got, want) {
					t.Fatalf("%s: rollup differs from its events'\n got %s\nwant %s", step, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			}
			insert(at(-30, 10), at(-26, 50), at(-25, 10), at(-24, 5), at(-3, 10), at(0, 5))
			prune(base.Add(-25*time.Hour - 30*time.Minute)) // inside hour -26, day -2
			check("first prune")
			insert(at(-26, 20), at(-28, 0), at(-26, 59))    // late: one before the boundary
			prune(base.Add(-24*time.Hour - 30*time.Minute)) // inside hour -25
			check("second prune")
			prune(base.Add(-2 * time.Hour)) // every hour of yesterday gone
			check("third prune")
			for _, q := range []string{`SELECT COUNT(*) FROM map_hours WHERE n = 0`, `SELECT COUNT(*) FROM map_cells WHERE n = 0`,
				`SELECT COUNT(*) FROM map_nets WHERE n = 0`} {
				var n int
				if err := s.DB.QueryRowContext(ctx, q).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Errorf("%s: %d, want 0", q, n)
				}
			}
		})
	}
}

// TestRollupRebuildSteps: a rebuild in small steps, with batches (recent
// and late) and prunes landing between the steps, ends with the rollup a
// rebuild in one go computes; until then the rollup says it is not ready.
func TestRollupRebuildSteps(t *testing.T) {
	defer func(n int) { rebuildStepEvents = n }(rebuildStepEvents)
	rebuildStepEvents = 7
	for _, tc := range dialects {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(4, 4))
			batch := func(at time.Time) []StoredEvent {
				evs := make([]StoredEvent, 1+rng.IntN(15))
				for i := range evs {
					evs[i] = spreadEvent(rng, at)
				}
				return evs
			}
			now := time.Now().UTC()
			for range 10 {
				if err := s.InsertEvents(ctx, batch(now.Add(-time.Duration(rng.IntN(48))*time.Hour))); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.restartRollup(ctx); err != nil {
				t.Fatal(err)
			}
			ready := func() bool {
				snap, err := s.OpenMapSnapshot(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer snap.Close()
				_, _, ok, err := snap.Hours(ctx, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			for i := 0; ; i++ {
				// Ready only once a step (this one or an insert's) finished.
				wasReady := ready()
				done, err := s.rebuildStep(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if wasReady && !done {
					t.Fatal("rollup ready while its rebuild runs")
				}
				if done {
					break
				}
				// Each insert also takes a step of its own.
				if err := s.InsertEvents(ctx, batch(now.Add(-time.Duration(rng.IntN(48))*time.Hour))); err != nil {
					t.Fatal(err)
				}
				// Prunes reach past the cursor: what they delete there the
				// rollup never counted.
				if i%4 == 1 {
					if _, err := s.PruneEvents(ctx, now.Add(-time.Duration(30-2*i)*time.Hour-17*time.Minute)); err != nil {
						t.Fatal(err)
					}
				}
			}
			if !ready() {
				t.Fatal("rollup not ready after its rebuild")
			}
			got := rollupRows(t, s)
			if err := s.RebuildMapRollup(ctx); err != nil {
				t.Fatal(err)
			}
			if want := rollupRows(t, s); !slices.Equal(got, want) {
				t.Fatalf("rollup after a stepped rebuild differs from its events'\n got %s\nwant %s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
