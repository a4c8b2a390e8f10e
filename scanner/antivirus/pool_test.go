package antivirus

import (
	"context"
	"runtime"
	"testing"
)

// waiting is how many scans wait for room.
func (p *pool) waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiters.Len()
}

// waitFor yields until n takers are queued in p.
func waitFor(p *pool, n int) {
	for p.waiting() != n {
		runtime.Gosched()
	}
}

// TestPoolServesInOrder: room goes to the oldest waiter first, so a big
// archive is not starved by small ones arriving after it; a waiter whose
// context ends leaves the queue and lets those behind it in; a request
// larger than the pool is refused at once.
func TestPoolServesInOrder(t *testing.T) {
	p := newPool(100)
	if p.take(context.Background(), 101) {
		t.Fatal("took more than the pool")
	}
	p.tryTake(60)
	got := make(chan int64, 2)
	taker := func(ctx context.Context, n int64) {
		if p.take(ctx, n) {
			got <- n
		} else {
			got <- -n
		}
	}
	go taker(context.Background(), 80)
	waitFor(p, 1)
	// 30 would fit now, but the 80 asked first.
	go taker(context.Background(), 30)
	waitFor(p, 2)
	p.release(60)
	if n := <-got; n != 80 {
		t.Fatalf("first served %d, want 80", n)
	}
	p.release(80)
	if n := <-got; n != 30 || p.Used() != 30 {
		t.Fatalf("then %d with %d used, want 30 and 30", n, p.Used())
	}

	ctx, cancel := context.WithCancel(context.Background())
	go taker(ctx, 90)
	waitFor(p, 1)
	go taker(context.Background(), 50)
	waitFor(p, 2)
	cancel()
	if n := <-got; n != -90 {
		t.Fatalf("the cancelled waiter got %d, want -90", n)
	}
	if n := <-got; n != 50 || p.Used() != 80 || p.waiting() != 0 {
		t.Fatalf("behind it %d with %d used and %d waiting, want 50, 80, 0", n, p.Used(), p.waiting())
	}
}
