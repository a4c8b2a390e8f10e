package geo

import (
	"errors"
	"fmt"
	"time"

	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/netguard"
)

// Config is the `geo:` section.
type Config struct {
	// Database is the City or Country mmdb file: GeoIP2/GeoLite2 and DB-IP
	// (MaxMind schema) or ip-location-db (flat schema), detected from the
	// file's metadata. Empty: the embedded DB-IP Lite country database
	// answers (country only; `mxgrid geoip update` fetches a city one).
	Database string `yaml:"database"`
	// ASNDatabase optionally adds the autonomous system number and
	// organisation (GeoLite2-ASN, DB-IP ASN Lite or ip-location-db asn).
	ASNDatabase string `yaml:"asn_database"`
	// ReloadInterval is how often the files are checked for replacement
	// (size, modification time or inode changed); a changed file is
	// reloaded without failing a lookup.
	ReloadInterval time.Duration `yaml:"reload_interval"`

	// CacheSize is the number of addresses the in-process LRU holds; 0
	// disables it.
	CacheSize int `yaml:"cache_size"`

	// Memcached lists host:port servers shared by the cluster's nodes; keys
	// are spread over them by rendezvous hashing, so losing one server
	// moves only its own keys. Empty: no shared cache.
	Memcached []string `yaml:"memcached"`
	// MemcachedTimeout bounds each memcached call (gomemcache takes no
	// context); a slower server is skipped and the file answers.
	MemcachedTimeout time.Duration `yaml:"memcached_timeout"`
	// TTL is how long a located address stays in memcached.
	TTL time.Duration `yaml:"ttl"`
	// NegativeTTL is how long "the database does not know this address"
	// stays in memcached.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
}

// DefaultConfig uses the embedded country database and sizes the caches for
// a busy node.
func DefaultConfig() Config {
	return Config{
		ReloadInterval:   time.Minute,
		CacheSize:        100_000,
		MemcachedTimeout: 50 * time.Millisecond,
		TTL:              24 * time.Hour,
		NegativeTTL:      time.Hour,
	}
}

// maxMemcachedTTL is memcached's limit for a relative expiration: larger
// values are read as an absolute Unix time, i.e. long expired.
const maxMemcachedTTL = 30 * 24 * time.Hour

// Validate checks the section; messages name the key.
func (c Config) Validate() error {
	// Each tick stats both files and reports their state: a shorter
	// interval keeps a core busy, as 71fa920 found of the store's loops.
	if c.ReloadInterval < periodic.MinInterval {
		return fmt.Errorf("reload_interval: at least %v, got %v", periodic.MinInterval, c.ReloadInterval)
	}
	if c.CacheSize < 0 {
		return errors.New("cache_size: must not be negative")
	}
	for i, s := range c.Memcached {
		if _, err := netguard.ParseTarget(s); err != nil {
			return fmt.Errorf("memcached[%d]: %w", i, err)
		}
	}
	if len(c.Memcached) > 0 {
		if c.MemcachedTimeout <= 0 {
			return errors.New("memcached_timeout: must be positive")
		}
		if c.TTL < time.Second || c.TTL > maxMemcachedTTL {
			return errors.New("ttl: must be between 1s and 720h (memcached's relative expiry limit)")
		}
		if c.NegativeTTL < time.Second || c.NegativeTTL > maxMemcachedTTL {
			return errors.New("negative_ttl: must be between 1s and 720h (memcached's relative expiry limit)")
		}
	}
	return nil
}
