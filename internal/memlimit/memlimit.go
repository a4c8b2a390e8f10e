// Package memlimit keeps the Go runtime's soft memory limit just above what
// a node can need: its own live heap, the message bytes smtp.memory_budget
// lets it hold, and a margin.
//
// The budget bounds the message bytes in memory, but not the heap: the
// collector lets the heap grow to twice what survived the last collection
// (GOGC=100) before collecting again. When most of what survives is message
// bytes, that doubling is what decides a node's peak: 40 senders of 20 MB
// peaked between 250 and 407 MB with a 192 MiB budget. A soft limit makes
// the collector run earlier only then; for a node whose own heap is large
// (a big tenant set), twice that heap is above the limit's other term and
// the collector paces as it always did.
package memlimit

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// Margin is the room above the live heap and the budget: what the node
// allocates between collections besides budgeted message bytes
// (connections, scan state, batches waiting for the store).
const Margin = 64 << 20

// Limit is the soft memory limit for a node whose last collection found
// live bytes alive, reserved of them (at most) message bytes held against
// a budget of budget bytes. It is never below live plus margin, so the
// collector cannot be driven to run back to back, and never below twice
// the node's own heap, which is what GOGC=100 would allow it.
func Limit(live, reserved, budget, margin int64) int64 {
	own := max(live-reserved, 0)
	return max(2*own, own+budget+margin)
}

// Tuner sets the limit after every collection, when the live heap is
// known.
type Tuner struct {
	// Budget is smtp.memory_budget.
	Budget int64
	// Reserved returns the budget bytes held now.
	Reserved func() int64
	Log      *slog.Logger

	// live and set are the runtime's, replaced in tests.
	live func() int64
	set  func(int64) int64
}

// Run keeps the limit until ctx ends, then puts back the limit it found.
func (t *Tuner) Run(ctx context.Context) error {
	live, set := t.live, t.set
	if live == nil {
		live = liveHeap
	}
	if set == nil {
		set = debug.SetMemoryLimit
	}
	before := set(-1)
	defer set(before)

	collected := make(chan struct{}, 1)
	watchCollections(ctx, collected)
	last := int64(-1)
	for {
		if l := Limit(live(), t.Reserved(), t.Budget, Margin); l != last {
			set(l)
			if t.Log != nil {
				t.Log.Debug("memory limit", "bytes", l)
			}
			last = l
		}
		select {
		case <-ctx.Done():
			return nil
		case <-collected:
		}
	}
}

// watchCollections signals c after each garbage collection until ctx
// ends: an object no one references is collected, and its cleanup arms the
// next one.
func watchCollections(ctx context.Context, c chan<- struct{}) {
	var arm func()
	arm = func() {
		// Big enough to stay out of the tiny allocator, whose blocks are
		// shared and freed late.
		runtime.AddCleanup(new([64]byte), func(struct{}) {
			if ctx.Err() != nil {
				return
			}
			select {
			case c <- struct{}{}:
			default:
			}
			arm()
		}, struct{}{})
	}
	arm()
}

// liveHeap is the heap the last collection found alive.
func liveHeap() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}
