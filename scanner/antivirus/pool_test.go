package antivirus

import (
	"context"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/mxgrid/mxgrid/scanner/unpack"
)

// waiting is how many scans wait for room.
func (p *pool) waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.holders.Len() + p.newcomers.Len()
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
	if p.take(context.Background(), 0, 101) {
		t.Fatal("took more than the pool")
	}
	p.tryTake(60)
	got := make(chan int64, 2)
	taker := func(ctx context.Context, n int64) {
		if p.take(ctx, 0, n) {
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
	// Both answer; in either order.
	if a, b := <-got, <-got; a+b != 50-90 || p.Used() != 80 || p.waiting() != 0 {
		t.Fatalf("the cancelled waiter and the one behind it got %d and %d with %d used and %d waiting, want -90 and 50, 80, 0", a, b, p.Used(), p.waiting())
	}
}

// TestPoolLetsHoldersWaitWithoutDeadlock: a scan that holds bytes waits
// ahead of those that hold none, unless waiting could deadlock: with
// every holder waiting, the oldest must still fit beside what the
// others hold.
func TestPoolLetsHoldersWaitWithoutDeadlock(t *testing.T) {
	p := newPool(100)
	got := make(chan int64, 2)
	taker := func(held, n int64) {
		if p.take(context.Background(), held, n) {
			got <- n
		} else {
			got <- -n
		}
	}
	// Scans A and C hold 20 each, B 40.
	p.tryTake(80)
	go taker(0, 50) // a newcomer
	waitFor(p, 1)
	go taker(20, 45) // A needs 45 more
	waitFor(p, 2)
	// Were B waiting too, A's 45 would not fit beside A's and B's 60.
	if p.take(context.Background(), 40, 10) {
		t.Fatal("B waited although A could then never fit")
	}
	p.release(20) // C ends
	p.release(40) // B ends: the newcomer would fit, but A goes first
	if n := <-got; n != 45 || p.Used() != 65 {
		t.Fatalf("first served %d with %d used, want A's 45 and 65", n, p.Used())
	}
	p.release(20 + 45) // A ends
	if n := <-got; n != 50 || p.Used() != 50 {
		t.Fatalf("then %d with %d used, want 50 and 50", n, p.Used())
	}
	if p.take(context.Background(), 60, 41) {
		t.Fatal("took more than the pool in all")
	}
}

// A member that expands past what its archive declares (a gzip of many
// members declares only its last one's size) is read into a buffer that
// grows: grown by append, past 256 KB a quarter at a time, an 8 MiB read
// allocated some 40 MB, and held the last two buffers, more than the
// bytes the pool counted, at once. Doubled up to the read's limit, it
// allocates at most twice the limit.
func TestExpandGrowsItsBufferToTheLimit(t *testing.T) {
	const limit = 8 << 20
	b := &budget{expanded: limit, pool: newPool(1 << 30)}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	data, err := expand(io.LimitReader(zeros{}, 2*limit), 1<<20, 1<<20, "m", b, 100)
	runtime.ReadMemStats(&after)
	if len(data) != limit || !errors.Is(err, unpack.ErrBudget) {
		t.Fatalf("read %d bytes, err %v; want %d and the budget spent", len(data), err, limit)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 2*limit+1<<20 {
		t.Errorf("expanding %d MiB allocated %d MiB, want at most twice that", limit>>20, got>>20)
	}
}

// zeros reads zero bytes without end.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
