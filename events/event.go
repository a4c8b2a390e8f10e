// Package events records where spam and viruses come from: the SMTP path
// hands each refused or tagged message's source to a bounded recorder that
// never blocks mail, and a background worker geolocates and stores them.
package events

import (
	"net/netip"
	"time"
)

// Event is one refused or tagged message's source.
type Event struct {
	Time     time.Time
	ClientIP netip.Addr
	Node     string
	Provider string
	Domain   string
	// Verdict is "spam" (tagged or rejected on score), "virus" or "policy".
	Verdict string
	Action  string // tag or reject
	Score   float64
	Symbols []string // the top symbols, most significant first
}
