package batchq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/health"
)

// store fails its first failFor writes, then keeps what it is given.
type store struct {
	mu      sync.Mutex
	failFor int
	got     []string
}

func (s *store) write(_ context.Context, batch []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failFor > 0 {
		s.failFor--
		return errors.New("store down")
	}
	s.got = append(s.got, batch...)
	return nil
}

func (s *store) stored() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// TestRetriedBatchIsPreparedOnce: a batch whose write failed is written
// again as it was prepared (events are geolocated once), in order, and the
// health registry is degraded only while the store fails.
func TestRetriedBatchIsPreparedOnce(t *testing.T) {
	st := &store{failFor: 2}
	h := health.New()
	var prepared []int
	prepare := func(_ context.Context, in []int) []string {
		prepared = append(prepared, len(in))
		out := make([]string, len(in))
		for i, v := range in {
			out[i] = strings.Repeat("x", v)
		}
		return out
	}
	q, err := New(Config{Subsystem: "t", Buffer: 10, BatchSize: 3, FlushInterval: 5 * time.Millisecond, ShutdownTimeout: time.Second},
		prepare, st.write, nil, nil, nil, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	for i := 1; i <= 3; i++ {
		q.Put(i)
	}
	sawDegraded := false
	deadline := time.Now().Add(5 * time.Second)
	for len(st.stored()) < 3 {
		if level, _ := h.Report(); level == health.Degraded {
			sawDegraded = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored %v", st.stored())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(st.stored(), ","); got != "x,xx,xxx" {
		t.Fatalf("stored %q", got)
	}
	if len(prepared) != 1 {
		t.Fatalf("prepared %d times (%v), want once", len(prepared), prepared)
	}
	if !sawDegraded {
		t.Error("health never degraded while the store failed")
	}
	if level, _ := h.Report(); level != health.OK {
		t.Errorf("health after recovery: %v", level)
	}
}

func TestConfigRequired(t *testing.T) {
	id := func(_ context.Context, in []int) []int { return in }
	w := func(context.Context, []int) error { return nil }
	for _, cfg := range []Config{
		{},
		{Subsystem: "t", Buffer: 1, BatchSize: 1, FlushInterval: time.Second},
		{Subsystem: "t", Buffer: 0, BatchSize: 1, FlushInterval: time.Second, ShutdownTimeout: time.Second},
	} {
		if _, err := New(cfg, id, w, nil, nil, nil, nil); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// TestWakeUpWritesFullBatchesOnly: a full buffer wakes the writer, which
// writes full batches and leaves a smaller rest for the tick (a commit
// costs about the same for a few rows as for a full batch); shutdown
// writes the rest.
func TestWakeUpWritesFullBatchesOnly(t *testing.T) {
	var (
		mu      sync.Mutex
		batches []int
	)
	written := make(chan struct{}, 10)
	write := func(_ context.Context, batch []int) error {
		mu.Lock()
		batches = append(batches, len(batch))
		mu.Unlock()
		written <- struct{}{}
		return nil
	}
	id := func(_ context.Context, in []int) []int { return in }
	// The tick never comes during the test: only the wake-up writes.
	q, err := New(Config{Subsystem: "t", Buffer: 100, BatchSize: 4, FlushInterval: time.Hour, ShutdownTimeout: time.Second},
		id, write, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 11 {
		q.Put(i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	for range 2 {
		select {
		case <-written:
		case <-time.After(5 * time.Second):
			t.Fatal("the wake-up wrote nothing")
		}
	}
	select {
	case <-written:
		t.Fatalf("a partial batch was written on the wake-up (batches %v)", batches)
	case <-time.After(100 * time.Millisecond):
	}
	if n := q.Len(); n != 3 {
		t.Errorf("%d records left for the tick, want 3", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(batches) != "[4 4 3]" {
		t.Errorf("batches %v, want [4 4 3]", batches)
	}
}
