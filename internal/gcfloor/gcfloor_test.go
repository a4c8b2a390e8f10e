package gcfloor

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, headroom uint64
		want           int
	}{
		{live: 25 * mib, headroom: 64 * mib, want: 260},  // 256 % rounded up to a multiple of 10
		{live: 64 * mib, headroom: 64 * mib, want: 100},  // GOGC=100 already gives the headroom
		{live: 300 * mib, headroom: 64 * mib, want: 100}, // large heaps: never below GOGC's default
		{live: 1 * mib, headroom: 64 * mib, want: 1000},  // capped
		{live: 0, headroom: 64 * mib, want: 1000},
		{live: 30 * mib, headroom: 60 * mib, want: 200},
	} {
		if got := percentFor(tc.live, tc.headroom); got != tc.want {
			t.Errorf("percentFor(%d MiB live, %d MiB headroom) = %d, want %d", tc.live/mib, tc.headroom/mib, got, tc.want)
		}
	}
}

func gcPercent(t *testing.T) uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: liveMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestKeepRaisesAfterCollectionsAndRestores runs Keep for real: after a
// collection the runtime's GC percentage is the one that gives the
// headroom over the live heap, and GOGC=100 is back when Keep stops.
func TestKeepRaisesAfterCollectionsAndRestores(t *testing.T) {
	if v, ok := os.LookupEnv("GOGC"); ok {
		// Keep defers to an operator's GOGC; this test is about its absence.
		os.Unsetenv("GOGC")
		t.Cleanup(func() { os.Setenv("GOGC", v) })
	}
	defer debug.SetGCPercent(debug.SetGCPercent(basePercent))
	const headroom = 512 << 20 // far above this test binary's live heap
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Keep(ctx, headroom, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for gcPercent(t) == basePercent {
		if time.Now().After(deadline) {
			t.Fatal("GC percent still 100 after 10 s of collections")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	got := gcPercent(t)
	if want := percentFor(liveHeap(), headroom); got < basePercent+100 || got > maxPercent || int(got) > want+100 || int(got) < want-100 {
		t.Errorf("GC percent %d, want about %d for a live heap of %d bytes", got, want, liveHeap())
	}
	cancel()
	<-done
	if p := gcPercent(t); p != basePercent {
		t.Errorf("GC percent %d after Keep stopped, want %d", p, basePercent)
	}
}

// TestOperatorGOGCWins: with GOGC in the environment Keep returns at once
// and leaves the setting alone.
func TestOperatorGOGCWins(t *testing.T) {
	t.Setenv("GOGC", "100")
	before := gcPercent(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Keep(context.Background(), 512<<20, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Keep ran with GOGC set")
	}
	runtime.GC()
	runtime.GC()
	if p := gcPercent(t); p != before {
		t.Errorf("GC percent %d with GOGC set by the operator, want it left at %d", p, before)
	}
}
