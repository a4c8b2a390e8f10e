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
	// SessionTTL is how long a login lasts.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// LockoutFailures failed logins of one account from one address lock
	// that pair out for LockoutDuration.
	LockoutFailures int           `yaml:"lockout_failures"`
	LockoutDuration time.Duration `yaml:"lockout_duration"`
	// RouteTestBurst "Test route" runs a reseller may start at once, then
	// one per RouteTestInterval: each opens a connection from the node, so
	// without a bound the button is a slow port scanner.
	RouteTestBurst    int           `yaml:"route_test_burst"`
	RouteTestInterval time.Duration `yaml:"route_test_interval"`
}

// DefaultConfig: a working day's session, five tries per quarter hour,
// five route tests at once then five a minute.
func DefaultConfig() Config {
	return Config{SessionTTL: 12 * time.Hour, LockoutFailures: 5, LockoutDuration: 15 * time.Minute,
		RouteTestBurst: 5, RouteTestInterval: 12 * time.Second}
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
	return nil
}
