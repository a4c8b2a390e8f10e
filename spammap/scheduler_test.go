package spammap_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/spammap/spammaptest"
	"github.com/mxgrid/mxgrid/store"
	"github.com/prometheus/client_golang/prometheus"
)

// flag is a leadership that the test moves between nodes.
type flag struct{ atomic.Bool }

func (f *flag) IsLeader() bool { return f.Load() }

type node struct {
	sched  *spammap.Scheduler
	leader *flag
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

// generations counts the generations this node rendered, from its metric.
func (n *node) generations(t *testing.T) int {
	return int(metric(t, n.reg, "mxgrid_map_generation_seconds"))
}

// metric reads a histogram's sample count or a gauge's value.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if h := m.GetHistogram(); h != nil {
			return float64(h.GetSampleCount())
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("%s not registered", name)
	return 0
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(store.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrateMaps(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually polls cond; a deadline, not a timed assertion: it only bounds
// how long a broken scheduler makes the test wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSchedulerLeaderOnly runs three nodes on one store: only the leader
// renders each interval, all nodes serve the same bytes, and when the
// leader dies the next one takes over at the next interval.
func TestSchedulerLeaderOnly(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	cfg := spammap.DefaultConfig()
	cfg.Interval = 400 * time.Millisecond
	src := spammaptest.Corpus{N: 2000, Seed: 7, End: time.Now(), Span: time.Hour}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	var wg sync.WaitGroup
	nodes := make([]*node, 3)
	for i := range nodes {
		n := &node{leader: &flag{}, reg: prometheus.NewRegistry(), done: make(chan struct{})}
		n.sched, err = spammap.NewScheduler(cfg, world, src, st, n.leader, n.reg, log)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
	}
	// Before any generation every node serves the same empty map.
	placeholder := nodes[0].sched.Current()
	if placeholder.Events != 0 || placeholder.ETag != nodes[2].sched.Current().ETag {
		t.Fatal("placeholders differ between nodes")
	}
	nodes[0].leader.Store(true)
	for _, n := range nodes {
		ctx, cancel := context.WithCancel(context.Background())
		n.cancel = cancel
		wg.Go(func() {
			defer close(n.done)
			if err := n.sched.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.cancel()
		}
		wg.Wait()
	})

	sameMap := func(ns ...*node) func() bool {
		return func() bool {
			m := ns[0].sched.Current()
			for _, n := range ns[1:] {
				if n.sched.Current().ETag != m.ETag {
					return false
				}
			}
			return m.Events > 0
		}
	}
	// Three intervals under node 0.
	eventually(t, "node 0 rendered three generations", func() bool { return nodes[0].generations(t) >= 3 })
	eventually(t, "all nodes serve node 0's map", sameMap(nodes...))
	if g1, g2 := nodes[1].generations(t), nodes[2].generations(t); g1 != 0 || g2 != 0 {
		t.Fatalf("followers rendered: node 1 %d, node 2 %d generations", g1, g2)
	}
	if got := metric(t, nodes[2].reg, "mxgrid_map_points"); got != 2000 {
		t.Errorf("follower mxgrid_map_points = %v, want 2000", got)
	}
	eventually(t, "every node serves identical bytes", func() bool { return sameBytes(nodes...) })

	// Kill the leader; leadership moves to node 1.
	nodes[0].cancel()
	<-nodes[0].done
	dead := nodes[0].generations(t)
	before := nodes[1].sched.Current().ETag
	nodes[1].leader.Store(true)
	eventually(t, "node 1 rendered after the leader died", func() bool { return nodes[1].generations(t) >= 1 })
	eventually(t, "survivors serve node 1's map", func() bool {
		return sameMap(nodes[1], nodes[2])() && nodes[2].sched.Current().ETag != before
	})
	if g := nodes[2].generations(t); g != 0 {
		t.Errorf("node 2 rendered %d generations without leading", g)
	}
	if g := nodes[0].generations(t); g != dead {
		t.Errorf("dead node rendered %d more", g-dead)
	}
	eventually(t, "every node serves identical bytes", func() bool { return sameBytes(nodes[1], nodes[2]) })

	// The operator's regenerate works on any node and reaches the others.
	m, err := nodes[2].sched.Regenerate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "node 1 serves the operator's generation", func() bool {
		return !nodes[1].sched.Current().GeneratedAt.Before(m.GeneratedAt)
	})
}

// sameBytes reports whether every node serves byte-identical artefacts in
// every variant, which is what makes their ETags agree. The
// leader renders every 400 ms and followers pick its map up a moment later,
// so callers poll it rather than assert it once.
func sameBytes(ns ...*node) bool {
	views := []spammap.View{{}, {Width: 600, Height: 430, Theme: spammap.Dark}}
	ref := ns[0].sched.Current()
	for _, n := range ns[1:] {
		m := n.sched.Current()
		if m.ETag != ref.ETag || !bytes.Equal(m.JSON, ref.JSON) {
			return false
		}
		for _, v := range views {
			a, _ := m.Page(v)
			b, _ := ref.Page(v)
			if !bytes.Equal(bytes.Join(a, nil), bytes.Join(b, nil)) || !bytes.Equal(bytes.Join(m.SVG(v), nil), bytes.Join(ref.SVG(v), nil)) {
				return false
			}
		}
	}
	return true
}

// gatedMaps holds up the first GetMap after reading what it returns, as a
// slow query over the stored generation would.
type gatedMaps struct {
	*store.Store
	once             sync.Once
	entered, release chan struct{}
}

func (g *gatedMaps) GetMap(ctx context.Context, scope string) (store.MapRecord, bool, error) {
	rec, ok, err := g.Store.GetMap(ctx, scope)
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return rec, ok, err
}

// TestPollDoesNotUndoARegeneration: a generation the operator asks for
// (the API's Regenerate) while the node's poll is loading the stored one
// stays the one served. The poll loaded outside the lock generations take,
// so the generation it had read, older, replaced the new one until the
// next poll, up to a minute on which the node served another map than the
// one the API had answered with.
func TestPollDoesNotUndoARegeneration(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	cfg := spammap.DefaultConfig()
	cfg.Interval = time.Hour // one poll a minute: only the first happens
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	src := spammaptest.Corpus{N: 200, Seed: 7, End: time.Now(), Span: time.Hour}
	other, err := spammap.NewScheduler(cfg, world, src, st, &flag{}, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Regenerate(context.Background()); err != nil {
		t.Fatal(err)
	}

	maps := &gatedMaps{Store: st, entered: make(chan struct{}), release: make(chan struct{})}
	sched, err := spammap.NewScheduler(cfg, world, src, maps, &flag{}, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); sched.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	<-maps.entered

	regenerated := make(chan *spammap.Map, 1)
	go func() {
		m, err := sched.Regenerate(context.Background())
		if err != nil {
			t.Error(err)
		}
		regenerated <- m
	}()
	var m *spammap.Map
	select {
	case m = <-regenerated:
	case <-time.After(2 * time.Second): // waiting for the poll's load, as it should
	}
	close(maps.release)
	if m == nil {
		m = <-regenerated
	}
	// Run returns once its first poll, the one held up, is done.
	cancel()
	<-ran
	if m == nil {
		return
	}
	if got := sched.Current().ETag; got != m.ETag {
		t.Errorf("serving %s after the API's regeneration answered %s", got, m.ETag)
	}
}
