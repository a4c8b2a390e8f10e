package smtpd

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/negcache"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/verdict"
)

type replyCase struct {
	name     string
	reply    *smtp.SMTPError
	code     int
	enhanced smtp.EnhancedCode
	prefix   string
	outcome  Outcome // for the DATA replies that end a transaction
}

// replyTable is every reply the session gives; TestReplyTableIsComplete
// keeps it so.
func replyTable() []replyCase {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	verdictCase := func(a scanner.Action, r verdict.Reason, detail string) replyCase {
		reply, outcome, refused := verdictReply(scanner.Verdict{Action: a, Reason: r, Detail: detail}, "Q1", "")
		if !refused {
			return replyCase{}
		}
		return replyCase{reply: reply, outcome: outcome}
	}
	with := func(c replyCase, name string, code int, enh smtp.EnhancedCode, prefix string) replyCase {
		c.name, c.code, c.enhanced, c.prefix = name, code, enh, prefix
		return c
	}
	delivered, deliveredOutcome := deliveredReply(scanner.Verdict{Action: scanner.Deliver}, "Q1", "2.0.0 queued\r\nas X")
	tagged, taggedOutcome := deliveredReply(scanner.Verdict{Action: scanner.Tag}, "Q1", "ok")
	whySpam, whySpamOutcome, _ := verdictReply(scanner.Verdict{Action: scanner.Reject, Reason: verdict.ReasonSpam}, "Q1", "https://filter.example/why/")
	return []replyCase{
		{name: "errUnknownDomain", reply: errUnknownDomain, code: 550, enhanced: smtp.EnhancedCode{5, 7, 1}, prefix: "relay access denied"},
		{name: "errDomainUnservable", reply: errDomainUnservable, code: 451, enhanced: smtp.EnhancedCode{4, 3, 5}, prefix: "domain configuration error"},
		{name: "errTenantsUnconfirmed", reply: errTenantsUnconfirmed, code: 451, enhanced: smtp.EnhancedCode{4, 3, 0}, prefix: "domain not in this node's domain list"},
		{name: "errUnknownUser", reply: errUnknownUser, code: 550, enhanced: smtp.EnhancedCode{5, 1, 1}, prefix: "recipient address rejected: user unknown"},
		{name: "errClientTooManyUnknown", reply: errClientTooManyUnknown, code: 421, enhanced: smtp.EnhancedCode{4, 7, 0}, prefix: "too many unknown recipients from your address"},
		{name: "errNoPostmaster", reply: errNoPostmaster, code: 550, enhanced: smtp.EnhancedCode{5, 1, 1}, prefix: "this filter keeps no mailbox of its own"},
		{name: "errBlocked", reply: errBlocked, code: 550, enhanced: smtp.EnhancedCode{5, 7, 1}, prefix: "sender blocked by the recipient's policy"},
		{name: "errOtherRoute", reply: errOtherRoute, code: 452, enhanced: smtp.EnhancedCode{4, 5, 3}, prefix: "recipient routed elsewhere"},
		{name: "errOtherTenant", reply: errOtherTenant, code: 452, enhanced: smtp.EnhancedCode{4, 5, 3}, prefix: "recipient belongs to another customer"},
		{name: "errOtherPolicy", reply: errOtherPolicy, code: 452, enhanced: smtp.EnhancedCode{4, 5, 3}, prefix: "recipient's domain has another filtering policy"},
		{name: "errOtherQuarantine", reply: errOtherQuarantine, code: 452, enhanced: smtp.EnhancedCode{4, 5, 3}, prefix: "recipient's domain keeps its own quarantine"},
		{name: "errShuttingDown", reply: errShuttingDown, code: 421, enhanced: smtp.EnhancedCode{4, 3, 2}, prefix: "service shutting down, try another MX"},
		{name: "errBadAddress", reply: errBadAddress, code: 501, enhanced: smtp.EnhancedCode{5, 1, 3}, prefix: "bad recipient address syntax"},
		{name: "errBadSender", reply: errBadSender, code: 501, enhanced: smtp.EnhancedCode{5, 1, 7}, prefix: "bad sender address syntax"},
		{name: "errControlChar", reply: errControlChar, code: 501, enhanced: smtp.EnhancedCode{5, 1, 3}, prefix: "control character in address"},
		{name: "errSenderControlChar", reply: errSenderControlChar, code: 501, enhanced: smtp.EnhancedCode{5, 1, 7}, prefix: "control character in address"},
		{name: "errInvalidUTF8", reply: errInvalidUTF8, code: 501, enhanced: smtp.EnhancedCode{5, 1, 3}, prefix: "invalid UTF-8 in address"},
		{name: "errSenderInvalidUTF8", reply: errSenderInvalidUTF8, code: 501, enhanced: smtp.EnhancedCode{5, 1, 7}, prefix: "invalid UTF-8 in address"},
		{name: "errNeedsUTF8", reply: errNeedsUTF8, code: 553, enhanced: smtp.EnhancedCode{5, 6, 7}, prefix: "non-ASCII address without SMTPUTF8"},
		{name: "errSourceRouted", reply: errSourceRouted, code: 550, enhanced: smtp.EnhancedCode{5, 7, 1}, prefix: "source routing (@, % or ! in the local part) is not accepted"},
		{name: "errTooManyUnknown", reply: errTooManyUnknown, code: 421, enhanced: smtp.EnhancedCode{4, 7, 0}, prefix: "too many unknown recipients"},
		{name: "errTooManyAbandoned", reply: errTooManyAbandoned, code: 421, enhanced: smtp.EnhancedCode{4, 7, 0}, prefix: "too many transactions without a message"},
		{name: "errTooLarge", reply: errTooLarge, code: 552, enhanced: smtp.EnhancedCode{5, 3, 4}, prefix: "message exceeds the size limit"},
		{name: "errBareNewline", reply: errBareNewline, code: 550, enhanced: smtp.EnhancedCode{5, 5, 2}, prefix: "message contains bare CR or LF"},
		{name: "errHeaderTooLarge", reply: errHeaderTooLarge, code: 552, enhanced: smtp.EnhancedCode{5, 3, 4}, prefix: "a header of the message"},
		{name: "errTooManyHops", reply: errTooManyHops, code: 554, enhanced: smtp.EnhancedCode{5, 4, 6}, prefix: "too many hops"},
		{name: "errNoResources", reply: errNoResources, code: 452, enhanced: smtp.EnhancedCode{4, 3, 1}, prefix: "insufficient system resources"},
		{name: "errHoldUnknown", reply: errHoldUnknown, code: 451, enhanced: smtp.EnhancedCode{4, 3, 0}, prefix: "quarantine storage did not confirm the message"},
		{name: "errTempScan", reply: errTempScan, code: 451, enhanced: smtp.EnhancedCode{4, 7, 1}, prefix: "message could not be fully scanned"},
		{name: "errTimedOut", reply: errTimedOut, code: 451, enhanced: smtp.EnhancedCode{4, 4, 5}, prefix: "timed out, try again later"},
		{name: "errDataTimeout", reply: errDataTimeout, code: 421, enhanced: smtp.EnhancedCode{4, 4, 2}, prefix: "message not received within the time limit"},
		{name: "errLocal", reply: errLocal, code: 451, enhanced: smtp.EnhancedCode{4, 3, 0}, prefix: "local error, try again later"},
		{name: "errTooManyConnections", reply: errTooManyConnections, code: 421, enhanced: smtp.EnhancedCode{4, 7, 0}, prefix: "too many connections, try again later"},
		{name: "errProxyRefused", reply: errProxyRefused, code: 554, enhanced: smtp.EnhancedCode{5, 7, 0}, prefix: "PROXY protocol not accepted from your address"},
		{name: "errGoingAway", reply: errGoingAway, code: 421, enhanced: smtp.EnhancedCode{4, 3, 2}, prefix: "shutting down, try another MX"},
		{name: "errDomainTooLarge", reply: errDomainTooLarge("example.org", 1000), code: 552, enhanced: smtp.EnhancedCode{5, 3, 4}, prefix: "message exceeds the size limit of example.org (1000 bytes)"},
		{name: "cachedRefusal", reply: cachedRefusal(negcache.Reply{Code: 550, Enhanced: [3]int{5, 1, 1}, Message: "no such user"}), code: 550, enhanced: smtp.EnhancedCode{5, 1, 1}, prefix: "no such user"},
		{name: "addressError", reply: addressError(errors.New("syntax"), true), code: 501, enhanced: smtp.EnhancedCode{5, 1, 7}, prefix: "bad sender address syntax"},
		{name: "addressError recipient control", reply: addressError(mailaddr.ErrControl, false), code: 501, enhanced: smtp.EnhancedCode{5, 1, 3}, prefix: "control character in address"},
		{name: "addressError sender control", reply: addressError(mailaddr.ErrControl, true), code: 501, enhanced: smtp.EnhancedCode{5, 1, 7}, prefix: "control character in address"},
		{name: "addressError recipient invalid UTF-8", reply: addressError(mailaddr.ErrInvalidUTF8, false), code: 501, enhanced: smtp.EnhancedCode{5, 1, 3}, prefix: "invalid UTF-8 in address"},
		{name: "addressError sender invalid UTF-8", reply: addressError(mailaddr.ErrInvalidUTF8, true), code: 501, enhanced: smtp.EnhancedCode{5, 1, 7}, prefix: "invalid UTF-8 in address"},
		{name: "toSMTP relay error", reply: toSMTP(discard, fmt.Errorf("rcpt: %w", &relay.Error{Code: 451, Enhanced: [3]int{4, 4, 1}, Message: "customer mail server unreachable, try again later"})), code: 451, enhanced: smtp.EnhancedCode{4, 4, 1}, prefix: "customer mail server unreachable"},
		with(verdictCase(scanner.Reject, verdict.ReasonVirus, "Eicar\r\nInjected"), "verdictReply virus", 554, smtp.EnhancedCode{5, 7, 1}, "message contains a virus (Eicar Injected) [ref Q1]"),
		with(verdictCase(scanner.Reject, verdict.ReasonPolicy, "DMARC p=reject"), "verdictReply policy", 550, smtp.EnhancedCode{5, 7, 1}, "message refused by policy (DMARC p=reject) [ref Q1]"),
		with(verdictCase(scanner.Reject, verdict.ReasonSpam, ""), "verdictReply spam", 550, smtp.EnhancedCode{5, 7, 1}, "message rejected as spam [ref Q1]"),
		{name: "verdictReply spam with why", reply: whySpam, code: 550, enhanced: smtp.EnhancedCode{5, 7, 1},
			prefix: "message rejected as spam [ref Q1] see https://filter.example/why/Q1", outcome: whySpamOutcome},
		with(verdictCase(scanner.Tempfail, verdict.ReasonCheckError, "clamav unavailable"), "verdictReply tempfail", 451, smtp.EnhancedCode{4, 7, 1}, "message could not be fully scanned"),
		{name: "quarantinedReply", reply: quarantinedReply("Q1", 1), code: 250, enhanced: smtp.EnhancedCode{2, 0, 0}, prefix: "ok, quarantined [ref Q1]"},
		{name: "quarantinedReply two recipients", reply: quarantinedReply("Q1", 2), code: 250, enhanced: smtp.EnhancedCode{2, 0, 0}, prefix: "ok, quarantined for 2 recipients [ref Q1]"},
		{name: "deliveredReply", reply: delivered, code: 250, enhanced: smtp.EnhancedCode{2, 0, 0}, prefix: "ok, delivered as Q1 (customer server: 2.0.0 queued as X)", outcome: deliveredOutcome},
		{name: "deliveredReply tagged", reply: tagged, code: 250, enhanced: smtp.EnhancedCode{2, 0, 0}, prefix: "ok, delivered as Q1 (customer server: ok)", outcome: taggedOutcome},
	}
}

func TestReplies(t *testing.T) {
	wantOutcome := map[string]Outcome{
		"verdictReply virus": OutcomeRejectedVirus, "verdictReply policy": OutcomeRejectedPolicy,
		"verdictReply spam": OutcomeRejectedSpam, "verdictReply tempfail": OutcomeTempfailScan,
		"verdictReply spam with why": OutcomeRejectedSpam,
		"deliveredReply":             OutcomeDelivered, "deliveredReply tagged": OutcomeTagged,
	}
	for _, tt := range replyTable() {
		t.Run(tt.name, func(t *testing.T) {
			if tt.reply == nil {
				t.Fatal("no reply")
			}
			if tt.reply.Code != tt.code || tt.reply.EnhancedCode != tt.enhanced || !strings.HasPrefix(tt.reply.Message, tt.prefix) {
				t.Errorf("reply = %d %v %q, want %d %v %q...", tt.reply.Code, tt.reply.EnhancedCode, tt.reply.Message, tt.code, tt.enhanced, tt.prefix)
			}
			if strings.ContainsAny(tt.reply.Message, "\r\n") {
				t.Errorf("reply text %q spans lines", tt.reply.Message)
			}
			if tt.outcome != wantOutcome[tt.name] {
				t.Errorf("outcome = %q, want %q", tt.outcome, wantOutcome[tt.name])
			}
		})
	}
}

// A verdict that lets the message through has no refusal reply.
func TestVerdictReplyLetsDeliveriesThrough(t *testing.T) {
	for _, a := range []scanner.Action{scanner.Deliver, scanner.Tag} {
		if reply, outcome, refused := verdictReply(scanner.Verdict{Action: a, Reason: verdict.ReasonSpam}, "Q1", ""); refused {
			t.Errorf("%v refused with %v (%s)", a, reply, outcome)
		}
	}
	if got := relayRefused(&smtp.SMTPError{Code: 452}); got != OutcomeRelayTempfail {
		t.Errorf("452 from the customer's server: %s", got)
	}
	if got := relayRefused(&smtp.SMTPError{Code: 550}); got != OutcomeRelayPermfail {
		t.Errorf("550 from the customer's server: %s", got)
	}
}

// The lines written outside go-smtp are byte-for-byte what they were.
func TestRawReplies(t *testing.T) {
	tests := []struct {
		reply    *smtp.SMTPError
		hostname string
		want     string
	}{
		{errTooManyConnections, "mx.test", "421 4.7.0 mx.test too many connections, try again later\r\n"},
		{errProxyRefused, "", "554 5.7.0 PROXY protocol not accepted from your address\r\n"},
		{errGoingAway, "mx.test", "421 4.3.2 mx.test shutting down, try another MX\r\n"},
	}
	for _, tt := range tests {
		if got := string(rawReply(tt.reply, tt.hostname)); got != tt.want {
			t.Errorf("rawReply = %q, want %q", got, tt.want)
		}
	}
}

// TestReplyTableIsComplete: every reply declared in reply.go is in the
// table, and no other file of the package builds one.
func TestReplyTableIsComplete(t *testing.T) {
	listed := map[string]bool{}
	for _, c := range replyTable() {
		listed[strings.Fields(c.name)[0]] = true
	}
	fset := token.NewFileSet()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		{
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit:
					if sel, ok := n.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "SMTPError" && path != "reply.go" {
						t.Errorf("%s: an SMTP reply built outside reply.go", fset.Position(n.Pos()))
					}
				case *ast.ValueSpec:
					for _, name := range n.Names {
						if path == "reply.go" && strings.HasPrefix(name.Name, "err") && !listed[name.Name] {
							t.Errorf("reply %s is not in replyTable", name.Name)
						}
					}
				case *ast.FuncDecl:
					if path == "reply.go" && n.Type.Results != nil && len(n.Type.Results.List) > 0 && isSMTPErrorPtr(n.Type.Results.List[0].Type) && !listed[n.Name.Name] {
						t.Errorf("reply function %s is not in replyTable", n.Name.Name)
					}
				}
				return true
			})
		}
	}
}

func isSMTPErrorPtr(e ast.Expr) bool {
	star, ok := e.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "SMTPError"
}
