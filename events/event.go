// Package events records where spam and viruses come from: the SMTP path
// hands each refused or tagged message's source to a bounded recorder that
// never blocks mail, and a background worker geolocates and stores them.
package events

import (
	"net/netip"
	"time"

	"github.com/mxgrid/mxgrid/verdict"
)

// Event is one refused or tagged message's source.
type Event struct {
	Time time.Time
	// ClientIP is the connecting address (after the PROXY protocol).
	ClientIP netip.Addr
	// Received are the message's Received field values, topmost first, as
	// they arrived (before this node adds its own). Only used when ClientIP
	// is one of events.trusted_relays: the recorded source is then the
	// first untrusted hop (SourceIP), which Record works out before it
	// queues the event without them.
	Received []string
	// source is the address recorded, set by Record.
	source   netip.Addr
	Node     string
	Provider string
	Domain   string
	DomainID int64 // the stored domain's; 0 for config domains
	// Verdict is the scanner's reason: spam (tagged or rejected on score),
	// virus or policy.
	Verdict verdict.Reason
	Action  string // tag or reject
	Score   float64
	Symbols []string // the top symbols, most significant first
}
