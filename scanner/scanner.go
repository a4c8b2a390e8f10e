// Package scanner decides what happens to one message: it parses the
// message once, runs every check concurrently under a deadline, sums the
// symbols the checks emit and applies the domain's policy to get an Action.
//
// Checks report findings (symbols with weights, extra headers, a virus
// name); they never choose SMTP codes. The SMTP front end maps the Verdict's
// Action to a reply in one place.
package scanner

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/mxgrid/mxgrid/verdict"
)

// Action is what the node does with a message.
type Action int

const (
	// Deliver relays the message unchanged apart from our trace headers.
	Deliver Action = iota
	// Tag relays the message with X-Spam-* headers and an optional subject prefix.
	Tag
	// Reject refuses the message with a 5xx during the SMTP session.
	Reject
	// Tempfail answers 4xx so the sender retries later (a check could not run
	// and its on_error says tempfail).
	Tempfail
)

func (a Action) String() string {
	switch a {
	case Deliver:
		return "deliver"
	case Tag:
		return "tag"
	case Reject:
		return "reject"
	case Tempfail:
		return "tempfail"
	}
	return "unknown"
}

// Symbol is one named finding with the weight it adds to the score.
type Symbol struct {
	Name   string  `json:"name"`
	Score  float64 `json:"score"`
	Detail string  `json:"detail,omitempty"`
}

// Header is a header field a check wants added to the relayed message.
type Header struct {
	Name  string
	Value string
}

// Envelope is what the SMTP session knows about a message before its content.
type Envelope struct {
	QueueID  string
	ClientIP netip.Addr
	HELO     string
	MailFrom string
	Rcpts    []string
	Domain   string // the recipient domain the transaction routes for
	TLS      bool
	// DMARCEnforce is the recipient domain's choice to refuse mail that
	// fails DMARC under the sender's p=reject (RFC 7489 6.7); otherwise the
	// failure only adds weight.
	DMARCEnforce bool
}

// Result is what one check found.
type Result struct {
	Symbols []Symbol
	Headers []Header
	// Virus names a malware signature; any non-empty Virus rejects the
	// message with 554 whatever the score.
	Virus string
	// AuthResults are RFC 8601 resinfo strings ("spf=pass smtp.mailfrom=x")
	// that go into our single Authentication-Results header.
	AuthResults []string
	// Reject forces a policy rejection (for example DMARC p=reject when the
	// domain enforces it) with this reason, independent of the score.
	Reject string
	// Calibration, from the check whose training calibrated the score
	// (the statistical model), turns the verdict's score into a spam
	// probability.
	Calibration Calibrator
	// SenderAuthenticated says the envelope sender is who MAIL FROM
	// claims: its domain passed SPF, or a verified DKIM signature is its
	// organisation's. Only such a sender is excused by a sender allow list.
	SenderAuthenticated bool
}

// Calibrator maps a verdict score to the probability that the message is
// spam.
type Calibrator interface {
	Probability(score float64) float64
}

// Check is one test run against every message. Implementations must be safe
// for concurrent use and must honour ctx: the pipeline cancels it at the
// check's deadline and treats a late answer as an error.
type Check interface {
	Name() string
	Check(ctx context.Context, env *Envelope, msg *Message) (Result, error)
}

// ErrBusy is wrapped by a check that could not run for want of a resource
// the node's scans share. The pipeline answers tempfail for it whatever the
// stage's OnError says: with accept, a sender who keeps that resource
// spent would switch the check off for everyone's mail.
var ErrBusy = errors.New("check busy: a node-wide limit is spent")

// OnError says what to do when a check cannot run (infrastructure failure,
// timeout, panic): accept keeps mail flowing with a symbol and a metric,
// tempfail answers 451 so the sender retries.
type OnError string

const (
	OnErrorAccept   OnError = "accept"
	OnErrorTempfail OnError = "tempfail"
)

// Policy holds the per-domain thresholds the score is compared with.
type Policy struct {
	TagScore    float64
	RejectScore float64
	// SubjectTag is prefixed to the Subject of tagged mail when non-empty.
	SubjectTag string
	// TagViruses delivers infected mail tagged instead of refusing it, for
	// customers who quarantine downstream (virus_action: tag).
	TagViruses bool
	// ClientAllowlisted (the client's address is on the domain's allow
	// list) skips the spam and policy verdicts, as in rspamd and Proxmox
	// Mail Gateway; viruses are still caught.
	ClientAllowlisted bool
	// SenderAllowlisted (the envelope sender is on the domain's allow list)
	// skips them only for an authenticated sender (Result.SenderAuthenticated):
	// anyone can write MAIL FROM:<boss@partner.example>, so an allow list
	// that believed it would let any spammer who guessed it through, as
	// SpamAssassin's whitelist_from did before whitelist_auth.
	SenderAllowlisted bool
}

// Verdict is the pipeline's decision for one message.
type Verdict struct {
	Action  Action
	Score   float64
	Symbols []Symbol
	// Reason is the short machine-readable cause (verdict.ReasonSpam, verdict.ReasonVirus,
	// verdict.ReasonPolicy, verdict.ReasonCheckError), verdict.ReasonNone for a clean message.
	Reason verdict.Reason
	// Detail is safe to show the sender (signature name, policy reason).
	Detail      string
	Headers     []Header
	AuthResults []string
	// SenderAuthenticated: some check vouched for the envelope sender
	// (Result.SenderAuthenticated).
	SenderAuthenticated bool
	// Incomplete lists checks that failed and were skipped under on_error=accept.
	Incomplete []string
	// Probability is the calibrated probability that the message is spam,
	// given its score; meaningful only when Calibrated (the model ran).
	Probability float64
	Calibrated  bool
}

// TopSymbols returns up to n symbols with the largest absolute weight,
// for logs and events.
func (v *Verdict) TopSymbols(n int) []Symbol {
	s := append([]Symbol(nil), v.Symbols...)
	// slices, not sort.SliceStable, whose reflection allocates a swapper;
	// the same order: by weight, ties as they came.
	slices.SortStableFunc(s, byWeight)
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// byWeight orders symbols by the size of their score, largest first.
func byWeight(a, b Symbol) int {
	switch {
	case abs(a.Score) > abs(b.Score):
		return -1
	case abs(b.Score) > abs(a.Score):
		return 1
	}
	return 0
}

// SymbolNames renders symbols as "NAME(1.50),OTHER(-0.20)" for headers and logs.
func SymbolNames(syms []Symbol) string {
	size := 0
	for _, s := range syms {
		size += len(s.Name) + len("(-0.00),")
	}
	var b strings.Builder
	b.Grow(size) // scores past ±9.99 take more: rare, and Builder grows
	// The scores are appended to num, not formatted into strings of their
	// own: this runs for every message's log line and header.
	var num [32]byte
	for i, s := range syms {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.Name)
		b.WriteByte('(')
		b.Write(strconv.AppendFloat(num[:0], s.Score, 'f', 2, 64))
		b.WriteByte(')')
	}
	return b.String()
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
