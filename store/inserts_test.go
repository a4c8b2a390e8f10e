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
