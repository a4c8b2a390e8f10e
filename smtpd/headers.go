package smtpd

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/replytext"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/verdict"
	"golang.org/x/net/idna"
)

// addedHeaderAllowance is what our prepended fields may add to a message's
// size: Received, Authentication-Results, X-Spam-* and check headers.
const addedHeaderAllowance = 4096

// ownedHeaders are fields only we may set: inbound copies are removed so a
// sender cannot pre-label its spam "X-Spam-Status: No" for the customer's
// filters. The verdict fields of SpamAssassin and rspamd that customers'
// filters also read (X-Spam-Level's stars, rspamd's "X-Spam: Yes") go too,
// as SpamAssassin drops its own on the way in: a sender's, or its outbound
// filter's, would be taken for ours.
var ownedHeaders = []string{"X-Spam-Status", "X-Spam-Score", "X-Spam-Symbols", "X-Spam-Flag", "X-Mxgrid-Virus-Scan", "X-Mxgrid-Virus",
	"X-Spam-Level", "X-Spam-Report", "X-Spam-Checker-Version", "X-Spam", "X-Spamd-Result", "X-Spamd-Bar"}

// compose returns the message as relayed, as what goes before the original
// bytes (our fields, newest first as RFC 5321 §4.4 wants trace fields, and
// the header when it had to change) and the offset in the original from
// which the rest follows, so the body is never copied. The original header
// is re-serialised only when something in it had to change, so a clean
// message arrives byte-identical below our fields.
func (ss *session) compose(msg *scanner.Message, v scanner.Verdict, policy scanner.Policy) (head []byte, off int64) {
	// The header is the scanned message's, shared until an edit needs a
	// copy: most messages need none.
	h := msg.Header
	changed := false
	if ss.srv.deps.PrepareHeader != nil {
		h, changed = ss.srv.deps.PrepareHeader(h)
	}
	edit := func() {
		if !changed {
			h = h.Copy()
			changed = true
		}
	}
	for _, k := range ownedHeaders {
		if h.Has(k) {
			edit()
			h.Del(k)
		}
	}
	if v.Action == scanner.Tag && policy.SubjectTag != "" {
		tag := policy.SubjectTag
		subj := h.Get("Subject")
		tagged := strings.HasPrefix(subj, tag)
		if !mailaddr.IsASCII(tag) {
			// As an encoded word (RFC 2047) the tag leaves a 7-bit
			// message 7-bit: raw, a reseller's "[СПАМ]" made every
			// tagged message 8-bit, refused 554 5.6.3 for a customer's
			// server without 8BITMIME. Before an encoded word the
			// space between the two is no text (RFC 2047 6.2), so the
			// space goes inside the tag's word. A subject we tagged
			// before a plain one starts with the word without it, and
			// reads as an encoded subject: it is tagged already.
			word := mime.QEncoding.Encode("utf-8", tag)
			tagged = strings.HasPrefix(subj, word)
			if startsWithEncodedWord(subj) {
				word = mime.QEncoding.Encode("utf-8", tag+" ")
				tagged = tagged || strings.HasPrefix(subj, word)
			}
			tag = word
		}
		if !tagged {
			edit()
			tagSubject(&h, tag)
		}
	}
	rewrite := changed || msg.HeaderUnterminated

	// Our fields take a few hundred bytes; a rewritten header follows
	// them. Room for the header only when it is rewritten: most messages
	// keep theirs, and the room went unused (a real message's header is
	// several KB).
	room := 1024
	if rewrite {
		room += msg.BodyOffset
	}
	var top bytes.Buffer
	top.Grow(room)
	ss.writeReceived(&top)
	authServID := ss.srv.deps.AuthServID
	if authServID == "" {
		authServID = ss.srv.cfg.Hostname
	}
	if len(v.AuthResults) > 0 {
		writeField(&top, "Authentication-Results", authServID+"; "+strings.Join(v.AuthResults, "; "))
	}
	for _, h := range v.Headers {
		writeField(&top, h.Name, h.Value)
	}
	if v.Action == scanner.Tag && v.Reason == verdict.ReasonVirus {
		writeField(&top, "X-Mxgrid-Virus", v.Detail)
	}
	if v.Action == scanner.Tag {
		writeField(&top, "X-Spam-Flag", "YES")
		status := fmt.Sprintf("Yes, score=%.2f required=%.2f", v.Score, policy.TagScore)
		if v.Calibrated {
			status += fmt.Sprintf(" probability=%.3f", v.Probability)
		}
		writeField(&top, "X-Spam-Status", status)
		writeField(&top, "X-Spam-Score", fmt.Sprintf("%.2f", v.Score))
		writeField(&top, "X-Spam-Symbols", scanner.SymbolNames(v.TopSymbols(len(v.Symbols))))
	}

	// A header ended by a line that is not a field is written back with
	// the empty line WriteHeader ends every header with: that line is the
	// body's first, downstream as in the scan.
	if !rewrite {
		return top.Bytes(), 0
	}
	ours := top.Len()
	if err := textproto.WriteHeader(&top, h); err != nil {
		// The parser accepted these fields; if one cannot be written back,
		// relaying the original header is better than losing the message.
		ss.log.Warn("could not rewrite header, relaying it unchanged", "queue_id", ss.queueID, "err", err)
		top.Truncate(ours)
		if msg.HeaderUnterminated {
			// Unchanged, it would hide what follows the line that ended
			// it; behind an empty line nothing of it is read as a field.
			top.WriteString("\r\n")
		}
		return top.Bytes(), 0
	}
	return top.Bytes(), int64(msg.BodyOffset)
}

// tagSubject puts tag at the start of the header's first Subject field,
// in the sender's own lines and where the field stands, and drops any
// later Subject field (a filter reading one would miss the tag). Set
// anew, the field went to the top of the header folded by go-message,
// which left continuation lines of blanks alone from a run of blanks and
// dropped the sender's folding. A header without a Subject gets one
// holding the tag, at the top.
func tagSubject(h *textproto.Header, tag string) {
	var fields [][]byte
	found := false
	for f := h.Fields(); f.Next(); {
		raw, err := f.Raw()
		if err != nil {
			// A field we added that cannot be written: go-message's
			// own way then, which WriteHeader reports as it did.
			h.Set("Subject", strings.TrimSpace(tag+" "+h.Get("Subject")))
			return
		}
		if f.Key() == "Subject" {
			if found {
				continue
			}
			found = true
			raw = taggedSubjectField(raw, tag)
		}
		fields = append(fields, raw)
	}
	if !found {
		fields = append([][]byte{[]byte("Subject: " + tag + "\r\n")}, fields...)
	}
	// AddRaw puts a field on top: the last field goes in first.
	var tagged textproto.Header
	for i := len(fields) - 1; i >= 0; i-- {
		tagged.AddRaw(fields[i])
	}
	*h = tagged
}

// taggedSubjectField returns a Subject field, raw as it was read (name,
// colon, value lines, CRLF), with tag at the start of its value: on the
// first line, or alone on it and the sender's lines after, as a fold,
// when the tag would take the first line past RFC 5322's 78 characters.
func taggedSubjectField(raw []byte, tag string) []byte {
	colon := bytes.IndexByte(raw, ':')
	name, value := raw[:colon+1], raw[colon+1:]
	first := value
	if i := bytes.Index(value, []byte("\r\n")); i >= 0 {
		first = value[:i]
	}
	out := make([]byte, 0, len(raw)+len(tag)+4)
	out = append(append(append(out, name...), ' '), tag...)
	if len(first) > 0 {
		// "Subject:report": the tag and the value need a blank between.
		sep := ""
		if first[0] != ' ' && first[0] != '\t' {
			sep = " "
		}
		if len(out)+len(sep)+len(first) > 78 {
			// Folded, the line break and the blank after it read as
			// one blank: the tag and the value stay apart.
			out = append(out, "\r\n"...)
		}
		out = append(out, sep...)
	}
	return append(out, value...)
}

// startsWithEncodedWord reports whether a field's value begins with what
// reads as an RFC 2047 encoded word: "=?" up to "?=" before the first
// white space.
func startsWithEncodedWord(v string) bool {
	first := strings.TrimLeft(v, " \t\r\n")
	if i := strings.IndexAny(first, " \t\r\n"); i >= 0 {
		first = first[:i]
	}
	return len(first) >= 8 && strings.HasPrefix(first, "=?") && strings.HasSuffix(first, "?=")
}

// relayed reads the message as it leaves: our fields (compose's head),
// then the message as received from compose's offset. One value, where
// io.MultiReader over a bytes.Reader of the head was three allocations a
// message; it reads the same bytes in the same order.
type relayed struct {
	head []byte
	rest io.Reader
}

func (r *relayed) Read(p []byte) (int, error) {
	if len(r.head) > 0 {
		n := copy(p, r.head)
		r.head = r.head[n:]
		return n, nil
	}
	return r.rest.Read(p)
}

// writeReceived writes our trace field (RFC 5321 §4.4). No reverse DNS:
// mail flow must not depend on DNS, so only the address is given. It goes
// through writeField like every field we write, so however long the HELO
// or recipient, its lines stay within RFC 5322's 998 octets.
func (ss *session) writeReceived(w *bytes.Buffer) {
	// The protocol as RFC 3848 and RFC 6531 §3.7.4 name it: what the
	// client negotiated, not what we offer.
	_, tls := ss.conn.TLSConnectionState()
	with := "SMTP"
	switch {
	case ss.mailOpts.UTF8:
		with = "UTF8SMTP"
	case ss.conn.ESMTP() || tls:
		with = "ESMTP"
	}
	if tls {
		with += "S"
	}
	helo := receivedHELO(asciiHELO(ss.helo()))
	// Built by appending: one string for the whole value, not one per part.
	v := make([]byte, 0, 256)
	v = append(v, "from "...)
	v = append(v, helo...)
	v = append(v, " (["...)
	if ss.clientIP.Is6() {
		v = append(v, "IPv6:"...)
	}
	v = append(v, ss.clientIP.String()...)
	v = append(v, "]) by "...)
	v = append(v, ss.srv.cfg.Hostname...)
	v = append(v, " (mxgrid) with "...)
	v = append(v, with...)
	v = append(v, " id "...)
	v = append(v, ss.queueID...)
	if len(ss.rcpts) == 1 {
		// Naming recipients of a multi-recipient message would disclose Bcc.
		v = append(v, " for <"...)
		v = append(v, ss.rcpts[0]...)
		v = append(v, '>')
	}
	v = append(v, "; "...)
	v = time.Now().AppendFormat(v, time.RFC1123Z)
	writeField(w, "Received", string(v))
}

// asciiHELO is the client's HELO as our Received field gives it: a UTF-8
// name as its A-label (RFC 5890), anything else not ASCII escaped. Written
// as sent, it made every message from that client 8-bit, which a customer's
// server without 8BITMIME is not sent (RFC 6152).
func asciiHELO(helo string) string {
	if helo == "" {
		return "unknown"
	}
	return asciiName(helo)
}

// receivedHELO is an ASCII HELO as our Received field's from-domain may
// hold it: a character with a meaning in the field (RFC 5322 §3.6.7: a
// comment's parenthesis, the ';' before the date, a quote, a backslash,
// angle brackets, square brackets but those of a whole address literal)
// becomes '?'. Written as sent, "x(" opened a comment that hid the
// client's address, our name and the date from whoever reads the trace.
func receivedHELO(helo string) string {
	inner := strings.TrimSuffix(strings.TrimPrefix(helo, "["), "]")
	literal := len(inner) == len(helo)-2 && !strings.ContainsAny(inner, "[]")
	return strings.Map(func(r rune) rune {
		switch r {
		case '(', ')', ';', '"', '\\', '<', '>':
			return '?'
		case '[', ']':
			if !literal {
				return '?'
			}
		}
		return r
	}, helo)
}

// asciiName is a client-given name as DNS and 7-bit headers take it: a
// UTF-8 name as its A-label, anything else not ASCII escaped.
func asciiName(name string) string {
	if mailaddr.IsASCII(name) {
		return name
	}
	if a, err := idna.Lookup.ToASCII(name); err == nil {
		return a
	}
	q := strconv.QuoteToASCII(name)
	return q[1 : len(q)-1]
}

// maxFieldLine is RFC 5322 §2.1.1's hard limit on a header line, CRLF
// excluded.
const maxFieldLine = 998

// writeField writes one field, folding long values at spaces or commas so
// lines stay under RFC 5322 §2.1.1's 78-character recommendation. A run of
// text with no fold opportunity that would pass 998 octets is broken
// anyway: the fold adds a space to the unfolded value, but a longer line
// is not a legal field and strict servers refuse the whole message.
// Runs of blanks become one space first (unfolding treats any run of
// folding white space alike), so a cut can never leave a blank-only line.
func writeField(w *bytes.Buffer, name, value string) {
	value = collapseBlanks(sanitizeHeaderText(value))
	w.WriteString(name)
	w.WriteString(": ")
	width := len(name) + 2
	first := true
	for rest := value; rest != ""; first = false {
		tok := rest[:foldableLen(rest)]
		rest = rest[len(tok):]
		if !first && width+len(tok) > 78 {
			tok = strings.TrimLeft(tok, " \t")
			if tok == "" {
				continue // a fold would leave a whitespace-only line
			}
			w.WriteString("\r\n\t")
			width = 1
		}
		for width+len(tok) > maxFieldLine {
			cut := max(maxFieldLine-width, 0)
			for cut > 0 && !utf8.RuneStart(tok[cut]) {
				cut--
			}
			if cut == 0 && width <= 1 {
				// No rune boundary in a whole line (bytes that are not
				// UTF-8): cut between bytes rather than fold forever.
				cut = maxFieldLine - width
			}
			w.WriteString(tok[:cut])
			w.WriteString("\r\n\t")
			width = 1
			tok = tok[cut:]
		}
		w.WriteString(tok)
		width += len(tok)
	}
	w.WriteString("\r\n")
}

// collapseBlanks turns each run of spaces and tabs into one space.
func collapseBlanks(s string) string {
	i := blankRun(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		b.WriteString(s[:i])
		b.WriteByte(' ')
		s = strings.TrimLeft(s[i:], " \t")
		i = blankRun(s)
	}
	b.WriteString(s)
	return b.String()
}

// blankRun returns the index of the first tab or run of two spaces in s,
// the first place collapseBlanks changes, or -1.
func blankRun(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\t' || (s[i] == ' ' && i+1 < len(s) && (s[i+1] == ' ' || s[i+1] == '\t')) {
			return i
		}
	}
	return -1
}

// foldableLen is the length of the token s starts with: up to the next
// fold opportunity, a space or just after a comma (the token's first byte
// is never a cut, so each token makes progress).
func foldableLen(s string) int {
	for i := 1; i < len(s); i++ {
		if s[i] == ' ' || s[i-1] == ',' {
			return i
		}
	}
	return len(s)
}

// sanitizeHeaderText keeps client-supplied text (HELO, addresses, check
// details) from injecting header lines: control characters other than tab
// become spaces, invalid UTF-8 becomes '?'.
func sanitizeHeaderText(s string) string {
	return replytext.Printable(s)
}
