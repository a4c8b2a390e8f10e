package dnsresolver

import (
	"errors"
	"fmt"
	"time"

	"github.com/mxgrid/mxgrid/netguard"
)

// Config is the `dns:` section. Every DNS lookup of the node (SPF, DKIM,
// DMARC, DNSBL) goes through the one resolver built from it, so operators
// and tests can point all of them at a chosen server.
type Config struct {
	// Server is the recursive resolver as host:port. Empty means the
	// system's resolvers from /etc/resolv.conf.
	Server string `yaml:"server"`
	// Timeout bounds one lookup, retries included.
	Timeout time.Duration `yaml:"timeout"`
	// CacheSize is the number of answers kept; 0 disables the cache.
	// Answers over 4 KiB are never kept, so it also bounds the memory.
	// Route names have a cache of their own of the same size (Routes).
	CacheSize int `yaml:"cache_size"`
	// CacheTTL is how long an answer is kept. The standard library resolver
	// does not expose record TTLs, so this is an upper bound chosen by the
	// operator rather than the zone's TTL: keep it short (DNSBL listings and
	// DKIM keys change). Past it, an answer is still served, for up to a
	// day, in place of a lookup the server gives no answer to (RFC 8767).
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// NegativeTTL is how long a "no such record" answer is kept (RFC 2308
	// negative caching); usually shorter than CacheTTL.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
}

// DefaultConfig uses the system's resolvers with a small cache.
func DefaultConfig() Config {
	return Config{
		Timeout:     2 * time.Second,
		CacheSize:   10000,
		CacheTTL:    5 * time.Minute,
		NegativeTTL: time.Minute,
	}
}

// Validate reports the first invalid key, named relative to the section.
func (c Config) Validate() error {
	if c.Server != "" {
		if _, err := netguard.ParseTarget(c.Server); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}
	if c.Timeout <= 0 {
		return errors.New("timeout: must be positive")
	}
	if c.CacheSize < 0 {
		return errors.New("cache_size: must not be negative")
	}
	if c.CacheSize > 0 && c.CacheTTL <= 0 {
		return errors.New("cache_ttl: must be positive when cache_size is set")
	}
	if c.NegativeTTL < 0 {
		return errors.New("negative_ttl: must not be negative")
	}
	return nil
}
