package bytebudget

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestReserveNeverOverdraws: many goroutines reserving at once never hold
// more than the limit together, and what they release comes back.
func TestReserveNeverOverdraws(t *testing.T) {
	b := New(1000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if b.Reserve(7) {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if b.Used() != int64(7*granted) || b.Used() > 1000 || granted != 1000/7 {
		t.Fatalf("used %d after %d grants of 7 against 1000", b.Used(), granted)
	}
	b.Release(b.Used())
	if b.Used() != 0 || !b.Reserve(1000) || b.Reserve(1) {
		t.Fatalf("after release: used %d", b.Used())
	}
}

// TestReserveWait: a reservation that does not fit waits for bytes to be
// released and takes them; without a release it gives up after its
// patience, or at once when its context ends, holding nothing.
func TestReserveWait(t *testing.T) {
	b := New(100)
	b.Reserve(80)
	if b.ReserveWait(context.Background(), 50, 30*time.Millisecond) || b.Used() != 80 {
		t.Fatalf("50 more of 100 with 80 held and none released: took them, %d used", b.Used())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b.ReserveWait(ctx, 50, time.Hour) {
		t.Fatal("took bytes after its context ended")
	}
	time.AfterFunc(20*time.Millisecond, func() { b.Release(80) })
	if !b.ReserveWait(context.Background(), 50, 10*time.Second) || b.Used() != 50 {
		t.Fatalf("after the release: %d used, want 50", b.Used())
	}
}
