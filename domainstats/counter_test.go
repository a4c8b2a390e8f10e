package domainstats

import (
	"context"
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
