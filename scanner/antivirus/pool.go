package antivirus

import (
	"container/list"
	"context"
	"sync"
)

// pool is the node's archive bytes in flight (zip_expanded_in_flight),
// shared by every scan. A scan that holds none of it waits its turn for
// room, first come first served, so scans that arrive together take turns
// instead of each expanding part of its archive and all finding the pool
// spent. A scan that already holds some takes more only if it is free at
// once: waiting while holding could leave every scan waiting for bytes
// another holds.
type pool struct {
	mu      sync.Mutex
	limit   int64
	used    int64
	waiters list.List // of *poolWaiter, oldest first
}

type poolWaiter struct {
	n     int64
	ready chan struct{} // closed when the bytes are taken for it
}

func newPool(limit int64) *pool { return &pool{limit: limit} }

// tryTake takes n bytes if they are free now. Those waiting are not
// passed over for long: a scan that holds bytes is one they already let
// in, and it needs at most zip_max_expanded in all.
func (p *pool) tryTake(n int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used+n > p.limit {
		return false
	}
	p.used += n
	return true
}

// take takes n bytes after those that asked before it, waiting until ctx
// ends at most. More than the whole pool is refused at once.
func (p *pool) take(ctx context.Context, n int64) bool {
	p.mu.Lock()
	if n > p.limit {
		p.mu.Unlock()
		return false
	}
	if p.waiters.Len() == 0 && p.used+n <= p.limit {
		p.used += n
		p.mu.Unlock()
		return true
	}
	w := &poolWaiter{n: n, ready: make(chan struct{})}
	e := p.waiters.PushBack(w)
	p.mu.Unlock()
	select {
	case <-w.ready:
		return true
	case <-ctx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-w.ready:
		// Granted as ctx ended: the bytes go back to the others.
		p.used -= n
	default:
		p.waiters.Remove(e)
	}
	// Those behind it may fit where it did not.
	p.grant()
	return false
}

func (p *pool) release(n int64) {
	if n == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used -= n
	p.grant()
}

// grant lets waiters in, oldest first, while the oldest fits: a big
// request is not starved by small ones arriving after it.
func (p *pool) grant() {
	for e := p.waiters.Front(); e != nil; e = p.waiters.Front() {
		w := e.Value.(*poolWaiter)
		if p.used+w.n > p.limit {
			return
		}
		p.used += w.n
		p.waiters.Remove(e)
		close(w.ready)
	}
}

// Used is what scans hold now.
func (p *pool) Used() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used
}
