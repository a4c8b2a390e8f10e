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
	Hold(ctx context.Context, it quarantine.Item, msg []byte) ([]int64, error)
}

// healthQuarantine is the component /readyz shows a failing quarantine
// under: mail still flows (tagged and delivered), so it is degraded.
const healthQuarantine = "quarantine"

// quarantineTimeout bounds the store write the sender waits for.
const quarantineTimeout = 10 * time.Second

// quarantines reports whether v goes to the quarantine under the
// transaction's policy.
func (ss *session) quarantines(v scanner.Verdict) bool {
	ta := ss.domain.Policy.TagAction
	return v.Action == scanner.Tag && ta != nil && *ta == tenant.TagQuarantine && ss.srv.deps.Quarantine != nil
}

// hold stores the message as it would have been delivered (read from out)
// in the quarantine. On success the sender hears 250 only now, after the
// commit; on failure the caller delivers tagged instead: mail always flows.
// The store takes bytes, so a spooled message is loaded here: quarantine
// is for the tag band, and its items are held in a database anyway.
func (ss *session) hold(v scanner.Verdict, out io.Reader) (*smtp.SMTPError, bool) {
	ctx, cancel := context.WithTimeout(ss.ctx, quarantineTimeout)
	defer cancel()
	msg, err := io.ReadAll(out)
	if err != nil {
		ss.log.Warn("quarantine: could not read the message, delivering tagged", "queue_id", ss.queueID, "err", err)
		return nil, false
	}
	ids, err := ss.srv.deps.Quarantine.Hold(ctx, quarantine.Item{
		QueueID: ss.queueID, Domain: ss.domain.Name, DomainID: ss.domain.ID, CustomerID: ss.domain.CustomerID,
		Sender: ss.from.String(), Recipients: ss.rcpts, Subject: ss.note.subject, MessageID: ss.note.messageID,
		Score: v.Score, Symbols: topSymbolNames(v, 10),
	}, msg)
	if err != nil {
		reason := "unavailable"
		if errors.Is(err, quarantine.ErrOverCap) {
			reason = "over_cap"
		} else if ss.srv.deps.Health != nil {
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
	return quarantinedReply(ss.queueID, ids), true
}
