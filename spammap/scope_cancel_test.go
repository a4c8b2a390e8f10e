package spammap_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/spammap"
	"github.com/prometheus/client_golang/prometheus"
)

// gatedEvents holds each scoped read until release is closed, or its
// context ends.
type gatedEvents struct {
	calls   atomic.Int32
	started chan struct{}
	release chan struct{}
}

func (g *gatedEvents) RecentEvents(context.Context, int, time.Time, func(spammap.Event) error) error {
	return nil
}

func (g *gatedEvents) RecentDomainEvents(ctx context.Context, _ []int64, _ int, _ time.Time, _ func(spammap.Event) error) error {
	if g.calls.Add(1) == 1 {
		close(g.started)
	}
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestScopedRenderOutlivesItsFirstViewer: the anonymous client whose
// request started a white-label map's render may leave at once; the
// render goes on, is stored, and serves the next viewers, so nobody can
// make the node read a reseller's events again and again by opening
// /map?reseller=SLUG and hanging up (before, each hang-up cancelled the
// read, stored nothing, and the next request read everything again; the
// viewers waiting on it got 503).
func TestScopedRenderOutlivesItsFirstViewer(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	src := &gatedEvents{started: make(chan struct{}), release: make(chan struct{})}
	sched, err := spammap.NewScheduler(spammap.DefaultConfig(), world, src, openStore(t), &flag{}, prometheus.NewRegistry(),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	sc := spammap.Scope{Key: "reseller:r", DomainIDs: []int64{1}, Brand: spammap.Brand{Name: "R"}}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := sched.Scoped(ctx, sc)
		first <- err
	}()
	<-src.started
	cancel()
	select {
	case err := <-first:
		if err == nil {
			t.Fatal("the viewer that left got a map")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the viewer that left is still waiting for the render")
	}
	close(src.release)
	m, err := sched.Scoped(context.Background(), sc)
	if err != nil || m == nil {
		t.Fatalf("the next viewer: %v", err)
	}
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("the events were read %d times, want once", n)
	}
}
