// Package gcfloor keeps the garbage collector from running far more often
// than a node's memory needs. A node with a small live heap (~25 MB: the
// model, a few tenants) collects, under GOGC=100, every ~25 MB allocated:
// at 2,000 messages/s of ~140 KB each that is ten collections a second,
// each marking the whole live heap again. Keep raises the next heap target
// to at least live + headroom; with a large live heap (many tenants, big
// mail in flight) GOGC=100 already gives more and nothing changes. So the
// most it adds to a node's peak heap is headroom bytes, and GOMEMLIMIT,
// when set, still bounds the heap as it always does.
package gcfloor

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// DefaultHeadroom is what a node allows its heap to grow above the live
// heap between collections: measured on the SMTP benchmark (5 KB messages,
// ~25 MB live), 64 MiB cut collections from ~10/s to ~4/s.
const DefaultHeadroom = 64 << 20

const (
	basePercent = 100  // GOGC's default, kept whenever it gives more room
	maxPercent  = 1000 // a near-empty heap must not defer GC indefinitely
	liveMetric  = "/gc/heap/live:bytes"
)

// Keep adjusts the GC percentage after every collection until ctx ends,
// then restores GOGC=100. An operator's GOGC (environment) wins: Keep then
// does nothing. It must run at most once per process (the setting is
// process-wide).
func Keep(ctx context.Context, headroom uint64, log *slog.Logger) {
	if v, ok := os.LookupEnv("GOGC"); ok {
		log.Info("GOGC set, heap headroom floor off", "GOGC", v)
		return
	}
	cycles := make(chan struct{}, 1)
	var stopped atomic.Bool
	watchCycles(cycles, &stopped)
	defer func() {
		stopped.Store(true)
		debug.SetGCPercent(basePercent)
	}()
	sample := []metrics.Sample{{Name: liveMetric}}
	current := basePercent
	for {
		select {
		case <-ctx.Done():
			return
		case <-cycles:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			log.Warn("runtime metric missing, heap headroom floor off", "metric", liveMetric)
			return
		}
		if p := percentFor(sample[0].Value.Uint64(), headroom); p != current {
			debug.SetGCPercent(p)
			current = p
		}
	}
}

// watchCycles signals c after each garbage collection: a cleanup runs once
// the object it is attached to has been collected, and re-arms itself on a
// new object, until stopped.
func watchCycles(c chan<- struct{}, stopped *atomic.Bool) {
	// A pointer-free object under 16 bytes may share a tiny block with
	// others and never be freed alone; this one has its own.
	obj := new([2]*int)
	runtime.AddCleanup(obj, func(struct{}) {
		if stopped.Load() {
			return
		}
		select {
		case c <- struct{}{}:
		default: // the last signal is still unread; one is enough
		}
		watchCycles(c, stopped)
	}, struct{}{})
}

// percentFor is the GC percentage whose heap target is at least live +
// headroom, never below basePercent nor above maxPercent, rounded up to a
// multiple of 10 so that small changes in the live heap do not reset it
// after every cycle.
func percentFor(live, headroom uint64) int {
	if live == 0 {
		return maxPercent
	}
	p := (headroom*100 + live - 1) / live
	p = (p + 9) / 10 * 10
	return int(min(max(p, basePercent), maxPercent))
}
