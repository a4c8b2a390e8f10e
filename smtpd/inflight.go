package smtpd

import (
	"sync"
	"sync/atomic"
)

// transactions counts the transactions in flight, so that Shutdown can
// refuse new ones and wait for those begun. A sync.WaitGroup could not: a
// MAIL that passed the draining check just before Shutdown began added to
// it while Shutdown waited, which a WaitGroup forbids (it panics, and the
// node went down with every session, when the count touched zero then).
// Here the check and the count are one step under one lock.
type transactions struct {
	// draining is read without the lock where a transaction is only
	// asked about (RCPT, a read error), never counted.
	draining atomic.Bool

	mu   sync.Mutex
	n    int
	idle chan struct{} // made by drain; closed once n is 0 after it
}

// begin counts a new transaction, or reports false once draining.
func (t *transactions) begin() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.draining.Load() {
		return false
	}
	t.n++
	return true
}

// end uncounts a transaction begun.
func (t *transactions) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 && t.idle != nil {
		close(t.idle)
	}
}

// drain refuses transactions from now on and returns a channel closed
// when none is in flight.
func (t *transactions) drain() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idle == nil {
		t.draining.Store(true)
		t.idle = make(chan struct{})
		if t.n == 0 {
			close(t.idle)
		}
	}
	return t.idle
}
