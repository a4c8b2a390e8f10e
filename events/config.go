package events

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Config is the `events:` section.
type Config struct {
	// Buffer is how many events wait in memory for the writer. When it is
	// full the oldest event is dropped (and counted): mail never waits.
	Buffer int `yaml:"buffer"`
	// Retention is how long events are kept ("720h" = 30 days); older ones
	// are pruned in the background.
	Retention time.Duration `yaml:"retention"`
	// TrustedRelays are CIDRs of forwarders whose Received headers are
	// believed: for mail arriving from them the source is the first
	// untrusted hop of the Received chain (see SourceIP). A single address
	// may omit the prefix length.
	TrustedRelays []string `yaml:"trusted_relays"`

	// BatchSize bounds one store write.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest an event waits before it is written
	// when fewer than BatchSize are pending; also the retry period while
	// the store fails.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// PruneInterval is how often events older than Retention are deleted.
	PruneInterval time.Duration `yaml:"prune_interval"`
	// ShutdownTimeout bounds the final flush when the node stops.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// DefaultConfig keeps 30 days and buffers a burst of 10,000 events.
func DefaultConfig() Config {
	return Config{
		Buffer:          10_000,
		Retention:       30 * 24 * time.Hour,
		BatchSize:       500,
		FlushInterval:   time.Second,
		PruneInterval:   time.Hour,
		ShutdownTimeout: 10 * time.Second,
	}
}

// Validate checks the section; messages name the key.
func (c Config) Validate() error {
	if c.Buffer <= 0 {
		return errors.New("buffer: must be positive")
	}
	if c.Retention < time.Hour {
		return errors.New("retention: must be at least 1h")
	}
	if _, err := c.Trusted(); err != nil {
		return err
	}
	if c.BatchSize <= 0 {
		return errors.New("batch_size: must be positive")
	}
	if c.FlushInterval <= 0 {
		return errors.New("flush_interval: must be positive")
	}
	if c.PruneInterval <= 0 {
		return errors.New("prune_interval: must be positive")
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("shutdown_timeout: must be positive")
	}
	return nil
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
