package smtpd

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/netguard"
)

// Config is the `smtp:` section.
type Config struct {
	// Listen is the SMTP listener, host:port.
	Listen string `yaml:"listen"`
	// Hostname is our name in the greeting, EHLO downstream and Received.
	Hostname string `yaml:"hostname"`
	// MaxMessageBytes is advertised in SIZE and enforced while reading DATA
	// (552 5.3.4 above it).
	MaxMessageBytes int64 `yaml:"max_message_bytes"`
	// MaxRecipients per transaction; more get 452 4.5.3 (RFC 5321 §4.5.3.1.10).
	MaxRecipients int `yaml:"max_recipients"`
	// TrustedProxies are CIDRs that send a HAProxy PROXY header (v1 or v2):
	// from them it is required (a connection without a whole, valid one
	// within ProxyHeaderTimeout is closed); from anywhere else a header gets
	// the connection closed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MaxConnections caps concurrent connections; more get 421 4.7.0.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP caps concurrent connections from one client (an
	// IPv4 address, an IPv6 /64: a host holds a whole /64), like Postfix's
	// smtpd_client_connection_count_limit.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// CommandTimeout is how long after our last reply a client's next
	// command must have arrived whole, and how long it may stay silent
	// between reads of the message body.
	CommandTimeout time.Duration `yaml:"command_timeout"`
	// StressCommandTimeout replaces CommandTimeout, when shorter, while
	// the node is under stress (its connections near MaxConnections,
	// see stress.go), between messages: as Postfix's
	// smtpd_timeout = ${stress?{10}:{300}}s.
	StressCommandTimeout time.Duration `yaml:"stress_command_timeout"`
	// DataTimeout bounds the transfer of a whole message body.
	DataTimeout time.Duration `yaml:"data_timeout"`
	// ProxyHeaderTimeout bounds the wait for a PROXY header from a trusted proxy.
	ProxyHeaderTimeout time.Duration `yaml:"proxy_header_timeout"`
	// ShutdownGrace is how long in-flight transactions may run after SIGTERM.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// TLSCert and TLSKey enable STARTTLS; without both it is not offered.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`

	// AllowSourceRouting lets recipients whose local part holds @, % or !
	// through (Postfix's allow_untrusted_routing); off, they get 550 5.7.1.
	AllowSourceRouting bool `yaml:"allow_source_routing"`
	// BareNewline is what a bare CR or LF in a message body gets, like
	// Postfix's smtpd_forbid_bare_newline: "normalize" turns each into CRLF,
	// "reject" refuses the message with 550 5.5.2.
	BareNewline string `yaml:"bare_newline"`
	// MaxHops refuses a message with more Received fields (554 5.4.6),
	// like Postfix's hopcount_limit: it is looping.
	MaxHops int `yaml:"max_hops"`
	// MaxUnknownRecipients is how many refused recipients one connection
	// may try before 421 4.7.0 and close (dictionary attacks), across RSET,
	// transactions and STARTTLS; a recipient the customer's server answered 4xx counts
	// too, as a RCPT forwarded and answered.
	MaxUnknownRecipients int `yaml:"max_unknown_recipients"`
	// ClientUnknownRecipients is how many recipients of one customer's
	// domains one client (an IPv4 address, an IPv6 /64) may have refused
	// as nonexistent mailboxes (unknown users, a 5xx from the customer's
	// server, or its 4xx with a no-such-mailbox code such as 4.1.1) per
	// ClientUnknownWindow, across its sessions, on this node: past it
	// every RCPT from it to that customer's domains gets 421 4.7.0, known
	// recipients too, since answering those would still tell a harvester
	// which mailboxes exist. The per-session limit alone let a harvester
	// reconnect for 20 more guesses each time. Per customer, since a
	// tenant's own server says which recipients it refuses. 0: off.
	ClientUnknownRecipients int           `yaml:"client_unknown_recipients"`
	ClientUnknownWindow     time.Duration `yaml:"client_unknown_window"`
	// MaxJunkCommands is how many commands that move no mail (NOOP, RSET,
	// VRFY, HELO, EHLO, HELP...) a session may send since its last accepted
	// message before 421 4.7.0 and close, as Postfix's
	// smtpd_junk_command_limit: without it a client keeps a connection
	// slot for ever with a NOOP inside every command timeout. Only those
	// the client waited for count: pipelined ones cost no time. It also
	// bounds the transactions abandoned after their recipients reached the
	// customer's server, pipelined or not: each cost that server a RCPT.
	MaxJunkCommands int `yaml:"max_junk_commands"`
	// ForbidUnauthPipelining answers 554 5.5.0 and closes the connection
	// of a client that sends more behind a command than RFC 2920 allows:
	// anything behind a command without EHLO first, or behind one whose
	// reply a client must wait for (EHLO, HELO, DATA, STARTTLS, NOOP,
	// QUIT...); a message sent behind its DATA without waiting for the
	// 354 is the common case. Real MTAs wait; spam bots writing the whole
	// conversation at once, and SMTP-smuggling probes, do not. As
	// Postfix's smtpd_forbid_unauth_pipelining, on by default since 3.9.
	ForbidUnauthPipelining bool `yaml:"forbid_unauth_pipelining"`
	// Postmaster is where RCPT TO:<postmaster> goes, the one recipient
	// without a domain that every SMTP server must take (RFC 5321 §4.5.1):
	// an address in a provisioned domain, then handled as any recipient
	// of that domain. Empty: 550 5.1.1, since a node holds no mailbox.
	Postmaster string `yaml:"postmaster"`
	// NegativeCacheTTL is how long a recipient the customer's server
	// refused as nonexistent is refused without asking it again; 0 disables.
	NegativeCacheTTL time.Duration `yaml:"negative_cache_ttl"`
	// NegativeCacheMemcached shares that cache between nodes (host:port list).
	NegativeCacheMemcached []string `yaml:"negative_cache_memcached"`
	// NegativeCacheTimeout bounds each memcached operation.
	NegativeCacheTimeout time.Duration `yaml:"negative_cache_timeout"`
	// MemoryBudget bounds the message bytes held in memory by all
	// sessions together: a body in memory counted holdFactor times (read,
	// parsed, composed), a spooled one spoolFactor times while it is
	// scanned. A body it cannot hold is spooled; a scan it cannot hold
	// waits SpoolWait, then DATA is answered 452 4.3.1 and the sender
	// retries.
	MemoryBudget int64 `yaml:"memory_budget"`
	// SpoolThreshold is the body size held in memory; a larger body is
	// written to a file in data_dir/spool as it arrives, scanned and
	// relayed from there, and removed when the transaction ends.
	SpoolThreshold int64 `yaml:"spool_threshold"`
	// SpoolMinFree is the free space the spool's file system must keep: a
	// big body that would go below it is answered 452 4.3.1 at once
	// instead of failing mid-write.
	SpoolMinFree int64 `yaml:"spool_min_free"`
	// SpoolWait is how long a spooled body waits for memory_budget to
	// have room for its scan before it is answered 452 4.3.1.
	SpoolWait time.Duration `yaml:"spool_wait"`
}

// Bare newline policies (smtp.bare_newline).
const (
	BareNewlineNormalize = "normalize"
	BareNewlineReject    = "reject"
)

// DefaultConfig is a working loopback listener.
func DefaultConfig() Config {
	host, err := os.Hostname()
	if err != nil || checkHostname(host) != nil {
		host = "localhost"
	}
	return Config{
		Listen:              "127.0.0.1:2525",
		Hostname:            host,
		MaxMessageBytes:     25 << 20,
		MaxRecipients:       100,
		MaxConnections:      2000,
		MaxConnectionsPerIP: 50,
		CommandTimeout:      2 * time.Minute,
		// Postfix's under stress: a sender's MTA answers at once.
		StressCommandTimeout: 10 * time.Second,
		DataTimeout:          10 * time.Minute,
		ProxyHeaderTimeout:   5 * time.Second,
		ShutdownGrace:        30 * time.Second,

		BareNewline:            BareNewlineNormalize,
		MaxHops:                50,
		MaxUnknownRecipients:   20,
		MaxJunkCommands:        100,
		ForbidUnauthPipelining: true,
		// A client refused 100 recipients an hour is harvesting or
		// mailing a list long dead; either may wait.
		ClientUnknownRecipients: 100,
		ClientUnknownWindow:     time.Hour,
		NegativeCacheTTL:        5 * time.Minute,
		NegativeCacheTimeout:    50 * time.Millisecond,
		// With the garbage collector's room on top (GOGC=100), 192 MiB
		// keeps 40 senders of 20 MB at once at 291-355 MB peak RSS; 256
		// MiB reached 321-407 MB once the scan got faster.
		MemoryBudget:   192 << 20,
		SpoolThreshold: 1 << 20,
		SpoolMinFree:   512 << 20,
		SpoolWait:      2 * time.Minute,
	}
}

// Validate checks the section; messages name the key.
func (c Config) Validate() error {
	if _, err := netguard.ParseListen(c.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if err := checkHostname(c.Hostname); err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	if c.MaxMessageBytes < 1024 {
		return fmt.Errorf("max_message_bytes: %d is too small (at least 1024)", c.MaxMessageBytes)
	}
	if c.MaxRecipients < 1 {
		return errors.New("max_recipients: must be at least 1")
	}
	if _, err := c.proxyPrefixes(); err != nil {
		return err
	}
	if c.MaxConnections < 1 {
		return errors.New("max_connections: must be at least 1")
	}
	if c.MaxConnectionsPerIP < 1 {
		return errors.New("max_connections_per_ip: must be at least 1")
	}
	for key, d := range map[string]time.Duration{
		"command_timeout": c.CommandTimeout, "stress_command_timeout": c.StressCommandTimeout, "data_timeout": c.DataTimeout,
		"proxy_header_timeout": c.ProxyHeaderTimeout, "shutdown_grace": c.ShutdownGrace,
	} {
		if d <= 0 {
			return fmt.Errorf("%s: must be positive", key)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls_cert, tls_key: set both or neither")
	}
	if c.BareNewline != BareNewlineNormalize && c.BareNewline != BareNewlineReject {
		return fmt.Errorf("bare_newline: %q is not normalize or reject", c.BareNewline)
	}
	if c.MaxHops < 1 {
		return errors.New("max_hops: must be at least 1")
	}
	if c.MaxUnknownRecipients < 1 {
		return errors.New("max_unknown_recipients: must be at least 1")
	}
	if c.ClientUnknownRecipients < 0 {
		return errors.New("client_unknown_recipients: must be 0 (off) or more")
	}
	if c.ClientUnknownRecipients > 0 && c.ClientUnknownWindow < time.Second {
		return errors.New("client_unknown_window: at least 1s")
	}
	if c.MaxJunkCommands < 1 {
		return errors.New("max_junk_commands: must be at least 1")
	}
	if c.Postmaster != "" {
		if a, err := mailaddr.ParseDecoded(c.Postmaster); err != nil || a.IsNull() || a.SourceRouted() {
			return fmt.Errorf("postmaster: %q is not a mailbox address", c.Postmaster)
		}
	}
	if c.SpoolThreshold < 1 {
		return errors.New("spool_threshold: must be at least 1")
	}
	if c.SpoolMinFree < 0 {
		return errors.New("spool_min_free: must not be negative")
	}
	if c.SpoolWait < 0 {
		return errors.New("spool_wait: must not be negative")
	}
	// A message of the largest size must fit, held in memory or spooled,
	// or it would be refused forever. Compared by division: the products
	// overflowed int64 for a max_message_bytes past 2^61, went negative,
	// and a budget that could never hold such a message passed.
	if c.MaxMessageBytes > c.MemoryBudget/spoolFactor || min(c.SpoolThreshold, c.MaxMessageBytes) > c.MemoryBudget/holdFactor {
		return fmt.Errorf("memory_budget: %d must hold %d times max_message_bytes (%d) and %d times the smaller of it and spool_threshold (%d)",
			c.MemoryBudget, spoolFactor, c.MaxMessageBytes, holdFactor, c.SpoolThreshold)
	}
	if c.NegativeCacheTTL < 0 {
		return errors.New("negative_cache_ttl: must not be negative")
	}
	if len(c.NegativeCacheMemcached) > 0 && c.NegativeCacheTimeout <= 0 {
		return errors.New("negative_cache_timeout: must be positive")
	}
	for i, a := range c.NegativeCacheMemcached {
		if _, err := netguard.ParseTarget(a); err != nil {
			return fmt.Errorf("negative_cache_memcached[%d]: %w", i, err)
		}
	}
	return nil
}

// checkHostname accepts a host name as RFC 5321 §4.1.2's Domain: ASCII
// letter-digit-hyphen labels. The name is written verbatim into the 220
// greeting, the EHLO reply, the EHLO we send customers' servers and every
// Received field; a CR LF in it made the greeting two reply lines (a
// forged reply a client would act on), and a space or non-ASCII name a
// greeting and trace that strict peers refuse.
func checkHostname(h string) error {
	switch {
	case h == "":
		return errors.New("must not be empty")
	case len(h) > 253:
		return fmt.Errorf("%d octets, at most 253", len(h))
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q has an empty or over-long label (a trailing dot is not allowed)", h)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q has a label starting or ending with '-'", h)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q is not a host name: %q (letters, digits, '-' and '.' only; punycode for international names)", h, c)
			}
		}
	}
	return nil
}

// proxyPrefixes are TrustedProxies as the PROXY listener compares them,
// with clients unmapped: as http.trusted_proxies are read.
func (c Config) proxyPrefixes() ([]netip.Prefix, error) {
	out, err := clientip.ParseTrusted(c.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies%w", err)
	}
	return out, nil
}
