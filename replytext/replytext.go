// Package replytext makes text from elsewhere (a customer server's reply, a
// check's finding) safe to pass on inside an SMTP reply line. It is a leaf
// so that smtpd and relay share one implementation without importing each
// other.
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
	s = strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return ' '
		case r == utf8.RuneError:
			return '?'
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	return strings.TrimRight(Truncate(s, max), " ")
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
