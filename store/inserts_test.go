package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/tracking"
)

func TestInsertChunks(t *testing.T) {
	for _, tc := range []struct {
		n, per int
		ladder bool
		want   []int
	}{
		{0, 365, true, nil},
		{0, 365, false, nil},
		{1, 365, true, []int{1}},
		{135, 365, false, []int{135}},
		{135, 365, true, []int{128, 4, 2, 1}},
		{365, 365, true, []int{365}},
		{500, 365, false, []int{365, 135}},
		{500, 365, true, []int{365, 128, 4, 2, 1}},
		{1000, 475, true, []int{475, 475, 32, 16, 2}},
		{730, 365, true, []int{365, 365}},
	} {
		got := insertChunks(tc.n, tc.per, tc.ladder)
		if !slices.Equal(got, tc.want) {
			t.Errorf("insertChunks(%d, %d, %v) = %v, want %v", tc.n, tc.per, tc.ladder, got, tc.want)
		}
	}
}

// TestBatchInsertsReuseStatements: batches of every shape the chunking
// makes (one row, a full statement, a full statement and a ladder of
// rests) are stored completely, in order, on both dialects, and a second
// round of the same sizes adds no statement to the cache.
func TestBatchInsertsReuseStatements(t *testing.T) {
	eachDialect(t, (*Store).MigrateTracking, func(t *testing.T, s *Store) {
		ctx := context.Background()
		per := maxParams / trackingColumnCount
		sizes := []int{1, 3, per, per + 1, 500, 2*per + 77}
		now := time.Now().UTC().Truncate(time.Microsecond)
		batch := func(round, size int) []tracking.Record {
			recs := make([]tracking.Record, size)
			for i := range recs {
				recs[i] = tracking.Record{Time: now.Add(time.Duration(i) * time.Microsecond), Node: "n1",
					QueueID: fmt.Sprintf("R%dS%dI%d", round, size, i), Recipient: "a@b.example", Domain: "b.example",
					Status: tracking.StatusDelivered, ReplyCode: 250}
			}
			return recs
		}
		cached := 0
		for round := range 2 {
			for _, size := range sizes {
				if err := s.InsertTracking(ctx, batch(round, size)); err != nil {
					t.Fatalf("round %d, %d rows: %v", round, size, err)
				}
			}
			if round == 0 {
				cached = len(s.inserts.stmts)
			}
		}
		if len(s.inserts.stmts) != cached {
			t.Errorf("the second round prepared %d more statements", len(s.inserts.stmts)-cached)
		}
		for _, size := range sizes {
			for round := range 2 {
				for _, i := range []int{0, size / 2, size - 1} {
					id := fmt.Sprintf("R%dS%dI%d", round, size, i)
					got, _, err := s.SearchTracking(ctx, tracking.Filter{Scope: tracking.Scope{Operator: true}, QueueID: id})
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != 1 || !got[0].Time.Equal(now.Add(time.Duration(i)*time.Microsecond)) {
						t.Fatalf("queue id %s: %+v", id, got)
					}
				}
			}
		}
		var rows int
		if err := s.DB.QueryRowContext(ctx, "SELECT count(*) FROM message_log").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, size := range sizes {
			want += 2 * size
		}
		if rows != want {
			t.Errorf("%d rows stored, want %d", rows, want)
		}
	})
}

// TestFailedBatchStoresNothing: a row that breaks a constraint in a later
// statement of a batch fails the batch and leaves none of it stored (on
// SQLite the statement rolls the whole transaction back, OR ROLLBACK), and
// the store takes the next batch at once.
func TestFailedBatchStoresNothing(t *testing.T) {
	eachDialect(t, func(*Store, context.Context) error { return nil }, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.DB.ExecContext(ctx, `CREATE TABLE batch_probe (k BIGINT NOT NULL UNIQUE)`); err != nil {
			t.Fatal(err)
		}
		per := maxParams / 1
		insert := func(keys []int64) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return s.insertRows(ctx, "batch_probe", "k", 1, len(keys), func(args []any, i int) []any { return append(args, keys[i]) })
		}
		keys := make([]int64, per+3)
		for i := range keys {
			keys[i] = int64(i)
		}
		keys[per+2] = 5 // the ladder's last statement repeats a key of the first
		if err := insert(keys); err == nil {
			t.Fatal("a batch with a duplicate key was stored")
		}
		count := func() (n int) {
			if err := s.DB.QueryRowContext(ctx, "SELECT count(*) FROM batch_probe").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count(); n != 0 {
			t.Fatalf("%d rows of the failed batch stored", n)
		}
		if err := insert([]int64{1, 2, 3}); err != nil {
			t.Fatalf("the next batch: %v", err)
		}
		if n := count(); n != 3 {
			t.Fatalf("%d rows stored, want 3", n)
		}
	})
}
