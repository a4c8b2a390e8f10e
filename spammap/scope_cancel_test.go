package spammap_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/store"
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
	src, sched := gatedScheduler(t)
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

// TestScopedRendersBoundedPerNode: a node renders at most two scoped maps
// at once. Renders outlive their viewers (above), so without the bound
// anyone could open /map?customer=KEY for every customer, hang up, and
// have the node stream each one's events at once over the store's shared
// connections. A third scope waits, then is refused (ErrBusy) without
// reading anything; a viewer of a scope in flight joins its render; once
// a render ends, the next scope renders.
func TestScopedRendersBoundedPerNode(t *testing.T) {
	src, sched := gatedScheduler(t)
	scope := func(key string) spammap.Scope {
		return spammap.Scope{Key: key, DomainIDs: []int64{1}, Brand: spammap.Brand{Name: key}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	for _, key := range []string{"customer:a", "customer:b"} {
		go sched.Scoped(ctx, scope(key))
	}
	deadline := time.Now().Add(10 * time.Second)
	for src.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d renders started, want 2", src.calls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	cancel() // the viewers leave; the renders go on and keep their places
	third, cancelThird := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelThird()
	if _, err := sched.Scoped(third, scope("customer:c")); !errors.Is(err, spammap.ErrBusy) {
		t.Fatalf("a third scope while two render: %v, want ErrBusy", err)
	}
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("the events were read %d times, want 2 (the refused scope reads nothing)", n)
	}
	joined := make(chan error, 1)
	go func() {
		_, err := sched.Scoped(context.Background(), scope("customer:a"))
		joined <- err
	}()
	close(src.release)
	if err := <-joined; err != nil {
		t.Fatalf("a viewer of a scope in flight: %v", err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := sched.Scoped(context.Background(), scope("customer:c"))
		if err == nil {
			break
		}
		if !errors.Is(err, spammap.ErrBusy) || time.Now().After(deadline) {
			t.Fatalf("the third scope after the renders: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if n := src.calls.Load(); n != 3 {
		t.Fatalf("the events were read %d times, want 3", n)
	}
}

// gatedScheduler is a scheduler whose event reads wait for src.release.
func gatedScheduler(t *testing.T) (*gatedEvents, *spammap.Scheduler) {
	t.Helper()
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
	return src, sched
}

// gatedLoads holds each GetMap until release is closed, counting them.
type gatedLoads struct {
	spammap.MapStore
	loads   atomic.Int32
	release chan struct{}
}

func (g *gatedLoads) GetMap(ctx context.Context, scope string) (store.MapRecord, bool, error) {
	g.loads.Add(1)
	select {
	case <-g.release:
		return g.MapStore.GetMap(ctx, scope)
	case <-ctx.Done():
		return store.MapRecord{}, false, ctx.Err()
	}
}

// TestScopedLoadsBoundedPerNode: a node reads at most MaxScopedLoads
// stored white-label maps from the store at once. A node holds 256 in
// memory; past that it forgets them all, so anyone cycling through more
// scopes (customer maps are embedded on customers' sites, reseller slugs
// are their names) made every view, a HEAD or a 304 included, read a
// whole map (JSON, drawing and page, 150 KB and up) over the store's
// connections, which the mail path shares, as many at once as requests
// came. The loads past the bound wait, then are refused (ErrBusy).
func TestScopedLoadsBoundedPerNode(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	quiet := slog.New(slog.DiscardHandler)
	scope := func(i int) spammap.Scope {
		key := fmt.Sprintf("customer:k%d", i)
		return spammap.Scope{Key: key, DomainIDs: []int64{1}, Brand: spammap.Brand{Name: key}}
	}
	n := spammap.MaxScopedLoads + 1
	noEvents := &gatedEvents{started: make(chan struct{}), release: make(chan struct{})}
	close(noEvents.release)
	// Rendered and stored this period by another node.
	other, err := spammap.NewScheduler(spammap.DefaultConfig(), world, noEvents, st, &flag{}, prometheus.NewRegistry(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := other.Scoped(context.Background(), scope(i)); err != nil {
			t.Fatal(err)
		}
	}
	gated := &gatedLoads{MapStore: st, release: make(chan struct{})}
	sched, err := spammap.NewScheduler(spammap.DefaultConfig(), world, noEvents, gated, &flag{}, prometheus.NewRegistry(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	for i := range n - 1 {
		go sched.Scoped(ctx, scope(i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for gated.loads.Load() < int32(n-1) {
		if time.Now().After(deadline) {
			t.Fatalf("%d loads started, want %d", gated.loads.Load(), n-1)
		}
		time.Sleep(time.Millisecond)
	}
	cancel() // the viewers leave; the loads keep their places
	last, cancelLast := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelLast()
	if _, err := sched.Scoped(last, scope(n-1)); !errors.Is(err, spammap.ErrBusy) {
		t.Fatalf("one more stored scope while %d load: %v, want ErrBusy", n-1, err)
	}
	if got := gated.loads.Load(); got != int32(n-1) {
		t.Fatalf("%d loads, want %d (the refused scope reads nothing)", got, n-1)
	}
	close(gated.release)
	deadline = time.Now().Add(10 * time.Second)
	for {
		m, err := sched.Scoped(context.Background(), scope(n-1))
		if err == nil {
			if m.Scope != scope(n-1).Key {
				t.Fatalf("got the map of %q", m.Scope)
			}
			break
		}
		if !errors.Is(err, spammap.ErrBusy) || time.Now().After(deadline) {
			t.Fatalf("the last scope after the loads: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}
