package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Target is a parsed route: a host name or an IP literal, and a port.
type Target struct {
	// Host is the lower-case name without a trailing dot; empty when IP
	// is set.
	Host string
	IP   netip.Addr
	Port uint16
}

func (t Target) String() string {
	if t.IP.IsValid() {
		return netip.AddrPortFrom(t.IP, t.Port).String()
	}
	return net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port)))
}

// ErrDisguised is a host that some resolvers read as a number
// (2130706433, 0x7f.1, 127.1, 0177.0.0.1) and others as a name: refused,
// since the check and the dial could disagree on what it means.
var ErrDisguised = errors.New("looks like a numeric address in a non-standard form; write it as a dotted quad or [IPv6]")

// ParseTarget parses "host:port" (IPv6 in brackets), an address to dial.
// The port is required and non-zero.
func ParseTarget(s string) (Target, error) {
	return parseHostPort(s, false)
}

// ParseListen parses an address to listen on: as ParseTarget, except that
// an empty host means every interface and port 0 one the kernel picks.
// Checked when the configuration is read, a typo fails there, naming its
// key, rather than when the listener starts after everything else has.
func ParseListen(s string) (Target, error) {
	return parseHostPort(s, true)
}

func parseHostPort(s string, listen bool) (Target, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Target{}, fmt.Errorf("%q is not host:port: %w", s, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (p == 0 && !listen) || port[0] == '+' {
		return Target{}, fmt.Errorf("%q has no valid port", s)
	}
	t := Target{Port: uint16(p)}
	if host == "" {
		if listen {
			return t, nil
		}
		return Target{}, fmt.Errorf("%q has no host", s)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return Target{}, fmt.Errorf("%q: an IPv6 zone names a local interface", s)
		}
		t.IP = ip
		return t, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if err := checkName(name); err != nil {
		return Target{}, fmt.Errorf("%q: %w", s, err)
	}
	t.Host = name
	return t, nil
}

// checkName accepts LDH host names (and '_', which some sites use) of at
// most 253 octets. A name whose last label is numeric is no DNS name
// (RFC 3696 §2: top-level domains are never all-numeric) but what
// inet_aton would read as an address, so it is refused as disguised.
func checkName(name string) error {
	if name == "" || len(name) > 253 {
		return errors.New("host name must be 1 to 253 octets")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return errors.New("host name has an empty or over-long label")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host name contains %q", c)
			}
		}
	}
	if numeric(labels[len(labels)-1]) {
		return ErrDisguised
	}
	return nil
}

// numeric reports whether inet_aton would take label as a number: decimal,
// octal (leading 0) or hexadecimal (0x).
func numeric(l string) bool {
	if strings.HasPrefix(l, "0x") {
		return strings.Trim(l[2:], "0123456789abcdef") == ""
	}
	return strings.Trim(l, "0123456789") == ""
}

// IsLocalhost reports whether name is localhost or under .localhost, which
// RFC 6761 §6.3 reserves for loopback: it never goes to DNS, where a
// hostile resolver could answer anything.
func IsLocalhost(name string) bool {
	return name == "localhost" || strings.HasSuffix(name, ".localhost")
}
