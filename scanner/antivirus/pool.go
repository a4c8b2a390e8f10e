package antivirus

import (
	"container/list"
	"context"
	"sync"
)

// pool is the node's archive bytes in flight (zip_expanded_in_flight),
// shared by every scan. Scans wait their turn for room, so scans that
// arrive together take turns instead of each expanding part of its
// archive and all finding the pool spent.
//
// A scan that already holds bytes (a zip in a zip, a second archive in
// the message) waits while holding them, ahead of scans that hold
// nothing, but only while that cannot deadlock: were every scan holding
// bytes waiting, the oldest of them must still fit in what the others
// hold leaves. Those waiting hold what they hold until they are served,
// so it is enough that each waiter's need, plus what it and every
// waiter behind it hold, fits the pool; a scan that would break this
// takes more only if it is free at once.
type pool struct {
	mu    sync.Mutex
	limit int64
	used  int64
	// Of *poolWaiter, oldest first: scans that hold bytes, served
	// before newcomers, that hold none.
	holders, newcomers list.List
}

type poolWaiter struct {
	n, held int64
	ready   chan struct{} // closed when the bytes are taken for it
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

// take takes n more bytes for a scan that holds held, after those that
// asked before it, waiting until ctx ends at most. More than the whole
// pool is refused at once, and so is a wait that could deadlock.
func (p *pool) take(ctx context.Context, held, n int64) bool {
	p.mu.Lock()
	if held+n > p.limit {
		p.mu.Unlock()
		return false
	}
	queue := &p.newcomers
	if held > 0 {
		queue = &p.holders
	}
	if p.holders.Len() == 0 && (held > 0 || p.newcomers.Len() == 0) && p.used+n <= p.limit {
		p.used += n
		p.mu.Unlock()
		return true
	}
	if held > 0 && !p.mayWait(held) {
		p.mu.Unlock()
		return false
	}
	w := &poolWaiter{n: n, held: held, ready: make(chan struct{})}
	e := queue.PushBack(w)
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
		queue.Remove(e)
	}
	// Those behind it may fit where it did not.
	p.grant()
	return false
}

// mayWait says whether a scan holding held may wait behind the holders
// waiting now: each of them must still fit once the ones before it are
// served, with the newcomer's bytes held too.
func (p *pool) mayWait(held int64) bool {
	behind := held
	for e := p.holders.Back(); e != nil; e = e.Prev() {
		w := e.Value.(*poolWaiter)
		if w.n+w.held+behind > p.limit {
			return false
		}
		behind += w.held
	}
	return true
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
// request is not starved by small ones arriving after it. Scans that
// hold bytes go first: what they hold returns once they are done.
func (p *pool) grant() {
	for _, q := range []*list.List{&p.holders, &p.newcomers} {
		for e := q.Front(); e != nil; e = q.Front() {
			w := e.Value.(*poolWaiter)
			if p.used+w.n > p.limit {
				return
			}
			p.used += w.n
			q.Remove(e)
			close(w.ready)
		}
	}
}

// Used is what scans hold now.
func (p *pool) Used() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used
}
