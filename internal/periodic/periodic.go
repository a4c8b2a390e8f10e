// Package periodic is the loop every background part of a node runs: do
// something on a ticker, or sooner when woken, until the context ends.
// Having it once keeps the shutdown behaviour (return promptly, stop the
// ticker) the same for all of them.
package periodic

import (
	"context"
	"time"
)

// MinInterval is the shortest interval a configured loop that calls the
// store or a server may have: with 1ns a prune or a store query ran back
// to back, a core busy for good, and relay's sweep of half of it, a ticker
// of 0, panicked at start. Each section's Validate refuses less, naming
// its key.
const MinInterval = 100 * time.Millisecond

// Every calls fn every interval, and at once whenever wake delivers (nil:
// never), until ctx ends. fn is not called after ctx ended; a call in
// progress finishes first. A caller that wants an immediate first run calls
// fn itself before Every, and one that wants to stop early cancels ctx.
func Every(ctx context.Context, interval time.Duration, wake <-chan struct{}, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		if ctx.Err() != nil {
			return
		}
		fn(ctx)
	}
}
