package smtpd

import (
	"context"
	"time"

	"github.com/mxgrid/mxgrid/internal/bytebudget"
)

// The server's budget (bytebudget.Budget of smtp.memory_budget) bounds the
// message bytes the node holds in memory at once. Without it, with 50
// connections per address and 25 MB messages, one client could make the
// node hold gigabytes: a session that cannot reserve what its next chunk
// costs is answered 452 4.3.1, and its sender retries later, as it would
// after any other temporary error.

// holdFactor is how many times its size a transaction held in memory
// costs at its peak: the body read (and joined), the parsed message
// (decoded text and parts), the composed copy relayed downstream.
// Measured: one 20 MB message raised a node's peak RSS by about 90 MB.
const holdFactor = 4

// spoolFactor is what a spooled body costs per byte while it is scanned:
// only the parse is in memory (the body is read from its file and relayed
// from it), and the parse keeps the decoded leaves, read through one
// reused buffer that grows by doubling.
const spoolFactor = 3

// quarantineFactor is what a message costs per byte on top of those when
// its domain's policy may quarantine it: the compressed copy the store
// takes (about its size, for a message that does not compress) and the
// database's copies of that (SQLite's bound blob and the row it builds,
// outside the Go heap). Held in the quarantine unpaid for, 40 senders of
// 20 MB of incompressible tag-band mail at once took a node to 500 MB,
// past the 400 MB that the same mail relayed stays under; at 2 it still
// peaked at 411 MB, at 3 at 346-367 MB. It is paid before the scan, with
// the rest, whatever the verdict: waiting for it after the scan, while
// holding the scan's share, would let sessions each hold part of the
// budget and wait for one another.
const quarantineFactor = 3

// MemoryReserved is what transactions in progress hold of
// smtp.memory_budget now.
func (s *Server) MemoryReserved() int64 { return s.budget.Used() }

// reservation is what one transaction holds of the budget.
type reservation struct {
	budget *bytebudget.Budget
	held   int64
}

// to makes the reservation n bytes; false (and unchanged) when the budget
// cannot give the difference.
func (r *reservation) to(n int64) bool {
	if n > r.held {
		if !r.budget.Reserve(n - r.held) {
			return false
		}
	} else {
		r.budget.Release(r.held - n)
	}
	r.held = n
	return true
}

// wait makes the reservation n bytes, waiting up to patience for others to
// release theirs. A spooled body waits rather than being refused at once:
// its sender waits for the reply to its final dot anyway (RFC 5321 allows
// it 10 minutes), and reading 25 MB again on a retry costs more than
// waiting for a scan to finish.
func (r *reservation) wait(ctx context.Context, n int64, patience time.Duration) bool {
	if n <= r.held {
		return r.to(n)
	}
	if !r.budget.ReserveWait(ctx, n-r.held, patience) {
		return false
	}
	r.held = n
	return true
}

func (r *reservation) release() { r.to(0) }
