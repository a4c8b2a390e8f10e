package domainstats

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/store"
)

type fakeSink struct{ rows []store.DomainHour }

func (f *fakeSink) AddDomainStats(_ context.Context, rows []store.DomainHour) error {
	f.rows = append(f.rows, rows...)
	return nil
}

func (f *fakeSink) PruneDomainStats(context.Context, time.Time) error { return nil }

// Outcomes the panel does not count leave nothing to write: no all-zero
// rows upserted per domain and hour at every flush.
func TestUncountedOutcomesWriteNothing(t *testing.T) {
	sink := &fakeSink{}
	c := New(sink, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.Count(7, "relay_permfail")
	c.Count(7, "too_large")
	c.Flush(context.Background())
	if len(sink.rows) != 0 {
		t.Fatalf("flushed %+v for uncounted outcomes", sink.rows)
	}
	c.Count(7, "delivered")
	c.Count(7, "rejected_virus")
	c.Flush(context.Background())
	if len(sink.rows) != 1 || sink.rows[0].Accepted != 1 || sink.rows[0].Virus != 1 {
		t.Fatalf("flushed %+v, want one row with one accepted and one virus", sink.rows)
	}
}

// failingSink fails every write once it has taken ok of them, and keeps
// the size of each write it was asked for.
type failingSink struct {
	fakeSink
	ok     int
	writes []int
}

func (f *failingSink) AddDomainStats(ctx context.Context, rows []store.DomainHour) error {
	f.writes = append(f.writes, len(rows))
	if len(f.writes) > f.ok {
		return errors.New("store down")
	}
	return f.fakeSink.AddDomainStats(ctx, rows)
}

// TestBacklogIsWrittenInBoundedWrites: each counter row is an upsert, and
// a flush wrote all of them in one transaction within the store's
// timeout. A backlog (a store down for hours under many domains: a row
// per domain and hour) grew past what one transaction writes in that
// time, so every later flush failed, for good, while the backlog went on
// growing. Rows go in writes of at most maxRowsPerWrite; what a failed
// write leaves is kept, and written once, whole, by a later flush.
func TestBacklogIsWrittenInBoundedWrites(t *testing.T) {
	const domains = 2*maxRowsPerWrite + 1
	sink := &failingSink{ok: 1}
	c := New(sink, time.Minute, slog.New(slog.DiscardHandler))
	for d := range domains {
		c.Count(int64(d+1), "delivered")
		c.Count(int64(d+1), "delivered")
	}
	c.Flush(context.Background())
	for _, n := range sink.writes {
		if n > maxRowsPerWrite {
			t.Fatalf("writes of %v rows, want at most %d each", sink.writes, maxRowsPerWrite)
		}
	}
	if len(sink.rows) != maxRowsPerWrite {
		t.Fatalf("first flush stored %d rows, want the first write's %d", len(sink.rows), maxRowsPerWrite)
	}
	sink.ok = len(sink.writes) + 10 // the store is back
	c.Flush(context.Background())
	sums := map[int64]int64{}
	for _, r := range sink.rows {
		sums[r.DomainID] += r.Accepted
	}
	if len(sums) != domains {
		t.Fatalf("%d domains stored, want %d", len(sums), domains)
	}
	for d, n := range sums {
		if n != 2 {
			t.Fatalf("domain %d: %d accepted stored, want 2", d, n)
		}
	}
}
