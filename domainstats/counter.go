// Package domainstats counts each domain's SMTP transaction outcomes per
// hour for the reseller panel. The SMTP session calls Count on the hot path
// (a map increment under a mutex); Run writes the sums to the store in
// batches, so the database sees one upsert per domain and hour per flush,
// not one per message.
package domainstats

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/store"
)

// Sink stores the counters; *store.Store implements it.
type Sink interface {
	AddDomainStats(ctx context.Context, rows []store.DomainHour) error
	PruneDomainStats(ctx context.Context, before time.Time) error
}

var _ Sink = (*store.Store)(nil)

// Retention is how long counters are kept: the panel's longest view is 30
// days, plus a day so the oldest hour of that view is still whole.
const Retention = 31 * 24 * time.Hour

type key struct {
	domain int64 // the stored domain's id
	hour   int64 // Unix seconds of the hour
}

// Counter accumulates counts between flushes.
type Counter struct {
	sink     Sink
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	pending map[key]*admin.Counts
}

// New returns a counter flushing to sink every interval.
func New(sink Sink, interval time.Duration, log *slog.Logger) *Counter {
	return &Counter{sink: sink, interval: interval, log: log, now: time.Now, pending: make(map[key]*admin.Counts)}
}

// Count records one transaction's outcome. Outcomes that are not about
// the message's content or delivery (a downstream 5xx, which the customer's
// server decided) are not counted.
func (c *Counter) Count(domainID int64, outcome smtpd.Outcome) {
	var one admin.Counts
	switch outcome {
	case smtpd.OutcomeDelivered:
		one.Accepted = 1
	case smtpd.OutcomeTagged, smtpd.OutcomeQuarantined:
		one.Tagged = 1
	case smtpd.OutcomeRejectedSpam, smtpd.OutcomeRejectedPolicy:
		one.Rejected = 1
	case smtpd.OutcomeRejectedVirus:
		one.Virus = 1
	case smtpd.OutcomeTempfailScan, smtpd.OutcomeRelayTempfail, smtpd.OutcomeTempfailQuarantine:
		one.Tempfail = 1
	default:
		return // no empty row to write at every flush
	}
	k := key{domainID, c.now().Truncate(time.Hour).Unix()}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(k, &one)
}

// addLocked adds n to k's pending counts; the caller holds c.mu.
func (c *Counter) addLocked(k key, n *admin.Counts) {
	p := c.pending[k]
	if p == nil {
		c.pending[k] = n
		return
	}
	p.Accepted += n.Accepted
	p.Tagged += n.Tagged
	p.Rejected += n.Rejected
	p.Virus += n.Virus
	p.Tempfail += n.Tempfail
}

// Run flushes every interval until ctx ends, then once more, and prunes
// counters past Retention once an hour.
func (c *Counter) Run(ctx context.Context) error {
	lastPrune := time.Time{}
	periodic.Every(ctx, c.interval, nil, func(ctx context.Context) {
		c.Flush(ctx)
		if now := c.now(); now.Sub(lastPrune) >= time.Hour {
			lastPrune = now
			if err := c.sink.PruneDomainStats(ctx, now.Add(-Retention)); err != nil {
				c.log.Warn("domain stats: prune", "err", err)
			}
		}
	})
	// The store's own timeout bounds this last write.
	c.Flush(context.WithoutCancel(ctx))
	return nil
}

// maxRowsPerWrite bounds one write to the store: each row is an upsert of
// its own (about 30 µs on SQLite, a round trip on PostgreSQL), and a
// write is one transaction within the store's timeout. Written in one,
// the backlog of a store down for hours under many domains (a row per
// domain and hour) outgrew that timeout: every later flush failed, for
// good, and the backlog grew every hour until the node stopped.
const maxRowsPerWrite = 2000

// Flush writes the pending counts, in writes of at most maxRowsPerWrite
// rows. On a failure, that write's rows and the ones after it are merged
// back and retried at the next flush; their number is bounded by domains
// x hours.
func (c *Counter) Flush(ctx context.Context) {
	c.mu.Lock()
	batch := c.pending
	c.pending = make(map[key]*admin.Counts)
	c.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	rows := make([]store.DomainHour, 0, len(batch))
	for k, n := range batch {
		rows = append(rows, store.DomainHour{DomainID: k.domain, Hour: time.Unix(k.hour, 0).UTC(), Counts: *n})
	}
	for len(rows) > 0 {
		write := rows[:min(len(rows), maxRowsPerWrite)]
		if err := c.sink.AddDomainStats(ctx, write); err != nil {
			c.log.Warn("domain stats: flush failed; retrying at the next flush", "rows", len(rows), "err", err)
			c.mu.Lock()
			for i := range rows {
				c.addLocked(key{rows[i].DomainID, rows[i].Hour.Unix()}, &rows[i].Counts)
			}
			c.mu.Unlock()
			return
		}
		rows = rows[len(write):]
	}
}
