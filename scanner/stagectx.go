package scanner

import (
	"context"
	"sync"
	"time"
)

// stageContext is context.WithDeadline(parent, deadline), for a stage
// with a timeout or for the scan the others share, made only once
// something needs it to end on its own: a Done channel to wait on, a
// child context, an Err or Value at or past the deadline. Most checks on
// most messages never wait (the rules and the model do not look at their
// context; DNS answers come from the cache), and the timer the deadline
// context armed and stopped for each stage of each message was 14% of
// BenchmarkScanPipeline. Until it is made, the deadline is kept by the
// clock, read when asked.
type stageContext struct {
	parent   context.Context
	deadline time.Time

	mu      sync.Mutex
	ctx     context.Context // the deadline context, once made
	cancel  context.CancelFunc
	stopped bool // the check returned: ctx is canceled
}

// materialize makes the deadline context, if it is not yet. Call with mu held.
func (c *stageContext) materialize() context.Context {
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline)
		if c.stopped {
			c.cancel()
		}
	}
	return c.ctx
}

// current is the context that answers for c now: the deadline context,
// made if c has already ended (so that Err and context.Cause say why, as
// the deadline context would), or else parent, as the deadline context
// would answer before its deadline.
func (c *stageContext) current() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil && !c.stopped && c.parent.Err() == nil && time.Now().Before(c.deadline) {
		return c.parent
	}
	return c.materialize()
}

func (c *stageContext) made() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.materialize()
}

// stop cancels c, as the deadline context's CancelFunc.
func (c *stageContext) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.cancel != nil {
		c.cancel()
	}
}

func (c *stageContext) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *stageContext) Done() <-chan struct{} { return c.made().Done() }

func (c *stageContext) Err() error { return c.current().Err() }

func (c *stageContext) Value(key any) any { return c.current().Value(key) }

// AfterFunc lets a child context (context.WithCancel and the like) hang
// off the deadline context, as off any context of the package, rather
// than off a goroutine of its own waiting for Done.
func (c *stageContext) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.made(), f)
}
