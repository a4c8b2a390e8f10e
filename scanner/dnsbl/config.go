package dnsbl

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/scanner"
)

// Zone is one DNS blocklist.
type Zone struct {
	// Zone is the list's DNS zone, e.g. zen.spamhaus.org.
	Zone string `yaml:"zone"`
	// Symbol names the finding; default RBL_<ZONE> for IP zones and
	// URIBL_<ZONE> for domain zones.
	Symbol string `yaml:"symbol"`
	// Weights maps return codes to weights, e.g. "127.0.0.2": 3.0. Codes
	// not listed are ignored: lists use some (Spamhaus' 127.255.255.x) to
	// say "query refused", not "listed".
	Weights map[string]float64 `yaml:"weights"`
}

// Config is the `dnsbl:` section.
type Config struct {
	// IPZones are queried with the client IP (RFC 5782 2.1, 2.4).
	IPZones []Zone `yaml:"ip_zones"`
	// DomainZones are queried with the registrable domain of each URL in
	// the body (RFC 5782 2.3).
	DomainZones []Zone `yaml:"domain_zones"`
	// StageConfig holds on_error and timeout. The timeout bounds all
	// lookups of one message; unanswered ones count as not listed.
	scanner.StageConfig `yaml:",inline"`
	// MaxDomains bounds the URL domains looked up per message.
	MaxDomains int `yaml:"max_domains"`
	// MaxParallel bounds the lookups in flight per message.
	MaxParallel int `yaml:"max_parallel"`
}

// Symbols are the symbols the configured zones emit, each with its
// largest weight: a zone's weights are set per return code in its own
// entry, never in scanner.weights.
func (c Config) Symbols() map[string]float64 {
	out := map[string]float64{}
	add := func(zones []Zone, prefix string) {
		for _, z := range zones {
			name := symbolFor(z, prefix)
			for _, w := range z.Weights {
				out[name] = max(out[name], w)
			}
		}
	}
	add(c.IPZones, "RBL_")
	add(c.DomainZones, "URIBL_")
	return out
}

// DefaultConfig queries no zone: which lists may be used, and at what
// volume without a paid feed, is the operator's decision.
func DefaultConfig() Config {
	return Config{StageConfig: scanner.StageConfig{OnError: scanner.OnErrorAccept, Timeout: 2 * time.Second}, MaxDomains: 20, MaxParallel: 16}
}

// Validate reports the first invalid key, named relative to the section.
func (c Config) Validate() error {
	for i, z := range c.IPZones {
		if err := z.validate(); err != nil {
			return fmt.Errorf("ip_zones[%d].%w", i, err)
		}
	}
	for i, z := range c.DomainZones {
		if err := z.validate(); err != nil {
			return fmt.Errorf("domain_zones[%d].%w", i, err)
		}
	}
	if err := c.StageConfig.Validate(); err != nil {
		return err
	}
	switch {
	case c.Timeout <= 0:
		return errors.New("timeout: must be positive")
	case c.MaxDomains < 0:
		return errors.New("max_domains: must not be negative")
	case c.MaxParallel < 1:
		return errors.New("max_parallel: must be at least 1")
	}
	return nil
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// listError holds the codes lists answer for a query they refuse, not a
// listing: Spamhaus' 127.255.255.252 (a zone name mistyped), .254 (asked
// through a public resolver) and .255 (over the free volume).
var listError = netip.MustParsePrefix("127.255.255.0/24")

func (z Zone) validate() error {
	if z.Zone == "" || strings.ContainsAny(z.Zone, " /:@") || strings.HasPrefix(z.Zone, ".") || !strings.Contains(z.Zone, ".") {
		return fmt.Errorf("zone: %q is not a DNS zone", z.Zone)
	}
	if len(z.Weights) == 0 {
		return errors.New("weights: at least one return code is needed")
	}
	for code := range z.Weights {
		a, err := netip.ParseAddr(code)
		if err != nil || !loopback.Contains(a) {
			// RFC 5782 2.1: answers are in 127.0.0.0/8.
			return fmt.Errorf("weights: %q is not a return code in 127.0.0.0/8", code)
		}
		if listError.Contains(a) {
			return fmt.Errorf("weights: %q is a list's error code (127.255.255.0/24), not a listing", code)
		}
	}
	return nil
}
