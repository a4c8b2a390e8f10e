package memlimit

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name                   string
		live, reserved, budget int64
		want                   int64
	}{
		{"idle small node: its heap, the budget and the margin", 40 * mib, 0, 192 * mib, 296 * mib},
		{"busy small node: message bytes are not its own heap", 200 * mib, 160 * mib, 192 * mib, 296 * mib},
		{"big tenant set: twice its heap, as GOGC=100", 800 * mib, 10 * mib, 192 * mib, 1580 * mib},
		{"reservation above the live heap: counts as none of its own", 100 * mib, 150 * mib, 192 * mib, 256 * mib},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Limit(c.live, c.reserved, c.budget, Margin)
			if got != c.want {
				t.Errorf("Limit(%d MiB live, %d MiB reserved, %d MiB budget) = %d MiB, want %d MiB",
					c.live/mib, c.reserved/mib, c.budget/mib, got/mib, c.want/mib)
			}
			if c.reserved <= c.budget && got < c.live+Margin {
				t.Errorf("limit %d MiB leaves less than the margin above %d MiB live", got/mib, c.live/mib)
			}
		})
	}
}

// TestTunerFollowsCollections: the limit is set at once, set again after a
// collection that found a different live heap, and the limit found at the
// start is put back when the tuner stops.
func TestTunerFollowsCollections(t *testing.T) {
	const mib = 1 << 20
	var live atomic.Int64
	live.Store(40 * mib)
	sets := make(chan int64, 16)
	tuner := &Tuner{
		Budget:   192 * mib,
		Reserved: func() int64 { return 0 },
		live:     live.Load,
		set: func(l int64) int64 {
			if l >= 0 {
				sets <- l
			}
			return 1 << 40
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tuner.Run(ctx) }()
	next := func(what string) int64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case l := <-sets:
				return l
			case <-time.After(50 * time.Millisecond):
				runtime.GC()
			}
		}
		t.Fatalf("no limit set %s", what)
		return 0
	}
	if got := next("at start"); got != 296*mib {
		t.Errorf("first limit %d MiB, want 296", got/mib)
	}
	live.Store(800 * mib)
	if got := next("after a collection"); got != 1600*mib {
		t.Errorf("limit after the heap grew: %d MiB, want 1600", got/mib)
	}
	live.Store(100 * mib)
	if got := next("after a later collection"); got != 356*mib {
		t.Errorf("limit after the heap shrank: %d MiB, want 356", got/mib)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := next("when stopping"); got != 1<<40 {
		t.Errorf("limit left at %d, want the one found (%d)", got, int64(1<<40))
	}
}
