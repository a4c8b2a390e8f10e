package spammap_test

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/spammap/spammaptest"
)

// BenchmarkGenerate aggregates and renders the map from a streamed corpus,
// as the leader does each interval (minus the database scan). Besides time
// it reports peak-heap-MB: the highest live heap seen while generating,
// sampled every millisecond, which is what the 200 MB budget is about.
//
//	go test -run ^$ -bench Generate -benchtime 3x ./spammap
func BenchmarkGenerate(b *testing.B) {
	world, err := spammap.LoadWorld()
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		n    int
	}{{"250k", 250_000}, {"5M", 5_000_000}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := spammap.DefaultConfig()
			cfg.Points = tc.n
			end := time.Date(2026, 3, 13, 10, 0, 0, 0, time.UTC)
			src := spammaptest.Corpus{N: tc.n, Seed: 1, End: end, Span: 24 * time.Hour}
			benchGenerate(b, world, func() (*spammap.Aggregate, error) {
				return spammap.Collect(context.Background(), src, cfg, spammap.GlobalScope, end, world)
			})
		})
	}
}

// sampleHeap watches the live heap until the returned func is called, which
// returns the maximum seen.
// benchGenerate times collect and the rendering of what it aggregated,
// and reports the peak heap.
func benchGenerate(b *testing.B, world *spammap.World, collect func() (*spammap.Aggregate, error)) {
	runtime.GC()
	peak := sampleHeap(b)
	b.ResetTimer()
	for b.Loop() {
		agg, err := collect()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := spammap.Render(world, agg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(peak()/(1<<20), "peak-heap-MB")
}

func sampleHeap(b *testing.B) func() float64 {
	b.Helper()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var (
		mu   sync.Mutex
		peak uint64
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			mu.Lock()
			peak = max(peak, s[0].Value.Uint64())
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return float64(peak)
	}
}
