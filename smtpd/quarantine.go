package smtpd

import (
	"context"
	"errors"
	"fmt"
	"io"
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
}

// healthQuarantine is the component /readyz shows a failing quarantine
// under: mail still flows (tagged and delivered), so it is degraded.
const healthQuarantine = "quarantine"

// quarantineTimeout bounds the store write the sender waits for.
const quarantineTimeout = 10 * time.Second

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
// failure the caller delivers tagged instead: mail always flows.
func (ss *session) hold(v scanner.Verdict, holdable bool, size int64, out io.Reader) (*smtp.SMTPError, bool) {
	if !holdable {
		ss.srv.metrics.quarantineFallbacks.WithLabelValues("memory").Inc()
		ss.log.Warn("quarantine: memory_budget too small to hold the message, delivering tagged", "queue_id", ss.queueID,
			"memory_budget", ss.srv.cfg.MemoryBudget)
		return nil, false
	}
	if dir := ss.srv.deps.QuarantineDir; dir != "" {
		// The per-domain cap bounds one domain, not a flood of tag-band
		// mail across every domain that quarantines: held, it filled the
		// disk the spool shares, and every tenant's big mail was deferred
		// there (452), while the store's other writes failed.
		free, ok := freeBytes(dir)
		if reusable := ss.srv.deps.QuarantineReusable; ok && reusable != nil && free-size < ss.srv.cfg.SpoolMinFree {
			// Asked only when the disk alone is short; unread, the
			// file is taken to have no room.
			if n, err := reusable(ss.ctx); err == nil {
				free += n
			}
		}
		if ok && free-size < ss.srv.cfg.SpoolMinFree {
			ss.srv.metrics.quarantineFallbacks.WithLabelValues("disk").Inc()
			if ss.srv.deps.Health != nil {
				ss.srv.deps.Health.Set(healthQuarantine, health.Degraded, fmt.Sprintf(
					"%s has %d bytes free (its database's free pages included), below smtp.spool_min_free: mail the quarantine would hold is tagged and delivered", dir, free))
			}
			ss.log.Warn("quarantine: the disk is low, delivering tagged", "queue_id", ss.queueID, "free", free, "spool_min_free", ss.srv.cfg.SpoolMinFree)
			return nil, false
		}
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
		return nil, false
	}
	if err != nil {
		reason := "unavailable"
		switch {
		case errors.Is(err, quarantine.ErrOverCap):
			reason = "over_cap"
		case errors.Is(err, quarantine.ErrTooLarge):
			reason = "too_large"
		case ss.srv.deps.Health != nil:
			ss.srv.deps.Health.Set(healthQuarantine, health.Degraded, fmt.Sprintf("quarantine store failing (%v): mail it would hold is tagged and delivered", err))
		}
		ss.srv.metrics.quarantineFallbacks.WithLabelValues(reason).Inc()
		ss.log.Warn("quarantine failed, delivering tagged", "queue_id", ss.queueID, "reason", reason, "err", err)
		return nil, false
	}
	if ss.srv.deps.Health != nil {
		ss.srv.deps.Health.Set(healthQuarantine, health.OK, "")
	}
	ss.srv.metrics.quarantined.Inc()
	return quarantinedReply(ss.queueID, len(ids)), true
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
