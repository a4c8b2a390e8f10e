package cluster

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/internal/keycheck"
)

// Config is the `cluster:` section of the node's configuration.
type Config struct {
	// Bind is the host:port memberlist listens on, UDP and TCP on the same
	// port. The host must be an IP literal (0.0.0.0 for every interface).
	// Default 127.0.0.1:7946, which forms a cluster of one machine only.
	Bind string `yaml:"bind"`
	// Advertise is the host:port other nodes use to reach this one, when it
	// differs from Bind (NAT, 0.0.0.0 binds, a provider's private network).
	// Empty means memberlist picks the bind address or the first private one.
	Advertise string `yaml:"advertise"`
	// Join lists host:port of existing members (DNS names allowed). They are
	// tried in the background until one answers, and again whenever this
	// node finds itself alone, so nodes can start in any order; an entry
	// that is not a member is tried again every 10 s, so that clusters
	// formed apart (a partition, nodes started out of order) merge.
	Join []string `yaml:"join"`
	// SecretKey is the gossip encryption key, base64 of 16, 24 or 32 bytes
	// (AES-128/192/256-GCM). Every node needs the same key. Required whenever
	// Bind is not loopback: gossip carries readiness and announcements that
	// an outsider must neither read nor forge. During a rotation it holds
	// two keys, separated by white space: the first encrypts, both decrypt.
	SecretKey string `yaml:"secret_key"`
	// SecretKeyFile holds the key (same format, a key a line) instead of
	// SecretKey, so the config file can be world-readable while the key is
	// not.
	SecretKeyFile string `yaml:"secret_key_file"`
	// InsecureNoKey lets a loopback node gossip without a key (tests,
	// one-machine setups): join others, and take members that join it.
	// Without it, a join list needs a key, and a keyless node admits no
	// member: on a shared machine any local user could otherwise join
	// and become leader.
	InsecureNoKey bool `yaml:"insecure_no_key"`
	// Profile selects memberlist's timing: "lan" (probe every 500 ms, a dead
	// node is noticed in about 3 s) or "wan" (every 5 s, about 40 s, for
	// nodes that only talk over the internet with its higher latency).
	Profile string `yaml:"profile"`
	// MXHosts are the host names the cluster's MX records name. A domain
	// whose most-preferred MX records all point at them is proven to be
	// its reseller's (see tenant/ownership.go).
	MXHosts []string `yaml:"mx_hosts"`
}

// DefaultConfig returns a loopback-only, LAN-timed cluster of one node.
func DefaultConfig() Config {
	return Config{Bind: "127.0.0.1:7946", Profile: "lan"}
}

// Validate checks the section without touching the file system or network.
// The first problem is returned, naming its key relative to the section.
func (c Config) Validate() error {
	var errs []error
	bind, err := parseIPPort(c.Bind)
	if err != nil {
		errs = append(errs, fmt.Errorf("bind: %w", err))
	}
	if c.Advertise != "" {
		if ap, err := parseIPPort(c.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("advertise: %w", err))
		} else if ap.Addr().IsUnspecified() || ap.Addr().Zone() != "" {
			// A zone names one of this host's interfaces, which memberlist
			// cannot gossip: it failed at start, naming no key.
			errs = append(errs, fmt.Errorf("advertise: %s is not an address other nodes can reach", c.Advertise))
		}
	}
	for i, j := range c.Join {
		host, port, err := net.SplitHostPort(j)
		if err == nil && host == "" {
			err = errors.New("missing host")
		}
		if err == nil {
			var p uint16
			if p, err = parsePort(port); err == nil && p == 0 {
				err = errors.New("port 0")
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("join[%d]: %q: want host:port: %w", i, j, err))
		}
	}
	switch {
	case c.SecretKey != "" && c.SecretKeyFile != "":
		errs = append(errs, errors.New("secret_key and secret_key_file: set only one"))
	case c.SecretKey != "":
		if _, err := decodeKeys(c.SecretKey); err != nil {
			errs = append(errs, fmt.Errorf("secret_key: %w", err))
		}
	case c.SecretKeyFile == "" && err == nil && !bind.Addr().IsLoopback():
		errs = append(errs, fmt.Errorf("secret_key: required when bind is not loopback (%s); generate one with `mxgrid keygen`", c.Bind))
	case c.SecretKeyFile == "" && len(c.Join) > 0 && !c.InsecureNoKey:
		errs = append(errs, errors.New("secret_key: required when join lists nodes (or set insecure_no_key on loopback); generate one with `mxgrid keygen`"))
	}
	if c.InsecureNoKey && err == nil && !bind.Addr().IsLoopback() {
		errs = append(errs, fmt.Errorf("insecure_no_key: only allowed with a loopback bind, not %s", c.Bind))
	}
	if c.SecretKey != "" && err == nil && !bind.Addr().IsLoopback() {
		if keys, kerr := decodeKeys(c.SecretKey); kerr == nil {
			if p := keysProblem(keys); p != nil {
				errs = append(errs, fmt.Errorf("secret_key: %w", p))
			}
		}
	}
	if _, err := c.memberlistConfig(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// keys returns the decoded gossip keys, reading SecretKeyFile if set: the
// first encrypts, every one decrypts (a rotation's old and new key); none
// means no encryption (only allowed on loopback, see Validate).
func (c Config) keys() ([][]byte, error) {
	if c.SecretKeyFile == "" {
		if c.SecretKey == "" {
			return nil, nil
		}
		keys, err := decodeKeys(c.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("secret_key: %w", err)
		}
		return keys, nil
	}
	b, err := fsperm.ReadSecret(c.SecretKeyFile)
	if err != nil {
		return nil, fmt.Errorf("secret_key_file: %w", err)
	}
	keys, err := decodeKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("secret_key_file: %s: %w", c.SecretKeyFile, err)
	}
	if bind, berr := parseIPPort(c.Bind); berr == nil && !bind.Addr().IsLoopback() {
		if p := keysProblem(keys); p != nil {
			return nil, fmt.Errorf("secret_key_file: %s: %w", c.SecretKeyFile, p)
		}
	}
	return keys, nil
}

// maxKeys bounds the keys of a rotation: two are all one needs.
const maxKeys = 4

// decodeKeys reads one key, or several separated by white space (one a
// line in a key file): rotating the key adds the new one after the old on
// every node, then puts it first, then drops the old, each step a rolling
// restart in which every node still reads every other.
func decodeKeys(s string) ([][]byte, error) {
	fields := strings.Fields(s)
	switch {
	case len(fields) == 0:
		return nil, errors.New("empty")
	case len(fields) > maxKeys:
		return nil, fmt.Errorf("%d keys, at most %d (a rotation needs two)", len(fields), maxKeys)
	}
	keys := make([][]byte, len(fields))
	for i, f := range fields {
		k, err := decodeKey(f)
		if err != nil {
			if len(fields) == 1 {
				return nil, err
			}
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		keys[i] = k
	}
	return keys, nil
}

// keysProblem is the first key's keycheck.KeyProblem, or another's, named.
func keysProblem(keys [][]byte) error {
	for i, k := range keys {
		if p := keycheck.KeyProblem(k); p != nil {
			if len(keys) == 1 {
				return p
			}
			return fmt.Errorf("key %d: %w", i+1, p)
		}
	}
	return nil
}

func decodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("decodes to %d bytes, want 16, 24 or 32", len(k))
}

// lanConfig is memberlist's LAN timing with faster probes: a node is
// probed every 500 ms (not 1 s) and must answer within 250 ms (not 500):
// a killed node is declared dead by every survivor in about 3 s instead
// of 6-7 s, which is how long a dead node's MX share keeps senders
// waiting. Measured (BenchmarkKillDetection, three processes on one
// 2-core machine, 5 kills each): p50 3.18 s quiet and 3.15 s under CPU
// load (memberlist's LAN defaults: 6.51 s), no false suspicion in either,
// gossip up from 513 to 773 bytes/s per node.
//
// Gossip rounds run every 100 ms (not 200): an announcement, such as a
// tenant change, waits for the next round, and memberlist sends nothing
// in a round with nothing queued, so a quiet cluster pays nothing for it.
func lanConfig() *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.ProbeInterval = 500 * time.Millisecond
	c.ProbeTimeout = 250 * time.Millisecond
	c.GossipInterval = 100 * time.Millisecond
	return c
}

// memberlistConfig maps the profile to memberlist's tuned defaults; the
// caller fills in names, addresses, delegates and the key.
func (c Config) memberlistConfig() (*memberlist.Config, error) {
	var mc *memberlist.Config
	switch c.Profile {
	case "", "lan":
		mc = lanConfig()
	case "wan":
		mc = memberlist.DefaultWANConfig()
	default:
		return nil, fmt.Errorf("profile: %q: want lan or wan", c.Profile)
	}
	// A dead member's name goes to the next node that claims it from
	// another address: a crashed node started again at a new port or IP (a
	// rescheduled container). memberlist otherwise refuses it as a name
	// conflict until it forgets the dead (GossipToTheDeadTime, 30 s on lan,
	// 60 s on wan, then a push/pull): all that time the others did not list
	// it, and it led beside their leader when its name was the lowest.
	mc.DeadNodeReclaimTime = time.Nanosecond
	return mc, nil
}

func parseIPPort(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: want ip:port: %w", s, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: host must be an IP address: %w", s, err)
	}
	p, err := parsePort(port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: %w", s, err)
	}
	return netip.AddrPortFrom(ip, p), nil
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(p), nil
}
