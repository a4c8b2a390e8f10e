package events

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/mxgrid/mxgrid/internal/batchq"
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
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("trusted_relays[%d]: %q is not a CIDR or address: %w", i, s, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
