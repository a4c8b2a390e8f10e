// Package replytext makes text from elsewhere (a customer server's reply, a
// check's finding, a client's HELO) safe to pass on inside an SMTP reply
// line or a header field. It is a leaf so that smtpd, relay and the panel
// share one implementation without importing each other.
package replytext

import (
	"strings"
	"unicode/utf8"
)

// Sanitize returns s as one printable line of at most max bytes: control
// characters (C0 including CR and LF, DEL, C1) become spaces and invalid
// UTF-8 becomes '?', runs of white space collapse to one space, the ends
// are trimmed, and the cut never splits a character, so the sender's MTA
// gets one valid reply line whatever the downstream or a check said.
func Sanitize(s string, max int) string {
	s = Printable(s)
	if !singleSpaced(s) {
		s = strings.Join(strings.Fields(s), " ")
	}
	return strings.TrimRight(Truncate(s, max), " ")
}

// singleSpaced reports whether s is printable ASCII whose words stand one
// space apart, with none at its ends: text Fields and Join would return
// unchanged. Nearly every reply is ("2.0.0 Ok: queued as 4XyZ"), and
// splitting and joining it again were two allocations a relayed message.
func singleSpaced(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			if i == 0 || i == len(s)-1 || s[i-1] == ' ' {
				return false
			}
		case c <= ' ' || c >= 0x7f:
			return false
		}
	}
	return true
}

// Reply returns s as the text of a reply line we send to an SMTP client:
// Sanitize's one printable line of at most max bytes, with every non-ASCII
// character as '?'. RFC 5321 §4.2 makes reply text printable ASCII, and a
// client that did not say SMTPUTF8 may not read more: a customer server's
// UTF-8 (or Latin-1 made '?' already) passed on was for its own clients.
func Reply(s string, max int) string {
	s = Sanitize(s, max)
	if printableASCII(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r >= utf8.RuneSelf {
			return '?'
		}
		return r
	}, s)
}

// Printable keeps text from elsewhere from injecting lines into a reply
// or a header field: control characters other than tab (C0, DEL, C1)
// become spaces, invalid UTF-8 becomes '?'. Unlike Sanitize it keeps the
// text's spacing and length; a header field folds it later.
//
// The Unicode line and paragraph separators (a line break for some
// readers) and the bidirectional embeddings, overrides and isolates
// become spaces too: shown in the panel, a Subject or a file name with
// U+202E runs backwards after it ("invoice\u202etxt.mcod", a macro
// document, read "invoicedocm.txt"; CVE-2021-42574, "Trojan Source"). The
// marks (U+200E, U+200F) and zero-width joiners, which right-to-left and
// Indic text needs, stay.
func Printable(s string) string {
	if printableASCII(s) {
		// Nearly every value is; strings.Map would decode it rune by rune
		// only to return it unchanged.
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return r
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0),
			r == 0x2028, r == 0x2029, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return ' '
		case r == utf8.RuneError:
			return '?'
		}
		return r
	}, s)
}

// printableASCII reports whether s is tab and printable ASCII only, which
// Printable leaves as it is.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}

// Truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
