package smtpd

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mxgrid/mxgrid/replytext"
)

// maxClientText caps client-chosen text (HELO names, refused addresses)
// in headers and logs: a domain is at most 255 octets (RFC 5321 §4.5.3.1.2).
const maxClientText = 255

// sanitizeClientText makes client-chosen text safe for headers, logs,
// message tracking and the panel: every control character (C0 including
// VT, DEL, C1 including U+0085 NEL), every format character (the bidi
// overrides and isolates that reorder what a reader of the panel sees,
// zero-width characters), the line and paragraph separators U+2028 and
// U+2029 that end a line in some viewers, private-use and surrogate code
// points and every invalid UTF-8 byte become '?', and the text is cut to
// maxClientText octets on a character boundary.
func sanitizeClientText(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r < 0x80:
			if r < 0x20 || r == 0x7f {
				return '?'
			}
		case r == utf8.RuneError || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co, unicode.Cs):
			return '?'
		}
		return r
	}, s)
	return replytext.Truncate(s, maxClientText)
}

// helo is the client's HELO/EHLO name, sanitised once for every use.
func (ss *session) helo() string {
	return sanitizeClientText(ss.conn.Hostname())
}

// has8Bit reports whether p holds 8-bit data (RFC 6152): a byte >= 0x80.
func has8Bit(p []byte) bool {
	for _, c := range p {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

var crlfBytes, crBytes, lfBytes = []byte("\r\n"), []byte("\r"), []byte("\n")

// NormalizeNewlines returns b with every bare CR and bare LF a CRLF, as a
// node reads a message by SMTP (smtp.bare_newline: normalize): mxgrid scan
// reads a file so, to give the verdict the node gives.
func NormalizeNewlines(b []byte) []byte {
	out, _ := normalizeNewlines(b)
	return out
}

// normalizeNewlines turns every bare CR and bare LF into CRLF, as Postfix's
// smtpd_forbid_bare_newline=normalize does, and counts them. A lenient
// server downstream would take a bare newline as a line end and so could
// see an end of data ("<LF>.<LF>") we did not: after this, the relay's dot
// stuffing sees exactly the lines the downstream will. CRs right before a
// LF end that line with it, as Postfix reads them (counted, not written):
// CR CR LF is a CRLF converted twice, and read as a line end and an empty
// line it ended the header after its first field.
func normalizeNewlines(b []byte) ([]byte, int) {
	// Every CR not in a CRLF is bare, and every LF not in one: counted in
	// bulk (almost every body has none), not byte by byte.
	crlf := bytes.Count(b, crlfBytes)
	bare := bytes.Count(b, crBytes) - crlf + bytes.Count(b, lfBytes) - crlf
	if bare == 0 {
		return b, 0
	}
	out := make([]byte, 0, len(b)+bare)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\r':
			end := i + 1
			for end < len(b) && b[end] == '\r' {
				end++
			}
			if end < len(b) && b[end] == '\n' {
				end++
			} else {
				for range end - i - 1 {
					out = append(out, '\r', '\n')
				}
			}
			out = append(out, '\r', '\n')
			i = end - 1
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, b[i])
		}
	}
	return out, bare
}
