package smtpd

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"golang.org/x/net/idna"

	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

// Tracker takes one record per recipient outcome (message tracking);
// Record must never block.
type Tracker interface {
	Record(tracking.Record)
}

// trackNote gathers, while a transaction runs, what its records need
// beyond the session's state. Reset clears it.
type trackNote struct {
	start   time.Time
	outcome Outcome
	// verdict is the scan's, when scanned says there was one.
	verdict    scanner.Verdict
	scanned    bool
	size       int64
	messageID  string
	subject    string
	downstream string
	relayErr   error
	// clientGone: the client broke the transfer off, so it heard no
	// reply at all; clientSlow: it did not send the message within
	// data_timeout, and heard so.
	clientGone, clientSlow bool
}

// noteMessage keeps the header fields tracking shows.
func (n *trackNote) noteMessage(msg *scanner.Message) {
	n.messageID = msg.Header.Get("Message-Id")
	n.subject = msg.Subject // decoded (RFC 2047), as people search and read it
}

// base is a record of this session and transaction without an outcome.
func (ss *session) trackBase(rcpt string, dom *tenant.Domain) tracking.Record {
	_, tlsIn := ss.conn.TLSConnectionState()
	r := tracking.Record{
		Time: time.Now().UTC(), Node: ss.srv.deps.Node, QueueID: ss.queueID, ClientIP: ss.clientIP,
		HELO: ss.helo(), Sender: trackedSender(ss.from), Recipient: rcpt, TLSIn: tlsIn,
	}
	if dom != nil {
		r.Domain, r.DomainID, r.CustomerID = dom.Name, dom.ID, dom.CustomerID
	}
	return r
}

// trackedSender is from as tracking keeps it: a domain that is not ASCII
// in its lower-case U-label form, the spelling a sender search adds for
// every other (tracking.ParseQuery), since the store folds case in ASCII
// only. Kept as written, INFO@BÜCHER.example was found by no search but
// one in that very case. An ASCII domain, one IDNA refuses and the local
// part stay as written.
func trackedSender(from mailaddr.Address) string {
	if mailaddr.IsASCII(from.Domain) {
		return from.String()
	}
	ascii, err := tenant.NormalizeDomain(from.Domain)
	if err != nil {
		return from.String()
	}
	u, err := idna.Lookup.ToUnicode(ascii)
	if err != nil {
		return from.String()
	}
	return mailaddr.Address{Local: from.Local, Domain: u}.String()
}

// trackRcpt records a recipient of a provisioned domain that was refused
// or deferred at RCPT: the customer's server refused it or could not be
// reached (the deferral view starts here), or our checks refused it.
func (ss *session) trackRcpt(rcpt mailaddr.Address, dom *tenant.Domain, reply *smtp.SMTPError, cause error) {
	if ss.srv.deps.Tracker == nil {
		return
	}
	r := ss.trackBase(rcpt.String(), dom)
	setReply(&r, reply, cause)
	r.Downstream = customerReply(cause)
	ss.srv.deps.Tracker.Record(r)
}

// trackData records every recipient of a finished DATA transaction with
// what the sender heard.
func (ss *session) trackData(reply error) {
	if ss.srv.deps.Tracker == nil || ss.domain == nil || reply == nil {
		return
	}
	sr := toSMTP(ss.log, reply) // every reply Data gives is one already
	n := &ss.note
	for i, rcpt := range ss.rcpts {
		r := ss.trackBase(rcpt, ss.rcptDomains[i])
		r.Size, r.MessageID, r.Subject = n.size, n.messageID, n.subject
		if n.scanned {
			// A zero verdict reads "deliver": a message refused unscanned
			// (too large, a loop) showed as scanned and found clean.
			r.Action, r.Reason, r.Score = n.verdict.Action.String(), n.verdict.Reason, n.verdict.Score
			r.Symbols = topSymbolNames(n.verdict, 5)
		}
		r.Downstream = n.downstream
		if ss.tx != nil {
			r.TLSOut = ss.tx.TLS()
		}
		if !n.start.IsZero() {
			r.Duration = time.Since(n.start)
		}
		setReply(&r, sr, n.relayErr)
		if r.Status != tracking.StatusDelivered {
			r.Reference = ss.queueID // our refusals quote it as [ref ...]
		}
		switch {
		case n.clientGone:
			// Recorded as our 451 and a busy node, it told the customer
			// that we had failed their mail.
			r.ReplyCode, r.Reply, r.Reference, r.DeferReason = 0, "", "", tracking.DeferClientGone
		case n.clientSlow:
			r.DeferReason = tracking.DeferClientGone
		case n.outcome == OutcomeTempfailScan:
			r.DeferReason = tracking.DeferScan
		case n.outcome == OutcomeQuarantined:
			// Its 250 quotes [ref ...] too (quarantinedReply).
			r.Status, r.Reference = tracking.StatusQuarantined, ss.queueID
		}
		ss.srv.deps.Tracker.Record(r)
	}
}

// setReply fills what the sender heard and, for a 4xx, why.
func setReply(r *tracking.Record, reply *smtp.SMTPError, cause error) {
	r.ReplyCode = reply.Code
	r.Reply = replyLine(reply)
	switch {
	case reply.Code < 400:
		r.Status = tracking.StatusDelivered
	case reply.Code >= 500:
		r.Status = tracking.StatusRefused
	default:
		r.Status = tracking.StatusDeferred
		r.DeferReason = deferReason(cause)
	}
}

// customerReply is the customer server's own reply in a relay failure,
// as it wrote it ("" when it gave none: unreachable, lost, or our own
// refusal). Ours may differ: its 421 is our 451, a malformed enhanced code
// is replaced, its text cut.
func customerReply(cause error) string {
	var re *relay.Error
	var se *smtp.SMTPError
	if !errors.As(cause, &re) || re.Kind != relay.KindReplied || !errors.As(re.Err, &se) {
		return ""
	}
	if se.EnhancedCode == smtp.EnhancedCodeNotSet || se.EnhancedCode == smtp.NoEnhancedCode {
		return strconv.Itoa(se.Code) + " " + se.Message
	}
	return replyLine(se)
}

// replyLine is a reply as the sender saw it on the wire.
func replyLine(e *smtp.SMTPError) string {
	// Built in one allocation, not Sprintf's boxing and copying: it is in
	// the log line and every recipient's tracking record of every message.
	var b strings.Builder
	b.Grow(len("250 2.0.0 ") + len(e.Message))
	var num [20]byte
	b.Write(strconv.AppendInt(num[:0], int64(e.Code), 10))
	for i, n := range e.EnhancedCode {
		b.WriteByte(" .."[i])
		b.Write(strconv.AppendInt(num[:0], int64(n), 10))
	}
	b.WriteByte(' ')
	b.WriteString(e.Message)
	return b.String()
}

// deferReason classifies a 4xx by its cause.
func deferReason(cause error) tracking.DeferReason {
	var re *relay.Error
	if !errors.As(cause, &re) {
		return tracking.DeferLocal
	}
	switch re.Kind {
	case relay.KindUnreachable:
		return tracking.DeferUnreachable
	case relay.KindLost:
		if re.MaybeTaken {
			return tracking.DeferMaybeDelivered
		}
		return tracking.DeferTimeout
	}
	return tracking.DeferCustomerTempfail
}

// topSymbolNames are the names of v's n most significant symbols, in
// v.TopSymbols(n)'s order (by weight, ties as they came). They are picked
// in one pass into a small index array: TopSymbols copies and sorts all of
// a verdict's twenty-odd symbols, and every message's tracking record (and
// event, and quarantine item) asked for them again. A NaN score makes the
// weights no order, which only the sort itself answers.
func topSymbolNames(v scanner.Verdict, n int) []string {
	var buf [16]int
	top := buf[:0] // indices into v.Symbols, strongest first
	if n > len(buf) {
		top = make([]int, 0, n)
	}
	for i, s := range v.Symbols {
		w := math.Abs(s.Score) // as byWeight compares them
		if w != w {
			return symbolNames(v.TopSymbols(n))
		}
		j := len(top)
		for j > 0 && w > math.Abs(v.Symbols[top[j-1]].Score) {
			j--
		}
		if j >= n {
			continue
		}
		if len(top) < n {
			top = append(top, 0)
		}
		copy(top[j+1:], top[j:len(top)-1])
		top[j] = i
	}
	names := make([]string, len(top))
	for k, i := range top {
		names[k] = v.Symbols[i].Name
	}
	return names
}

func symbolNames(syms []scanner.Symbol) []string {
	names := make([]string, len(syms))
	for i, s := range syms {
		names[i] = s.Name
	}
	return names
}
