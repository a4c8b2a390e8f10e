// Package tracking answers "where is my mail?": one Record per recipient
// and transaction, written off the SMTP path through a bounded queue
// (mail never waits for it), searched per tenant.
//
// The package holds the contract (Record, Status, Filter, Cursor) and the
// Recorder; persistence is behind the small Store interface the Recorder
// and the search own, so a column store could take the records later
// without touching smtpd or the API.
package tracking

import (
	"net/netip"
	"time"

	"github.com/mxgrid/mxgrid/verdict"
)

// Status is what the sender was told about one recipient.
type Status string

const (
	// StatusDelivered: the customer's server accepted (Downstream holds its
	// reply), or, for a tagged message, accepted it tagged.
	StatusDelivered Status = "delivered"
	// StatusRefused: a 5xx to the sender, ours (spam, virus, policy) or the
	// customer server's.
	StatusRefused Status = "refused"
	// StatusDeferred: a 4xx to the sender, who will retry (DeferReason
	// says why).
	StatusDeferred Status = "deferred"
	// StatusQuarantined: accepted into the quarantine, not delivered.
	StatusQuarantined Status = "quarantined"
)

// ParseStatus reads a status from an API filter.
func ParseStatus(s string) (Status, bool) {
	switch st := Status(s); st {
	case StatusDelivered, StatusRefused, StatusDeferred, StatusQuarantined:
		return st, true
	}
	return "", false
}

// DeferReason is why a recipient was deferred.
type DeferReason string

const (
	// DeferUnreachable: the customer's server could not be connected to.
	DeferUnreachable DeferReason = "customer_unreachable"
	// DeferTimeout: the customer's server stopped answering mid-transaction.
	DeferTimeout DeferReason = "customer_timeout"
	// DeferMaybeDelivered: the customer's server was lost (the connection
	// closed, or no reply within relay.data_timeout) after the message's
	// end was sent, so it may have taken the message and the sender's
	// retry may deliver it twice: Postfix's "message may be sent more
	// than once".
	DeferMaybeDelivered DeferReason = "customer_lost_after_data"
	// DeferCustomerTempfail: the customer's server answered 4xx.
	DeferCustomerTempfail DeferReason = "customer_tempfail"
	// DeferScan: a check failed under on_error=tempfail.
	DeferScan DeferReason = "scan_tempfail"
	// DeferLocal: the node could not take the message now (memory budget,
	// shutting down).
	DeferLocal DeferReason = "node_busy"
	// DeferClientGone: the sending client did not complete the transfer
	// of its message: it broke it off (closed the connection, or gave a
	// BDAT transfer up), and nothing was answered (ReplyCode 0), or it
	// did not send it within data_timeout (421 4.4.2). Nothing was
	// delivered, and the client keeps the message to retry.
	DeferClientGone DeferReason = "client_gone"
)

// Record is one recipient's outcome of one transaction.
type Record struct {
	// ID is assigned by the store; 0 before.
	ID       int64
	Time     time.Time
	Node     string
	QueueID  string
	ClientIP netip.Addr
	HELO     string
	Sender   string
	// Recipient is the full address as accepted.
	Recipient string
	// Domain is the recipient domain's name as provisioned, for display
	// and metrics; DomainID is what identifies it.
	Domain string
	// DomainID and CustomerID scope the record (a reseller through its
	// customers): a tenant finds only records of its own ids, whatever the
	// names say. Both are 0 for the config file's domains.
	DomainID   int64
	CustomerID int64
	Size       int64
	MessageID  string
	// Subject is empty when tracking.store_subjects is off.
	Subject string
	// Action is the verdict's scanner.Action ("" when no scan happened).
	Action string
	// Reason is why the verdict decided (spam, virus, policy...).
	Reason  verdict.Reason
	Score   float64
	Symbols []string
	Status  Status
	// ReplyCode and Reply are what we answered the sender: 0 and "" when
	// it broke the transfer off before any answer (DeferClientGone).
	ReplyCode int
	Reply     string
	// Downstream is the customer server's own reply, as it wrote it: to
	// the message, or its refusal of the recipient at RCPT ("" when it
	// gave none). Reply may differ: a 421 of its is our 451.
	Downstream  string
	Reference   string
	DeferReason DeferReason
	TLSIn       bool
	TLSOut      bool
	Duration    time.Duration
}

// Scope is who is asking: the operator sees everything, a reseller only
// its customers' records.
type Scope struct {
	Operator   bool
	ResellerID int64
}

// Filter narrows a search. Zero fields do not filter.
type Filter struct {
	Scope      Scope
	DomainID   int64
	CustomerID int64
	Recipient  string
	// Sender is matched as typed and in each of SenderSpellings: smtpd
	// logs a sender as it was written, so one sender of an IDN domain can
	// be logged at its U-label and at its A-label.
	Sender          string
	SenderSpellings []string
	QueueID         string
	MessageID       string
	Reference       string
	Status          Status
	Since           time.Time
	Until           time.Time
	// After continues a previous page (newest first).
	After Cursor
	Limit int
}

// MaxLimit bounds one page.
const MaxLimit = 500

// Waiting is mail a sender is still retrying: deferrals of one recipient
// from one sender (and, once DATA was reached, one Message-ID) with no
// later success. RCPT-time deferrals carry no Message-ID: they are matched
// on sender and recipient alone.
type Waiting struct {
	Domain     string
	DomainID   int64
	CustomerID int64
	Recipient  string
	Sender     string
	MessageID  string
	FirstSeen  time.Time
	LastSeen   time.Time
	Attempts   int
	LastReason DeferReason
	LastReply  string
}

// WaitingFilter narrows the deferral view.
type WaitingFilter struct {
	Scope      Scope
	DomainID   int64
	CustomerID int64
	// Since is how far back deferrals are looked at.
	Since time.Time
}

// MaxWaitingRows bounds the deferral rows one view reads.
const MaxWaitingRows = 20000
