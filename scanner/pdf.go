package scanner

import (
	"bytes"
	"compress/zlib"
	"io"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Phishing moved into attached PDFs: a page with one "view document"
// button whose link annotation (/URI) leads to the credential form, so the
// mail itself carries no link for a blocklist or a rule. The links are
// read from the PDF's objects, those in Flate-compressed object streams
// included, as rspamd reads them.

const (
	// maxPDFLinks bounds the links taken from one message's PDFs.
	maxPDFLinks = 32
	// maxPDFInflated bounds the stream bytes inflated per message; they
	// are searched in chunks, never held whole.
	maxPDFInflated = 8 << 20
	// maxPDFString bounds a PDF string read as a link, and
	// maxPDFStringScan the bytes read for one: escapes and white space
	// that produce nothing must not let each /URI read to the end of
	// the file.
	maxPDFString     = 2048
	maxPDFStringScan = 4 * maxPDFString
	pdfChunk         = 32 << 10
)

var (
	pdfURIKey       = []byte("/URI")
	pdfStreamKey    = []byte("stream")
	pdfEndStreamKey = []byte("endstream")
)

// isPDF reports a PDF header where readers look for one: in the first
// kilobyte.
func isPDF(data []byte) bool {
	return bytes.Contains(data[:min(len(data), 1024)], []byte("%PDF-"))
}

// pdfLinks returns the /URI strings of a PDF, at most limit, inflating at
// most *inflateBudget bytes of its streams (and charging them).
func pdfLinks(data []byte, limit int, inflateBudget *int) []string {
	var links []string
	links = appendURIs(links, data, limit)
	inf := inflaters.Get().(*inflater)
	defer inflaters.Put(inf)
	eachFlateStream(data, inflateBudget, func() bool { return len(links) < limit }, func(stream []byte) {
		links = inf.uris(links, stream, limit, inflateBudget)
	})
	return links
}

// inflater inflates the Flate streams of one PDF one after another with
// one decompressor and one buffer. A PDF can be a million streams of a
// few bytes: a decompressor (its 32 KiB window) and a chunk buffer of
// their own for each allocated 650 times the size of the PDF.
type inflater struct {
	src bytes.Reader
	zr  io.ReadCloser
	buf []byte
}

// inflaters are shared by the PDFs of a message and across messages: a
// message can be a thousand text parts each carrying eight uuencoded
// PDFs of one tiny stream, and an inflater for each allocated 650 MB
// for 1 MB of mail.
var inflaters = sync.Pool{New: func() any { return new(inflater) }}

// open starts inflating stream; false when it has no valid zlib header.
func (f *inflater) open(stream []byte) (io.Reader, bool) {
	f.src.Reset(stream)
	if f.zr == nil {
		zr, err := zlib.NewReader(&f.src)
		if err != nil {
			return nil, false
		}
		f.zr = zr
		return zr, true
	}
	if err := f.zr.(zlib.Resetter).Reset(&f.src, nil); err != nil {
		return nil, false
	}
	return f.zr, true
}

// buffer is the chunk buffer, empty, with room for size bytes.
func (f *inflater) buffer(size int) []byte {
	if cap(f.buf) < size {
		f.buf = make([]byte, 0, size)
	}
	return f.buf[:0]
}

// eachFlateStream calls each with every Flate (zlib) stream of a PDF, in
// order, while more says so and *budget is left.
func eachFlateStream(data []byte, budget *int, more func() bool, each func(stream []byte)) {
	for rest := data; more() && *budget > 0; {
		i := bytes.Index(rest, pdfStreamKey)
		if i < 0 {
			return
		}
		isEnd := i >= 3 && bytes.Equal(rest[i-3:i], []byte("end"))
		rest = rest[i+len(pdfStreamKey):]
		if isEnd {
			continue
		}
		rest = bytes.TrimPrefix(bytes.TrimPrefix(rest, []byte("\r")), []byte("\n"))
		end := bytes.Index(rest, pdfEndStreamKey)
		if end < 0 {
			end = len(rest)
		}
		if isZlib(rest[:end]) {
			each(rest[:end])
		}
		rest = rest[end:]
	}
}

// isZlib checks a zlib header (RFC 1950): deflate, and the header check.
func isZlib(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0F == 8 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

// uris searches a Flate stream's output for /URI strings in
// chunks, each searched with the tail of the one before, so that a string
// across a chunk boundary is still whole.
func (f *inflater) uris(links []string, stream []byte, limit int, budget *int) []string {
	zr, ok := f.open(stream)
	if !ok {
		return links
	}
	buf := f.buffer(pdfChunk + maxPDFString + len(pdfURIKey))
	for len(links) < limit && *budget > 0 {
		n, err := io.ReadFull(zr, buf[len(buf):len(buf)+min(pdfChunk, *budget)])
		*budget -= n
		buf = buf[:len(buf)+n]
		final := err != nil
		// What follows the last /URI may be cut: it is searched again
		// with the next chunk.
		search := buf
		if !final {
			if i := bytes.LastIndex(buf, pdfURIKey); i >= 0 && len(buf)-i < maxPDFString+len(pdfURIKey) {
				search = buf[:i]
			}
		}
		links = appendURIs(links, search, limit)
		if final {
			break
		}
		keep := buf[len(search):]
		if len(keep) == 0 {
			keep = buf[max(len(buf)-len(pdfURIKey)+1, 0):] // a key cut at the boundary
		}
		buf = append(buf[:0], keep...)
	}
	return links
}

// appendURIs appends the strings after each /URI key in b.
func appendURIs(links []string, b []byte, limit int) []string {
	var gap hexGap
	for len(links) < limit {
		i := bytes.Index(b, pdfURIKey)
		if i < 0 {
			break
		}
		b = b[i+len(pdfURIKey):]
		if s, ok := pdfString(b, &gap); ok && s != "" {
			links = append(links, s)
		}
	}
	return links
}

// hexGap remembers, over one search of a buffer, a run of its bytes that
// holds no hexadecimal digit nor '>', nothing a hex string reads. Such a
// string yields no link, so it does not count toward the limit, and the
// keys in it ("/URI <" itself is such a run) each read it again: a PDF
// of "/URI <" repeated scanned maxPDFStringScan bytes for every 6, 8 s
// of CPU for 2 MB. The run is kept by its bytes' distances from the
// buffer's end, as every slice read is a suffix of the buffer: those
// from to+1 to from.
type hexGap struct{ from, to int }

// skip returns how many leading bytes of rest, a suffix of the buffer,
// a hex string reads nothing from.
func (g *hexGap) skip(rest []byte) int {
	if len(rest) > g.from || len(rest) <= g.to {
		n := 0
		for n < len(rest) && rest[n] != '>' && !isHex(rest[n]) {
			n++
		}
		g.from, g.to = len(rest), len(rest)-n
	}
	return len(rest) - g.to
}

// pdfString reads the PDF string object at the start of b after white
// space: a literal "(...)" with its escapes and balanced parentheses, or a
// hexadecimal "<...>" (ISO 32000-1 7.3.4). A UTF-16BE string (with its
// byte order mark) is converted to UTF-8. gap, if not nil, is the search
// of the buffer b is a suffix of.
func pdfString(b []byte, gap *hexGap) (string, bool) {
	b = bytes.TrimLeft(b, " \t\r\n\f\x00")
	if len(b) == 0 {
		return "", false
	}
	skip := 0
	if gap != nil && b[0] == '<' {
		skip = gap.skip(b[1:])
	}
	b = b[:min(len(b), maxPDFStringScan)]
	var out []byte
	switch {
	case b[0] == '(':
		depth := 0
		for i := 1; i < len(b) && len(out) < maxPDFString; i++ {
			c := b[i]
			switch {
			case c == '\\' && i+1 < len(b):
				i++
				switch e := b[i]; e {
				case 'n':
					out = append(out, '\n')
				case 'r':
					out = append(out, '\r')
				case 't':
					out = append(out, '\t')
				case 'b':
					out = append(out, '\b')
				case 'f':
					out = append(out, '\f')
				case '\r', '\n': // a line continuation
					if e == '\r' && i+1 < len(b) && b[i+1] == '\n' {
						i++
					}
				default:
					if e >= '0' && e <= '7' {
						v := int(e - '0')
						for k := 0; k < 2 && i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '7'; k++ {
							i++
							v = v*8 + int(b[i]-'0')
						}
						out = append(out, byte(v))
					} else {
						out = append(out, e)
					}
				}
			case c == '(':
				depth++
				out = append(out, c)
			case c == ')':
				if depth == 0 {
					return decodePDFText(out), true
				}
				depth--
				out = append(out, c)
			default:
				out = append(out, c)
			}
		}
		return decodePDFText(out), len(out) > 0
	case b[0] == '<' && (len(b) < 2 || b[1] != '<'):
		var hi byte
		odd := false
		for _, c := range b[min(1+skip, len(b)):] {
			if c == '>' || len(out) >= maxPDFString {
				break
			}
			if !isHex(c) {
				continue
			}
			if odd {
				out = append(out, hi<<4|unhex(c))
			} else {
				hi = unhex(c)
			}
			odd = !odd
		}
		if odd {
			out = append(out, hi<<4)
		}
		return decodePDFText(out), true
	}
	return "", false
}

func decodePDFText(b []byte) string {
	if len(b) >= 2 && b[0] == 0xFE && b[1] == 0xFF {
		u := make([]uint16, 0, (len(b)-2)/2)
		for i := 2; i+1 < len(b); i += 2 {
			u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
		}
		return string(utf16.Decode(u))
	}
	return string(b)
}

// PDF actions that run something (ISO 32000-1 12.6.4): a launch action
// starts a program or opens a file, a JavaScript action runs a script, on
// opening (/OpenAction) or on a click.
var (
	pdfLaunchKey = []byte("/Launch")
	pdfJSKey     = []byte("/JavaScript")
)

// PDFActions reports launch and JavaScript actions in a PDF, searched in
// its objects and in its Flate streams (object streams hide them there),
// inflating at most *inflateBudget bytes (and charging them). A name's
// #xx escapes are undone (7.3.5): "/J#61vaScript" is /JavaScript to a
// reader.
func PDFActions(data []byte, inflateBudget *int) (launch, javascript bool) {
	find := func(b []byte) {
		if bytes.IndexByte(b, '#') >= 0 {
			b = unescapePDFNames(b)
		}
		launch = launch || hasPDFName(b, pdfLaunchKey)
		javascript = javascript || hasPDFName(b, pdfJSKey)
	}
	find(data)
	inf := inflaters.Get().(*inflater)
	defer inflaters.Put(inf)
	eachFlateStream(data, inflateBudget, func() bool { return !(launch && javascript) }, func(stream []byte) {
		inf.names(stream, inflateBudget, find)
	})
	return launch, javascript
}

// pdfNameOverlap is what each inflated chunk keeps of the one before: a
// name cut at the boundary, even with every letter escaped, is whole.
const pdfNameOverlap = 3 * 16

// names passes a Flate stream's output to find in chunks, each
// with the tail of the one before.
func (f *inflater) names(stream []byte, budget *int, find func([]byte)) {
	zr, ok := f.open(stream)
	if !ok {
		return
	}
	buf := f.buffer(pdfChunk + pdfNameOverlap)
	for *budget > 0 {
		n, err := io.ReadFull(zr, buf[len(buf):len(buf)+min(pdfChunk, *budget)])
		*budget -= n
		buf = buf[:len(buf)+n]
		find(buf)
		if err != nil {
			return
		}
		buf = append(buf[:0], buf[max(len(buf)-pdfNameOverlap, 0):]...)
	}
}

// hasPDFName reports name in b as a whole name, not the start of a longer
// one (/JavaScriptX).
func hasPDFName(b, name []byte) bool {
	for {
		i := bytes.Index(b, name)
		if i < 0 {
			return false
		}
		b = b[i+len(name):]
		if len(b) == 0 || !isPDFRegular(b[0]) {
			return true
		}
	}
}

// isPDFRegular: not white space nor a delimiter (7.2.2), so part of a name.
func isPDFRegular(c byte) bool {
	return bytes.IndexByte(pdfNotRegular, c) < 0
}

var pdfNotRegular = []byte(" \t\r\n\f\x00()<>[]{}/%")

// unescapePDFNames undoes #xx escapes, wherever they are: what they
// produce outside names is not searched for.
func unescapePDFNames(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '#' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]) {
			out = append(out, unhex(b[i+1])<<4|unhex(b[i+2]))
			i += 2
			continue
		}
		out = append(out, b[i])
	}
	return out
}

// Bounds of PDFText: the text callback and extortion lures put on a page
// is a few hundred words, and each stream is inflated whole before it is
// read, so one is read only up to maxPDFTextStream.
const (
	maxPDFTextStream = 256 << 10
	pdfTextOperator  = 4 // bytes after a string searched for its operator
)

// PDFText returns the text a PDF shows with literal strings (the Tj, TJ,
// ' and " operators of its content streams, ISO 32000-1 9.4.3), in its
// uncompressed objects and its Flate streams, up to limit bytes,
// inflating at most *inflateBudget bytes (and charging them). Strings a
// font maps through a CMap (hexadecimal glyph numbers) are not decoded:
// what comes out is the text of PDFs written with standard encodings,
// which is how invoice and letter generators write them, or nothing.
func PDFText(data []byte, limit int, inflateBudget *int) string {
	var b strings.Builder
	appendPDFText(&b, data, limit)
	inf := inflaters.Get().(*inflater)
	defer inflaters.Put(inf)
	eachFlateStream(data, inflateBudget, func() bool { return b.Len() < limit }, func(stream []byte) {
		zr, ok := inf.open(stream)
		if !ok {
			return
		}
		size := min(maxPDFTextStream, *inflateBudget)
		n, _ := io.ReadFull(zr, inf.buffer(size)[:size])
		buf := inf.buf[:n]
		*inflateBudget -= n
		appendPDFText(&b, buf, limit)
	})
	return b.String()
}

// appendPDFText appends to b, space-separated, the literal strings of
// content that a text-showing operator shows.
func appendPDFText(b *strings.Builder, content []byte, limit int) {
	// closeAt is the first ']' at or after the last '[' looked at
	// (len(content) when none): searched once for every '[' before it, a
	// run of '[' without one read the search window again at each, 8 KiB
	// a byte.
	closeAt := -1
	for i := 0; i < len(content) && b.Len() < limit; i++ {
		switch content[i] {
		case '(':
			s, end := pdfLiteral(content[i:])
			if end < 0 {
				return
			}
			i += end
			if op := pdfOperator(content[i+1:]); op == "Tj" || op == "'" || op == "\"" {
				appendShown(b, s, limit)
			}
		case '[':
			// A TJ array: strings with kerning numbers between them,
			// which keep the letters of one word apart on the page.
			if closeAt < i {
				closeAt = len(content)
				if k := bytes.IndexByte(content[i:], ']'); k >= 0 {
					closeAt = i + k
				}
			}
			j := closeAt - i
			if closeAt == len(content) || j >= maxPDFStringScan || pdfOperator(content[closeAt+1:]) != "TJ" {
				continue
			}
			var word []byte
			for k := i + 1; k < i+j; k++ {
				if content[k] != '(' {
					continue
				}
				s, end := pdfLiteral(content[k : i+j])
				if end < 0 {
					break
				}
				word = append(word, s...)
				k += end
			}
			appendShown(b, string(word), limit)
			i += j
		}
	}
}

// pdfLiteral reads the literal string at the start of b: its text and
// the index of its closing parenthesis, -1 when it has none.
func pdfLiteral(b []byte) (string, int) {
	depth := 0
	for i := 1; i < len(b) && i < maxPDFStringScan; i++ {
		switch b[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			if depth == 0 {
				s, _ := pdfString(b[:i+1], nil)
				return s, i
			}
			depth--
		}
	}
	return "", -1
}

// pdfOperator is the operator that follows a string operand, after
// white space.
func pdfOperator(b []byte) string {
	b = bytes.TrimLeft(b[:min(len(b), 64)], " \t\r\n\f\x00")
	n := 0
	for n < len(b) && n < pdfTextOperator && (b[n] == '\'' || b[n] == '"' || b[n] >= 'A' && b[n] <= 'Z' || b[n] >= 'a' && b[n] <= 'z') {
		n++
	}
	return string(b[:n])
}

// appendShown appends a shown string unless it is mostly not text: glyph
// numbers of a CMap-encoded font read as bytes.
func appendShown(b *strings.Builder, s string, limit int) {
	if s == "" {
		return
	}
	printable := 0
	for _, r := range s {
		if r >= ' ' && r != utf8.RuneError {
			printable++
		}
	}
	if printable*5 < utf8.RuneCountInString(s)*4 {
		return
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(s[:min(len(s), max(0, limit-b.Len()))])
}
