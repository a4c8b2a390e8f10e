package clamav

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/mxgrid/mxgrid/scanner"
)

// Config holds the clamd keys of the `antivirus:` section.
type Config struct {
	// Clamd is where clamd listens: tcp://host:port or unix:///path.
	// Empty disables the clamd layer (the built-in engine still runs).
	Clamd string `yaml:"clamd"`
	// StageConfig holds on_error and timeout. OnError is what happens to
	// mail when clamd is down, times out or answers ERROR: accept delivers
	// it with X-Mxgrid-Virus-Scan: incomplete (and a metric), tempfail
	// answers 451 so the sender retries. Timeout bounds one scan, waiting
	// for a connection slot included, and one readiness probe.
	scanner.StageConfig `yaml:",inline"`
	// MaxConns bounds concurrent scans on this node, so a burst of mail does
	// not exceed clamd's MaxThreads and queue inside clamd past our deadline.
	MaxConns int `yaml:"max_conns"`
	// MaxSize is the largest message sent to clamd. Keep it at or below
	// clamd's StreamMaxLength (25M by default in clamd.conf): above it clamd
	// answers "INSTREAM size limit exceeded" and closes the connection.
	MaxSize int64 `yaml:"max_size"`
	// ProbeInterval is how often clamd is PINGed for /readyz, so readiness
	// is right between messages and recovery is noticed.
	ProbeInterval time.Duration `yaml:"probe_interval"`
}

// DefaultConfig leaves clamd off; production configs set clamd.
func DefaultConfig() Config {
	return Config{
		StageConfig:   scanner.StageConfig{OnError: scanner.OnErrorAccept, Timeout: 10 * time.Second},
		MaxConns:      8,
		MaxSize:       25 << 20,
		ProbeInterval: 10 * time.Second,
	}
}

// Validate reports the first invalid key, named relative to the section.
func (c Config) Validate() error {
	if c.Clamd != "" {
		if _, _, err := parseAddr(c.Clamd); err != nil {
			return fmt.Errorf("clamd: %w", err)
		}
	}
	if err := c.StageConfig.Validate(); err != nil {
		return err
	}
	switch {
	case c.MaxConns < 1:
		return errors.New("max_conns: must be at least 1")
	case c.Timeout <= 0:
		return errors.New("timeout: must be positive")
	case c.MaxSize < 1:
		return errors.New("max_size: must be at least 1")
	case c.ProbeInterval < periodic.MinInterval:
		return fmt.Errorf("probe_interval: at least %s", periodic.MinInterval)
	}
	return nil
}

// parseAddr splits tcp://host:port or unix:///path into a net.Dial network
// and address.
func parseAddr(s string) (network, addr string, err error) {
	bad := fmt.Errorf("%q is not tcp://host:port or unix:///path", s)
	switch {
	case strings.HasPrefix(s, "tcp://"):
		addr = strings.TrimPrefix(s, "tcp://")
		if _, err := netguard.ParseTarget(addr); err != nil {
			return "", "", fmt.Errorf("%w: %w", bad, err)
		}
		return "tcp", addr, nil
	case strings.HasPrefix(s, "unix://"):
		addr = strings.TrimPrefix(s, "unix://")
		if !strings.HasPrefix(addr, "/") {
			return "", "", bad
		}
		return "unix", addr, nil
	}
	return "", "", bad
}
