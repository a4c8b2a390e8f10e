package auth

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// HeaderField is the header our results go in (RFC 8601).
const HeaderField = "Authentication-Results"

// resinfos renders each outcome as an RFC 8601 section 2.2 resinfo:
// "method=result [reason=...] ptype.property=value ...". DMARC's policy
// goes in a comment, as common practice does, since RFC 7489 registers no
// property for it. The strings are slices of one, built in one buffer.
func resinfos(outs []outcome) []string {
	if len(outs) == 0 {
		return nil
	}
	// Sized for the common case, where nothing needs quoting or escaping.
	n := 0
	for _, o := range outs {
		n += len(o.method) + 1 + len(o.result)
		if o.reason != "" {
			n += len(" reason=\"\"") + len(o.reason)
		}
		for _, p := range o.props {
			n += 2 + len(p.key) + len(p.value)
		}
	}
	var b strings.Builder
	b.Grow(n)
	var endsBuf [8]int
	ends := endsBuf[:0]
	for _, o := range outs {
		o.writeResinfo(&b)
		ends = append(ends, b.Len())
	}
	all := b.String()
	out := make([]string, len(outs))
	start := 0
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out
}

func (o outcome) writeResinfo(b *strings.Builder) {
	b.WriteString(o.method)
	b.WriteByte('=')
	b.WriteString(o.result)
	if o.reason != "" {
		if o.method == "dmarc" && o.result != "temperror" && o.result != "permerror" {
			b.WriteString(" (")
			b.WriteString(commentText.Replace(publicReason(o.reason)))
			b.WriteByte(')')
		} else {
			b.WriteString(" reason=")
			writeQuoted(b, publicReason(o.reason))
		}
	}
	for _, p := range o.props {
		if p.key == "" {
			continue
		}
		b.WriteByte(' ')
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(pvalue(p.value))
	}
}

// socketDetail matches what a DNS error's text says of the resolver: "on
// 127.0.0.1:53", "read udp 10.0.0.5:43764->10.0.0.2:53: ".
var socketDetail = regexp.MustCompile(` on \S+:\d+|(?:read|write|dial) (?:udp|tcp)[46]? \S+: `)

// publicReason is a reason as every recipient of the message may read it:
// without the resolver's address and the node's ports that DNS errors
// name, 7-bit (non-ASCII text escaped, as a customer's server without
// 8BITMIME or SMTPUTF8 takes it), and at most maxReason bytes.
func publicReason(reason string) string {
	// Read no more than can be kept: a reason may quote what the sender
	// wrote (an ARC instance number of 0.9 MB made a 4.5 MB
	// Authentication-Results field once escaped, added to the message
	// we relay). A character cut here is escaped, past what is kept.
	reason = reason[:min(len(reason), 2*maxReason)]
	// Every match names " on " or a protocol; most reasons name neither,
	// and the regexp costs a few microseconds a message even when idle.
	if strings.Contains(reason, " on ") || strings.Contains(reason, "udp") || strings.Contains(reason, "tcp") {
		reason = socketDetail.ReplaceAllString(reason, "")
	}
	if !isPrintableASCII(reason) {
		q := strconv.QuoteToASCII(reason)
		reason = q[1 : len(q)-1]
	}
	// ASCII now: any cut is a character boundary.
	return reason[:min(len(reason), maxReason)]
}

// maxReason bounds a reason in our Authentication-Results: room for a DNS
// error naming a domain of 253 bytes, and more.
const maxReason = 512

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// commentText drops what would end or escape a comment.
var commentText = strings.NewReplacer("(", "", ")", "", "\\", "")

// StripOurAuthResults removes every Authentication-Results field whose
// authserv-id ours claims, which a sender may have added to forge results
// (RFC 8601 5: the fields of any authserv-id of our ADMD MUST be removed or
// renamed before ours is added). ours gets the id as a reader takes it
// (unquoted, after comments, without a trailing dot or control
// characters), in the sender's case. Fields of other authserv-ids are
// kept. It returns how many were removed.
func StripOurAuthResults(h *textproto.Header, ours func(authservID string) bool) int {
	removed := 0
	fields := h.FieldsByKey(HeaderField)
	for fields.Next() {
		if ours(authservIDOf(fields.Value())) {
			fields.Del()
			removed++
		}
	}
	return removed
}

// authservIDOf extracts the authserv-id from a field value: the first
// value, after any comments and before an optional version and the ';'
// (RFC 8601 2.2, with CFWS from RFC 5322 3.2.2). The value may be a
// quoted-string (RFC 2045 value), which readers unquote: taken as written,
// `"mx.example"; dkim=pass` was not ours and reached the customer's server
// as our result. A trailing dot, the same domain written absolute, is
// dropped.
func authservIDOf(v string) string {
	v = skipCFWS(v)
	if strings.HasPrefix(v, `"`) {
		v = unquote(v[1:])
	} else if end := strings.IndexFunc(v, func(r rune) bool { return r == ';' || r == '(' || r == ' ' || r == '\t' || r == '\r' || r == '\n' }); end >= 0 {
		v = v[:end]
	}
	// A reader that drops control characters (a NUL, a DEL) would read
	// "ours\x00" as ours: so does this comparison.
	return strings.TrimSuffix(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, v), ".")
}

// unquote returns the content of the quoted-string s starts inside of (its
// opening quote already read), quoted-pairs resolved, up to the closing
// quote or the end of s.
func unquote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			return b.String()
		case '\\':
			if i+1 < len(s) {
				i++
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// skipCFWS drops leading white space and (possibly nested) comments.
func skipCFWS(v string) string {
	for {
		v = strings.TrimLeft(v, " \t\r\n")
		if !strings.HasPrefix(v, "(") {
			return v
		}
		depth := 0
		i := 0
		for ; i < len(v); i++ {
			switch v[i] {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				break
			}
		}
		if i >= len(v) {
			return ""
		}
		v = v[i+1:]
	}
}

// pvalue writes a property value: a dot-atom address or token as is,
// anything else as a quoted-string (RFC 8601 2.2 pvalue).
func pvalue(s string) string {
	local, domain, ok := strings.Cut(s, "@")
	if ok && isToken(domain) && (local == "" || isToken(local)) {
		return s
	}
	if isToken(s) {
		return s
	}
	return quote(s)
}

// isToken reports an RFC 2045 token: printable ASCII without tspecials.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

// tokenChar is isToken's test of one byte, a table: searching the
// tspecials for each byte of each property value was a few percent of
// the check's time on cached DNS answers.
var tokenChar = byteSet(func(c byte) bool {
	return c > ' ' && c < 0x7f && strings.IndexByte(`()<>@,;:\"/[]?=`, c) < 0
})

// byteSet tabulates in for every byte.
func byteSet(in func(byte) bool) (set [256]bool) {
	for c := range set {
		set[c] = in(byte(c))
	}
	return set
}

func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	writeQuoted(&b, s)
	return b.String()
}

// writeQuoted writes s as a quoted-string, line breaks made spaces.
func writeQuoted(b *strings.Builder, s string) {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	b.WriteByte('"')
	b.WriteString(quotedPair.Replace(s))
	b.WriteByte('"')
}

// quotedPair escapes for a quoted-string (RFC 5322 §3.2.4). Built once: a
// Replacer builds its tables on first use, kilobytes each time.
var quotedPair = strings.NewReplacer(`\`, `\\`, `"`, `\"`)
