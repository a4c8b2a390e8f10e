package smtpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/tenant"
)

// Quarantiner keeps a message instead of delivering it; *quarantine.Service.
type Quarantiner interface {
	Hold(ctx context.Context, it quarantine.Item, msg io.Reader) ([]int64, error)
	// Ready reports whether the quarantine's store takes holds, without
	// holding anything.
	Ready(ctx context.Context) error
}

// healthQuarantine is the component /readyz shows a failing quarantine
// under: mail still flows (tagged and delivered), so it is degraded.
const healthQuarantine = "quarantine"

// quarantineTimeout bounds the store write the sender waits for.
const quarantineTimeout = 10 * time.Second

// quarantineFault is why the quarantine's condition is degraded: what
// RecheckQuarantine looks at again.
type quarantineFault int

const (
	quarantineFine quarantineFault = iota
	quarantineStoreFailing
	quarantineDiskLow
)

// quarantineHealth remembers the fault behind the quarantine's condition
// in /readyz, and counts its changes, so that a check started before a
// hold failed again cannot clear what that hold reported.
type quarantineHealth struct {
	mu    sync.Mutex
	fault quarantineFault
	gen   uint64
	// unanswered: the last hold failed because the store did not answer
	// in time (hung: a stopped PostgreSQL accepts connections and answers
	// nothing). Holds are not tried until RecheckQuarantine finds the store
	// taking them again: each held its sender for the store's timeout,
	// only to be delivered tagged, and tag-band mail took most of a
	// node's sessions.
	unanswered bool
}

// setQuarantineHealth reports the quarantine's state; reason is for a fault.
func (s *Server) setQuarantineHealth(fault quarantineFault, reason string) {
	s.quarantineHealth.mu.Lock()
	defer s.quarantineHealth.mu.Unlock()
	s.setQuarantineHealthLocked(fault, reason)
}

func (s *Server) setQuarantineHealthLocked(fault quarantineFault, reason string) {
	s.quarantineHealth.fault = fault
	s.quarantineHealth.unanswered = false
	s.quarantineHealth.gen++
	if s.deps.Health == nil {
		return
	}
	if fault == quarantineFine {
		s.deps.Health.Set(healthQuarantine, health.OK, "")
		return
	}
	s.deps.Health.Set(healthQuarantine, health.Degraded, reason)
}

// quarantineStoreFailed reports a hold the store failed; unanswered when
// it did not answer in time.
func (s *Server) quarantineStoreFailed(err error, unanswered bool) {
	s.quarantineHealth.mu.Lock()
	defer s.quarantineHealth.mu.Unlock()
	s.setQuarantineHealthLocked(quarantineStoreFailing, fmt.Sprintf("quarantine store failing (%v): mail it would hold is tagged and delivered", err))
	s.quarantineHealth.unanswered = unanswered
}

func (s *Server) quarantineUnanswered() bool {
	s.quarantineHealth.mu.Lock()
	defer s.quarantineHealth.mu.Unlock()
	return s.quarantineHealth.unanswered
}

// RecheckQuarantine clears the quarantine's degraded condition once what
// a failed hold reported has mended: the store takes holds again, or the disk
// has smtp.spool_min_free. Only the next message held cleared it, and on
// a node whose quarantining domains get little tag-band mail that was
// hours after the store came back: /readyz, and alerts on it, said the
// quarantine was failing all that time. The node calls it periodically.
func (s *Server) RecheckQuarantine(ctx context.Context) {
	s.quarantineHealth.mu.Lock()
	fault, gen := s.quarantineHealth.fault, s.quarantineHealth.gen
	s.quarantineHealth.mu.Unlock()
	switch fault {
	case quarantineFine:
		return
	case quarantineStoreFailing:
		if s.deps.Quarantine.Ready(ctx) != nil {
			return
		}
	case quarantineDiskLow:
		if free, ok := s.quarantineFree(ctx, s.cfg.SpoolMinFree); !ok || free < s.cfg.SpoolMinFree {
			return
		}
	}
	s.quarantineHealth.mu.Lock()
	defer s.quarantineHealth.mu.Unlock()
	if s.quarantineHealth.gen == gen {
		s.setQuarantineHealthLocked(quarantineFine, "")
	}
}

// quarantineFree is the room the quarantine's disk has, the database's
// free pages counted when the disk alone has less than need.
func (s *Server) quarantineFree(ctx context.Context, need int64) (int64, bool) {
	free, ok := freeBytes(s.deps.QuarantineDir)
	if reusable := s.deps.QuarantineReusable; ok && reusable != nil && free < need {
		// Asked only when the disk alone is short; unread, the
		// file is taken to have no room.
		if n, err := reusable(ctx); err == nil {
			free += n
		}
	}
	return free, ok
}

// mayQuarantine reports whether the transaction's policy quarantines
// its tag band, so that holding its message must be paid for.
func (ss *session) mayQuarantine() bool {
	ta := ss.domain.Policy.TagAction
	return ta != nil && *ta == tenant.TagQuarantine && ss.srv.deps.Quarantine != nil
}

// quarantines reports whether v goes to the quarantine under the
// transaction's policy.
func (ss *session) quarantines(v scanner.Verdict) bool {
	return v.Action == scanner.Tag && ss.mayQuarantine()
}

// hold stores the message as it would have been delivered (read from out)
// in the quarantine, unless holdable says the memory budget could not pay
// for it. size is about its size (at least it). On success the sender hears 250 only now, after the commit; on
// failure the caller delivers tagged instead: mail always flows. A hold
// whose outcome the store cannot tell is answered 451, as Postfix answers
// a queue file it cannot be sure of: the message may be held, and
// delivered tagged too it would be in the mailbox and releasable again.
func (ss *session) hold(v scanner.Verdict, holdable bool, size int64, out io.Reader) (*smtp.SMTPError, Outcome, bool) {
	if !holdable {
		ss.srv.metrics.quarantineFallbacks.WithLabelValues("memory").Inc()
		ss.log.Warn("quarantine: memory_budget too small to hold the message, delivering tagged", "queue_id", ss.queueID,
			"memory_budget", ss.srv.cfg.MemoryBudget)
		return nil, "", false
	}
	if dir := ss.srv.deps.QuarantineDir; dir != "" {
		// The per-domain cap bounds one domain, not a flood of tag-band
		// mail across every domain that quarantines: held, it filled the
		// disk the spool shares, and every tenant's big mail was deferred
		// there (452), while the store's other writes failed.
		if free, ok := ss.srv.quarantineFree(ss.ctx, size+ss.srv.cfg.SpoolMinFree); ok && free-size < ss.srv.cfg.SpoolMinFree {
			ss.srv.metrics.quarantineFallbacks.WithLabelValues("disk").Inc()
			ss.srv.setQuarantineHealth(quarantineDiskLow, fmt.Sprintf(
				"%s has %d bytes free (its database's free pages included), below smtp.spool_min_free: mail the quarantine would hold is tagged and delivered", dir, free))
			ss.log.Warn("quarantine: the disk is low, delivering tagged", "queue_id", ss.queueID, "free", free, "spool_min_free", ss.srv.cfg.SpoolMinFree)
			return nil, "", false
		}
	}
	if ss.srv.quarantineUnanswered() {
		ss.srv.metrics.quarantineFallbacks.WithLabelValues("unavailable").Inc()
		ss.log.Warn("quarantine: the store did not answer the last hold, delivering tagged", "queue_id", ss.queueID)
		return nil, "", false
	}
	ctx, cancel := context.WithTimeout(ss.ctx, quarantineTimeout)
	defer cancel()
	in := &readFailure{r: out}
	ids, err := ss.srv.deps.Quarantine.Hold(ctx, quarantine.Item{
		QueueID: ss.queueID, Domain: ss.domain.Name, DomainID: ss.domain.ID, CustomerID: ss.domain.CustomerID,
		Sender: ss.from.String(), SMTPUTF8: ss.mailOpts.UTF8, Recipients: ss.rcpts, Subject: ss.note.subject, MessageID: ss.note.messageID,
		Score: v.Score, Symbols: topSymbolNames(v, 10), Size: size,
	}, in)
	if in.err != nil {
		// Our own copy (a spool file) failed, not the quarantine.
		ss.log.Warn("quarantine: could not read the message, delivering tagged", "queue_id", ss.queueID, "err", in.err)
		return nil, "", false
	}
	if err != nil {
		reason := "unavailable"
		switch {
		case errors.Is(err, quarantine.ErrOverCap):
			reason = "over_cap"
		case errors.Is(err, quarantine.ErrTooLarge):
			reason = "too_large"
		default:
			ss.srv.quarantineStoreFailed(err, errors.Is(err, context.DeadlineExceeded) && ss.ctx.Err() == nil)
		}
		if errors.Is(err, quarantine.ErrHoldUnknown) {
			ss.log.Warn("quarantine: the store did not confirm the hold, deferring", "queue_id", ss.queueID, "err", err)
			return errHoldUnknown, OutcomeTempfailQuarantine, true
		}
		ss.srv.metrics.quarantineFallbacks.WithLabelValues(reason).Inc()
		ss.log.Warn("quarantine failed, delivering tagged", "queue_id", ss.queueID, "reason", reason, "err", err)
		return nil, "", false
	}
	ss.srv.setQuarantineHealth(quarantineFine, "")
	ss.srv.metrics.quarantined.Inc()
	return quarantinedReply(ss.queueID, len(ids)), OutcomeQuarantined, true
}

// readFailure remembers the error of the reader it passes on.
type readFailure struct {
	r   io.Reader
	err error
}

func (f *readFailure) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF {
		f.err = err
	}
	return n, err
}
