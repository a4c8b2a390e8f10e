package events

import (
	"fmt"
	"net/netip"

	"github.com/mxgrid/mxgrid/internal/batchq"
	"github.com/mxgrid/mxgrid/netguard"
)

// Config is the `events:` section: the queue's tuning and retention
// (buffer, retention, batch_size, flush_interval, prune_interval,
// shutdown_timeout) and the relays whose Received fields are believed.
type Config struct {
	batchq.Tuning `yaml:",inline"`
	// TrustedRelays are CIDRs of forwarders whose Received headers are
	// believed: for mail arriving from them the source is the first
	// untrusted hop of the Received chain (see SourceIP). A single address
	// may omit the prefix length.
	TrustedRelays []string `yaml:"trusted_relays"`
}

// DefaultConfig keeps 30 days and buffers a burst of 10,000 events.
func DefaultConfig() Config {
	return Config{Tuning: batchq.DefaultTuning()}
}

// Validate checks the section; messages name the key.
func (c Config) Validate() error {
	if err := c.Tuning.Validate(); err != nil {
		return err
	}
	_, err := c.Trusted()
	return err
}

// Trusted parses TrustedRelays.
func (c Config) Trusted() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(c.TrustedRelays))
	for i, s := range c.TrustedRelays {
		p, err := netguard.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_relays[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}
