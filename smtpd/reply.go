package smtpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/negcache"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/replytext"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/verdict"
)

// This file is the one place a reply to the sender is written: the
// session's own refusals, the mapping of a verdict to a reply, the success
// reply, the translation of internal errors, and the lines written outside
// go-smtp. reply_test.go lists every one of them.

// Replies the session gives of its own accord. Each is a bare *smtp.SMTPError:
// go-smtp type-asserts (not errors.As) and turns anything else into a
// permanent 554 that leaks internal text.
var (
	errUnknownDomain        = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "relay access denied: we do not accept mail for this domain"}
	errDomainUnservable     = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 5}, Message: "domain configuration error on this filter: try again later"}
	errTenantsUnconfirmed   = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "domain not in this node's domain list, which is out of date: try again later"}
	errUnknownUser          = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "recipient address rejected: user unknown"}
	errNoPostmaster         = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "this filter keeps no mailbox of its own, write to postmaster at the domain you mean"}
	errBlocked              = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "sender blocked by the recipient's policy"}
	errOtherRoute           = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "recipient routed elsewhere, send it in another transaction"}
	errOtherTenant          = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "recipient belongs to another customer, send it in another transaction"}
	errOtherPolicy          = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "recipient's domain has another filtering policy, send it in another transaction"}
	errOtherQuarantine      = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "recipient's domain keeps its own quarantine, send it in another transaction"}
	errShuttingDown         = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "service shutting down, try another MX"}
	errBadAddress           = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "bad recipient address syntax"}
	errBadSender            = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "bad sender address syntax"}
	errControlChar          = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "control character in address"}
	errSenderControlChar    = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "control character in address"}
	errInvalidUTF8          = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "invalid UTF-8 in address"}
	errSenderInvalidUTF8    = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "invalid UTF-8 in address"}
	errNeedsUTF8            = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "non-ASCII address without SMTPUTF8"}
	errSourceRouted         = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "source routing (@, % or ! in the local part) is not accepted"}
	errTooManyUnknown       = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "too many unknown recipients, closing connection"}
	errTooManyAbandoned     = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "too many transactions without a message, closing connection"}
	errClientTooManyUnknown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "too many unknown recipients from your address lately, try again later"}
	errTooLarge             = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "message exceeds the size limit"}
	errBareNewline          = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "message contains bare CR or LF, use CRLF line endings"}
	errHeaderTooLarge       = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: fmt.Sprintf("a header of the message or of a MIME part exceeds %d bytes or %d fields", scanner.MaxHeaderBytes, scanner.MaxHeaderFields)}
	errTooManyHops          = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 4, 6}, Message: "too many hops (Received fields), mail loop?"}
	errTempScan             = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "message could not be fully scanned, try again later"}
	errTimedOut             = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 5}, Message: "timed out, try again later"}
	errDataTimeout          = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "message not received within the time limit, closing connection"}
	errLocal                = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "local error, try again later"}
	errNoResources          = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "insufficient system resources, try again later"}
	errHoldUnknown          = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "quarantine storage did not confirm the message, try again later"}
)

// Replies written straight to the connection, outside go-smtp: before its
// greeting (the connection limits, a refused PROXY header) or to an idle
// client at shutdown. rawReply renders them.
var (
	errTooManyConnections = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "too many connections, try again later"}
	errProxyRefused       = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "PROXY protocol not accepted from your address"}
	errGoingAway          = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "shutting down, try another MX"}
)

// maxDetailText bounds text from a check or the customer's server inside
// our replies, well within RFC 5321's 512-octet reply line.
const maxDetailText = 200

// rawReply renders e as one reply line; a non-empty hostname goes before
// the text, as in a greeting.
func rawReply(e *smtp.SMTPError, hostname string) []byte {
	text := e.Message
	if hostname != "" {
		text = hostname + " " + text
	}
	return fmt.Appendf(nil, "%d %d.%d.%d %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], text)
}

// errDomainTooLarge refuses a message over its domain's max_message_size.
func errDomainTooLarge(domain string, max int64) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: fmt.Sprintf("message exceeds the size limit of %s (%d bytes)", domain, max)}
}

// cachedRefusal repeats the customer server's earlier refusal of a recipient.
func cachedRefusal(r negcache.Reply) *smtp.SMTPError {
	return &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCode(r.Enhanced), Message: r.Message}
}

// verdictReply is the verdict-to-reply mapping: for a verdict that refuses
// the message (Reject, Tempfail) it returns the reply and the outcome, and
// refused; anything else goes on to the customer's server. The reference
// lets a sender's complaint find our log line; with whyURL (http.public_url
// + "/why/") it also points the sender at a page that explains.
func verdictReply(v scanner.Verdict, queueID, whyURL string) (reply *smtp.SMTPError, outcome Outcome, refused bool) {
	ref := " [ref " + queueID + "]"
	if whyURL != "" {
		ref += " see " + whyURL + queueID
	}
	switch v.Action {
	case scanner.Reject:
		switch v.Reason {
		case verdict.ReasonVirus:
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "message contains a virus (" + replytext.Reply(v.Detail, maxDetailText) + ")" + ref}, OutcomeRejectedVirus, true
		case verdict.ReasonPolicy:
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "message refused by policy (" + replytext.Reply(v.Detail, maxDetailText) + ")" + ref}, OutcomeRejectedPolicy, true
		}
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "message rejected as spam" + ref}, OutcomeRejectedSpam, true
	case scanner.Tempfail:
		return errTempScan, OutcomeTempfailScan, true
	}
	return nil, "", false
}

// deliveredReply tells the sender the customer's server took the message,
// quoting that server's reply.
func deliveredReply(v scanner.Verdict, queueID, downstream string) (*smtp.SMTPError, Outcome) {
	outcome := OutcomeDelivered
	if v.Action == scanner.Tag {
		outcome = OutcomeTagged
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
		Message: "ok, delivered as " + queueID + " (customer server: " + replytext.Reply(downstream, maxDetailText) + ")"}, outcome
}

// quarantinedReply tells the sender we took the message: it is held in
// the recipients' quarantine (committed before this reply), one item per
// recipient. It names the message by the reference message tracking
// finds it under, as our refusals do, and not by the items' ids: those
// count every tenant's held mail, which a sender has no business learning
// from two probes.
func quarantinedReply(queueID string, items int) *smtp.SMTPError {
	for1 := ""
	if items > 1 {
		for1 = fmt.Sprintf(" for %d recipients", items)
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "ok, quarantined" + for1 + " [ref " + queueID + "]"}
}

// relayRefused is the outcome of a message the customer's server refused
// at DATA; the reply is its own (see toSMTP).
func relayRefused(reply *smtp.SMTPError) Outcome {
	if reply.Code < 500 {
		return OutcomeRelayTempfail
	}
	return OutcomeRelayPermfail
}

// addressError picks the reply to an address mailaddr refused, of the
// sender's or a recipient's: control characters and invalid UTF-8 have
// their own texts (an address in Latin-1 was answered "control character",
// which its sender could not find in it), and each keeps its enhanced code
// (RFC 3463: X.1.7 for a sender's, X.1.3 for a recipient's address syntax).
func addressError(err error, sender bool) *smtp.SMTPError {
	invalidUTF8 := errors.Is(err, mailaddr.ErrInvalidUTF8)
	control := errors.Is(err, mailaddr.ErrControl)
	switch {
	case sender && invalidUTF8:
		return errSenderInvalidUTF8
	case invalidUTF8:
		return errInvalidUTF8
	case sender && control:
		return errSenderControlChar
	case sender:
		return errBadSender
	case control:
		return errControlChar
	}
	return errBadAddress
}

// toSMTP is the one place an internal error becomes a reply. Anything we
// did not classify is temporary: a sender retrying is always safe, a wrong
// permanent refusal loses mail.
func toSMTP(log *slog.Logger, err error) *smtp.SMTPError {
	// The relay's error first: it wraps the downstream's raw reply for the
	// logs (a 554 greeting, an unexpected 250), and its own code is what
	// the sender must hear (451 4.4.1 for that greeting, not 554).
	var re *relay.Error
	if errors.As(err, &re) {
		return &smtp.SMTPError{Code: re.Code, EnhancedCode: smtp.EnhancedCode(re.Enhanced), Message: re.Message}
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errTimedOut
	}
	log.Error("unclassified error answered with 451", "err", err)
	return errLocal
}

func replyClass(code int) string {
	switch {
	case code < 300:
		return "2xx"
	case code < 500:
		return "4xx"
	}
	return "5xx"
}
