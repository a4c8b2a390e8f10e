package events

import (
	"net/netip"
	"strings"

	"github.com/mxgrid/mxgrid/geo"
)

// maxReceivedHops bounds the walk down the Received chain; real chains are
// a handful of hops, and a message with hundreds is a loop or an attack.
const maxReceivedHops = 30

// SourceIP returns the address to record as a message's source. Normally
// that is client, the connecting address (after the PROXY protocol). When
// client is a trusted forwarder (trusted, from events.trusted_relays), the
// forwarder's Received header says who gave it the message, and so on down
// the chain: the first hop that is neither trusted nor internal (private,
// loopback, CGNAT...: a forwarder's own infrastructure) is the source.
//
// received are the Received field values, topmost (most recent) first, as
// the message arrived: before this node prepends its own. Only headers
// written by trusted hosts are believed; the walk stops at the first one
// without a parsable sending address, and client is returned when no
// untrusted hop is found.
func SourceIP(client netip.Addr, received []string, trusted []netip.Prefix) netip.Addr {
	client = client.Unmap()
	if !contains(trusted, client) {
		return client
	}
	for i, v := range received {
		if i == maxReceivedHops {
			break
		}
		ip, ok := ReceivedFrom(v)
		if !ok {
			break
		}
		if contains(trusted, ip) || !geo.Public(ip) {
			continue
		}
		return ip
	}
	return client
}

func contains(prefixes []netip.Prefix, ip netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ReceivedFrom extracts the sending host's address from one Received
// field value (RFC 5321 section 4.4): the address in the "from" clause as
// the receiving server recorded it. Real headers vary widely:
//
//	from mx.example.com (mx.example.com [192.0.2.1]) by ...        Postfix, Sendmail
//	from mx.example.com ([192.0.2.1]:4711 helo=mx) by ...          Exim
//	from [192.0.2.1] (helo=mx) by ...                              Exim, no rDNS
//	from unknown (HELO [198.51.100.9]) (192.0.2.1) by ...          qmail
//	from EX01.corp.example (192.0.2.1) by ...                      Exchange
//	from mx.example.com (mx.example.com [IPv6:2001:db8::1]) by ... IPv6 literal
//	from mail.example.com [192.0.2.1] by localhost with POP3       fetchmail
//
// An address inside the clause's comments is the server's own
// observation and wins over one at the top level, which in the
// "from <helo> (...)" position is what the client claimed. An address
// right after HELO/EHLO is the client's claim too and is never used.
func ReceivedFrom(value string) (netip.Addr, bool) {
	s := strings.TrimLeft(value, " \t\r\n")
	if len(s) < 5 || !strings.EqualFold(s[:4], "from") || !isSpace(s[4]) {
		return netip.Addr{}, false
	}
	s = s[5:]
	var (
		depth      int
		top        netip.Addr // first address at depth 0
		afterHELO  bool       // the previous token was HELO/EHLO
		tokenStart = -1
	)
	// endToken judges s[tokenStart:end]; it returns an address from a
	// comment, which ends the search, and reports whether the clause ended.
	endToken := func(end int) (netip.Addr, bool) {
		if tokenStart < 0 {
			return netip.Addr{}, false
		}
		tok := s[tokenStart:end]
		tokenStart = -1
		if depth == 0 && isClauseEnd(tok) {
			return netip.Addr{}, true
		}
		lower := strings.ToLower(tok)
		if lower == "helo" || lower == "ehlo" {
			afterHELO = true
			return netip.Addr{}, false
		}
		claimed := afterHELO || strings.HasPrefix(lower, "helo=") || strings.HasPrefix(lower, "ehlo=")
		afterHELO = false
		if claimed {
			return netip.Addr{}, false
		}
		ip, ok := parseTokenIP(tok)
		if !ok {
			return netip.Addr{}, false
		}
		if depth > 0 {
			return ip, false
		}
		if !top.IsValid() {
			top = ip
		}
		return netip.Addr{}, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '(' || c == ')' || c == ';' || isSpace(c):
			ip, end := endToken(i)
			if ip.IsValid() {
				return ip, true
			}
			if end || (c == ';' && depth == 0) {
				return top, top.IsValid()
			}
			switch c {
			case '(':
				depth++
				afterHELO = false
			case ')':
				if depth > 0 {
					depth--
				}
				afterHELO = false
			}
		case tokenStart < 0:
			tokenStart = i
		}
	}
	if ip, _ := endToken(len(s)); ip.IsValid() {
		return ip, true
	}
	return top, top.IsValid()
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isClauseEnd reports whether a top-level token starts the clause after
// "from" (RFC 5321 Stamp: by, via, with, id, for).
func isClauseEnd(tok string) bool {
	switch strings.ToLower(tok) {
	case "by", "via", "with", "id", "for":
		return true
	}
	return false
}

// parseTokenIP reads an address from a token such as "[192.0.2.1]",
// "[192.0.2.1]:4711", "[IPv6:2001:db8::1]", "host[192.0.2.1]",
// Sendmail's ident form "IDENT:root@[192.0.2.1]" or a bare "192.0.2.1".
func parseTokenIP(tok string) (netip.Addr, bool) {
	if start := strings.IndexByte(tok, '['); start >= 0 {
		end := strings.IndexByte(tok[start:], ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		tok = tok[start+1 : start+end]
	}
	tok = strings.Trim(tok, `<>,."'`)
	if len(tok) > 5 && strings.EqualFold(tok[:5], "ipv6:") {
		tok = tok[5:]
	}
	if strings.IndexByte(tok, '.') < 0 && strings.IndexByte(tok, ':') < 0 {
		return netip.Addr{}, false // fast path: a host name or keyword
	}
	ip, err := netip.ParseAddr(tok)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}
