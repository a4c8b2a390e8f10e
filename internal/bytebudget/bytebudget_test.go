package bytebudget

import (
	"sync"
	"testing"
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
