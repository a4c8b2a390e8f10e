// Package bytebudget counts bytes held against a limit by many goroutines
// at once, without a lock: a node's memory for message bodies, or for
// held messages being opened.
package bytebudget

import (
	"context"
	"sync/atomic"
	"time"
)

// Budget is a limit and what is held of it.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// New returns a budget of limit bytes, none held.
func New(limit int64) *Budget { return &Budget{limit: limit} }

// Reserve takes n bytes if they fit, and reports whether it did.
func (b *Budget) Reserve(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// Release gives back n bytes taken by Reserve.
func (b *Budget) Release(n int64) { b.used.Add(-n) }

// Used is what is held now.
func (b *Budget) Used() int64 { return b.used.Load() }

// poll is how often a waiting ReserveWait looks at the budget again.
const poll = 10 * time.Millisecond

// ReserveWait takes n bytes, waiting up to patience (or until ctx ends)
// for others to release theirs, and reports whether it did.
func (b *Budget) ReserveWait(ctx context.Context, n int64, patience time.Duration) bool {
	deadline := time.Now().Add(patience)
	t := time.NewTicker(poll)
	defer t.Stop()
	for !b.Reserve(n) {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}
