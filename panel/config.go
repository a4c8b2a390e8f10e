package panel

import (
	"errors"
	"time"
)

// Config is the `panel:` section.
type Config struct {
	// SessionKeyFile holds the key that signs session cookies (32+ random
	// characters). Empty: each node makes its own in data_dir, so a session
	// works on the node that made it only. Nodes behind one hostname (a
	// load balancer) must share one file.
	SessionKeyFile string `yaml:"session_key_file"`
	// SessionTTL is how long a login lasts at most.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// IdleTimeout ends a session not used for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// LockoutFailures failed logins of one account from one client address
	// are free; each further one makes that address wait twice as long as
	// the last, from 1 s up to LockoutDuration.
	LockoutFailures int           `yaml:"lockout_failures"`
	LockoutDuration time.Duration `yaml:"lockout_duration"`
	// RouteTestBurst "Test route" runs a reseller may start at once, then
	// one per RouteTestInterval: each opens a connection from the node, so
	// without a bound the button is a slow port scanner.
	RouteTestBurst    int           `yaml:"route_test_burst"`
	RouteTestInterval time.Duration `yaml:"route_test_interval"`
	// AddressFailures failed logins from one client address (an IPv6 /64)
	// block it for the rest of a LockoutDuration window; as many of one
	// account from all addresses leave each address that failed on it one
	// guess per LockoutDuration.
	AddressFailures int `yaml:"address_failures"`
	// MaxPasswordHashes bounds the argon2id hashes computed at once (each
	// takes tens of MiB); logins beyond it get 429.
	MaxPasswordHashes int `yaml:"max_password_hashes"`
}

// DefaultConfig: a working day's session ending after half an hour idle,
// five free tries per account, twenty per address and quarter hour;
// five route tests at once then five a minute.
func DefaultConfig() Config {
	return Config{SessionTTL: 12 * time.Hour, IdleTimeout: 30 * time.Minute, LockoutFailures: 5, LockoutDuration: 15 * time.Minute,
		AddressFailures: 20, MaxPasswordHashes: 2, RouteTestBurst: 5, RouteTestInterval: 12 * time.Second}
}

// Validate checks the section; messages name the key relative to it.
func (c Config) Validate() error {
	if c.SessionTTL < time.Minute || c.SessionTTL > 30*24*time.Hour {
		return errors.New("session_ttl: between 1m and 720h")
	}
	if c.LockoutFailures < 1 || c.LockoutFailures > 100 {
		return errors.New("lockout_failures: between 1 and 100")
	}
	if c.LockoutDuration < time.Second {
		return errors.New("lockout_duration: at least 1s")
	}
	if c.RouteTestBurst < 1 || c.RouteTestBurst > 1000 {
		return errors.New("route_test_burst: between 1 and 1000")
	}
	if c.RouteTestInterval < time.Second {
		return errors.New("route_test_interval: at least 1s")
	}
	if c.IdleTimeout < time.Minute || c.IdleTimeout > c.SessionTTL {
		return errors.New("idle_timeout: between 1m and session_ttl")
	}
	if c.AddressFailures < 1 || c.AddressFailures > 10000 {
		return errors.New("address_failures: between 1 and 10000")
	}
	if c.MaxPasswordHashes < 1 || c.MaxPasswordHashes > 64 {
		return errors.New("max_password_hashes: between 1 and 64")
	}
	return nil
}
