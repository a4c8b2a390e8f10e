package smtpd

import (
	"context"
	"errors"
	"log/slog"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/relay"
)

// Replies the session gives of its own accord. Each is a bare *smtp.SMTPError:
// go-smtp type-asserts (not errors.As) and turns anything else into a
// permanent 554 that leaks internal text.
var (
	errUnknownDomain  = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "relay access denied: we do not accept mail for this domain"}
	errUnknownUser    = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "recipient address rejected: user unknown"}
	errOtherRoute     = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "recipient routed elsewhere, send it in another transaction"}
	errOtherTenant    = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "recipient belongs to another customer, send it in another transaction"}
	errOtherPolicy    = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "recipient's domain has another filtering policy, send it in another transaction"}
	errShuttingDown   = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "service shutting down, try another MX"}
	errBadAddress     = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "bad recipient address syntax"}
	errBadSender      = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "bad sender address syntax"}
	errControlChar    = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "control character in address"}
	errNeedsUTF8      = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "non-ASCII address without SMTPUTF8"}
	errSourceRouted   = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "source routing (@, % or ! in the local part) is not accepted"}
	errTooManyUnknown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "too many unknown recipients, closing connection"}
	errBareNewline    = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "message contains bare CR or LF, use CRLF line endings"}
	errTooManyHops    = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 4, 6}, Message: "too many hops (Received fields), mail loop?"}
	errTempScan       = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "message could not be fully scanned, try again later"}
)

// addressError picks the reply to an address mailaddr refused: control
// characters have their own, whichever command they came with.
func addressError(err error, syntax *smtp.SMTPError) *smtp.SMTPError {
	if errors.Is(err, mailaddr.ErrControl) {
		return errControlChar
	}
	return syntax
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
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 5}, Message: "timed out, try again later"}
	}
	log.Error("unclassified error answered with 451", "err", err)
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "local error, try again later"}
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
