// Package periodic is the loop every background part of a node runs: do
// something on a ticker, or sooner when woken, until the context ends.
// Having it once keeps the shutdown behaviour (return promptly, stop the
// ticker) the same for all of them.
package periodic

import (
	"context"
	"time"
)

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
