package periodic

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestEveryTicksWakesAndStops(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		wakes    int
		atLeast  int32
	}{
		{"ticks", 5 * time.Millisecond, 0, 3},
		{"wakes without ticks", time.Hour, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			wake := make(chan struct{})
			var calls atomic.Int32
			done := make(chan struct{})
			go func() {
				defer close(done)
				Every(ctx, tt.interval, wake, func(context.Context) { calls.Add(1) })
			}()
			for range tt.wakes {
				wake <- struct{}{}
			}
			for calls.Load() < tt.atLeast {
				time.Sleep(time.Millisecond)
			}
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Every did not return after its context ended")
			}
			after := calls.Load()
			time.Sleep(3 * tt.interval % time.Second)
			if calls.Load() != after {
				t.Fatal("fn called after Every returned")
			}
		})
	}
}

func TestEveryStopsWhenFnCancels(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls int
	Every(ctx, time.Millisecond, nil, func(context.Context) {
		calls++
		if calls == 2 {
			cancel()
		}
	})
	if calls != 2 {
		t.Fatalf("fn ran %d times, want 2 (it cancelled the loop on the second)", calls)
	}
}
