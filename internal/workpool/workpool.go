// Package workpool runs functions on goroutines that stay a while for the
// next one instead of exiting.
//
// A new goroutine starts with a small stack; one that goes deep (a message
// parsed, scanned, relayed) grows it by doubling and copying every frame,
// three or four times. Work that arrives thousands of times a second on
// goroutines of its own spends percents of a node's CPU on that and on
// starting goroutines. A worker kept for the next function keeps its grown
// stack (a GC halves an idle goroutine's stack at most once per cycle).
package workpool

import "time"

// Pool hands each function to an idle worker, or starts one when none is
// idle. Workers end after idle without work, so a pool needs no Close and
// leaves no goroutine behind for long. The zero Pool is not usable.
type Pool struct {
	idle    time.Duration
	handoff chan func()
}

// New returns a pool whose workers wait idle for their next function.
func New(idle time.Duration) *Pool {
	return &Pool{idle: idle, handoff: make(chan func())}
}

// Go runs f on a pool goroutine. Like the go statement it does not wait.
func (p *Pool) Go(f func()) {
	select {
	case p.handoff <- f:
	default:
		go p.work(f)
	}
}

func (p *Pool) work(f func()) {
	idle := time.NewTimer(p.idle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(p.idle)
		select {
		case f = <-p.handoff:
		case <-idle.C:
			return
		}
	}
}
