package scanner

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"
	// Registers every charset x/text knows with go-message; without it
	// text parts in anything but UTF-8/ASCII stay undecoded.
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Symbols the parser itself emits. Broken or hostile MIME never fails a
// scan: it becomes one of these, with a weight.
const (
	SymbolHeaderBroken    = "HEADER_BROKEN"
	SymbolMIMEBroken      = "MIME_BROKEN"
	SymbolUnknownCharset  = "MIME_UNKNOWN_CHARSET"
	SymbolUnknownEncoding = "MIME_UNKNOWN_ENCODING"
	SymbolMIMETooComplex  = "MIME_TOO_COMPLEX"
)

// ParserWeights are the default weights of the parser's symbols. Broken
// MIME is common in spamware output and rare from real MUAs, but it does
// happen (truncated mail, old list software), so it stays below the tag
// score. A message past the parser's limits is different: what could not
// be read cannot be judged, and hiding text behind 200 empty parts is a
// way to do that, so MIME_TOO_COMPLEX tags on its own.
func ParserWeights() map[string]float64 {
	return map[string]float64{
		SymbolHeaderBroken:    1.5,
		SymbolMIMEBroken:      1.5,
		SymbolUnknownCharset:  1.0,
		SymbolUnknownEncoding: 1.0,
		SymbolMIMETooComplex:  DefaultTagScore,
	}
}

// Limits that bound the work one message can cause. They are generous for
// real mail and stop decompression-bomb-like nesting and part floods.
const (
	maxParts = 200
	// maxWalkParts bounds the walk itself. Past maxParts the parts are no
	// longer listed (MIME_TOO_COMPLEX, which tags), but their text is
	// still read, so 205 empty parts cannot hide the text behind them
	// from the model and the rules.
	maxWalkParts = 5 * maxParts
	maxDepth     = 10
	maxTextBytes = 1 << 20 // decoded text kept per message (plain + HTML source)
	maxURLs      = 500
)

// Message is a message parsed once and shared read-only by every check.
type Message struct {
	// Raw is the message exactly as received (CRLF line endings).
	Raw []byte
	// Header is the top-level header.
	Header textproto.Header
	// BodyOffset is where the body starts in Raw.
	BodyOffset int
	// Symbols are findings of the parser itself (for example MIME_BROKEN).
	Symbols []Symbol

	// Subject is the decoded (RFC 2047) subject.
	Subject string
	// FromName and FromAddr come from the first From address; FromAddr is
	// lower-cased. Both are empty when From is missing or unparsable.
	FromName string
	FromAddr string
	// Text is the decoded text of the text/plain parts, in tree order.
	Text string
	// HTML describes the text/html parts: visible text, hidden text, links.
	HTML HTMLInfo
	// URLs are the links found in text and HTML parts (HTML hrefs and image
	// sources first, then bare URLs in plain text), at most maxURLs.
	URLs []URL
	// Parts lists every entity of the MIME tree in depth-first order,
	// multipart containers included (their Size is 0).
	Parts []Part
	// Structure is the shape of the MIME tree, for example
	// "multipart/alternative(text/plain,text/html)".
	Structure string
}

// Part is one entity of the MIME tree.
type Part struct {
	Depth       int
	ContentType string // lower-case media type, "text/plain" when absent
	Charset     string // lower-case charset parameter, if any
	Encoding    string // lower-case Content-Transfer-Encoding, if any
	Disposition string // lower-case disposition (inline, attachment), if any
	Filename    string // decoded file name from Content-Disposition or Content-Type name
	Size        int    // decoded size in bytes
}

// IsAttachment reports whether the part is meant as a file rather than as
// the message's text.
func (p Part) IsAttachment() bool {
	if p.Disposition == "attachment" || p.Filename != "" {
		return true
	}
	return !strings.HasPrefix(p.ContentType, "text/") && !strings.HasPrefix(p.ContentType, "multipart/") &&
		p.ContentType != "message/rfc822"
}

// Parser turns raw messages into Messages. The zero value is not usable;
// use NewParser.
type Parser struct {
	weights map[string]float64
}

// NewParser returns a parser whose symbols carry the default weights,
// overridden by overrides (keyed by symbol name; other names are ignored).
func NewParser(overrides map[string]float64) *Parser {
	w := ParserWeights()
	for name := range w {
		if v, ok := overrides[name]; ok {
			w[name] = v
		}
	}
	return &Parser{weights: w}
}

var defaultParser = NewParser(nil)

// Parse parses raw with the default parser weights. It never fails: what
// cannot be parsed becomes a symbol.
func Parse(raw []byte) *Message {
	return defaultParser.Parse(raw)
}

// Parse parses raw. It never fails: what cannot be parsed becomes a symbol.
// raw may use CRLF or bare LF line endings and may start with an mbox
// "From " line (files from mail archives do).
func (p *Parser) Parse(raw []byte) *Message {
	m := &Message{Raw: raw}
	start := 0
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			start = i + 1
		} else {
			start = len(raw)
		}
	}
	rd := bytes.NewReader(raw[start:])
	br := bufio.NewReader(rd)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		p.add(m, SymbolHeaderBroken, err.Error())
	}
	m.Header = h
	m.BodyOffset = len(raw) - rd.Len() - br.Buffered()

	mh := mail.Header{Header: message.Header{Header: h}}
	if s, err := mh.Subject(); err == nil {
		m.Subject = s
	} else {
		m.Subject = h.Get("Subject")
	}
	m.parseFrom(mh)

	w := walker{m: m, p: p}
	ent, err := message.New(message.Header{Header: h}, bytes.NewReader(raw[m.BodyOffset:]))
	w.entityError(err)
	if ent != nil {
		var sb strings.Builder
		w.walk(ent, 0, &sb)
		m.Structure = sb.String()
	}
	m.Text = w.text.String()
	m.HTML = w.html.info
	m.URLs = append(w.html.urls, FindURLs(m.Text, maxURLs-len(w.html.urls))...)
	return m
}

func (m *Message) parseFrom(mh mail.Header) {
	addrs, err := mh.AddressList("From")
	if err == nil && len(addrs) > 0 {
		m.FromName = addrs[0].Name
		m.FromAddr = strings.ToLower(addrs[0].Address)
		return
	}
	// Unparsable From (raw 8-bit names are common): keep what looks like
	// a display name and an address so the model and rules still see them.
	raw := mh.Get("From")
	if i := strings.IndexByte(raw, '<'); i >= 0 {
		m.FromName = strings.Trim(strings.TrimSpace(raw[:i]), `"`)
		if j := strings.IndexByte(raw[i:], '>'); j > 0 {
			m.FromAddr = strings.ToLower(strings.TrimSpace(raw[i+1 : i+j]))
		}
	}
}

func (p *Parser) add(m *Message, name, detail string) {
	for _, s := range m.Symbols {
		if s.Name == name {
			return // one symbol per finding kind is enough to explain it
		}
	}
	if len(detail) > 200 {
		detail = detail[:200]
	}
	m.Symbols = append(m.Symbols, Symbol{Name: name, Score: p.weights[name], Detail: detail})
}

// walker carries the state of one depth-first walk of the MIME tree.
type walker struct {
	m     *Message
	p     *Parser
	text  strings.Builder
	html  htmlExtractor
	kept  int // decoded text bytes kept so far
	parts int
	buf   bytes.Buffer
}

func (w *walker) entityError(err error) {
	switch {
	case err == nil:
	case message.IsUnknownCharset(err):
		w.p.add(w.m, SymbolUnknownCharset, err.Error())
	case message.IsUnknownEncoding(err):
		w.p.add(w.m, SymbolUnknownEncoding, err.Error())
	default:
		w.p.add(w.m, SymbolMIMEBroken, err.Error())
	}
}

func (w *walker) walk(e *message.Entity, depth int, shape *strings.Builder) {
	w.parts++
	if w.parts > maxParts || depth > maxDepth {
		w.p.add(w.m, SymbolMIMETooComplex, fmt.Sprintf("more than %d parts or %d levels", maxParts, maxDepth))
	}
	if w.parts > maxWalkParts || depth > maxDepth {
		return
	}
	part := Part{Depth: depth, Encoding: strings.ToLower(strings.TrimSpace(e.Header.Get("Content-Transfer-Encoding")))}
	ct, params, err := e.Header.ContentType()
	if err != nil && e.Header.Get("Content-Type") != "" {
		w.p.add(w.m, SymbolMIMEBroken, "Content-Type: "+err.Error())
	}
	if ct == "" {
		ct = "text/plain" // RFC 2045 section 5.2
	}
	part.ContentType = ct
	part.Charset = strings.ToLower(params["charset"])
	if disp, dparams, err := e.Header.ContentDisposition(); err == nil {
		part.Disposition = disp
		part.Filename = dparams["filename"]
	}
	if part.Filename == "" {
		part.Filename = params["name"]
	}
	idx := -1
	if w.parts <= maxParts {
		idx = len(w.m.Parts)
		w.m.Parts = append(w.m.Parts, part)
	}
	if shape.Len() < 512 {
		shape.WriteString(ct)
	}

	if mr := e.MultipartReader(); mr != nil {
		if params["boundary"] == "" {
			w.p.add(w.m, SymbolMIMEBroken, ct+" without boundary")
		}
		if shape.Len() < 512 {
			shape.WriteByte('(')
		}
		for n := 0; ; n++ {
			child, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if child == nil {
				w.p.add(w.m, SymbolMIMEBroken, "multipart: "+err.Error())
				break
			}
			w.entityError(err)
			if n > 0 && shape.Len() < 512 {
				shape.WriteByte(',')
			}
			w.walk(child, depth+1, shape)
			if w.parts > maxWalkParts {
				break
			}
		}
		if shape.Len() < 512 {
			shape.WriteByte(')')
		}
		return
	}

	if ct == "message/rfc822" && part.Disposition != "attachment" {
		// A forwarded message: its text counts as this message's text.
		inner, err := message.Read(e.Body)
		w.entityError(err)
		if inner != nil {
			if shape.Len() < 512 {
				shape.WriteByte('(')
			}
			w.walk(inner, depth+1, shape)
			if shape.Len() < 512 {
				shape.WriteByte(')')
			}
		}
		return
	}

	size, err := w.readBody(e.Body, part)
	if idx >= 0 {
		w.m.Parts[idx].Size = size
	}
	if err != nil {
		w.p.add(w.m, SymbolMIMEBroken, ct+" body: "+err.Error())
	}
}

// readBody consumes a leaf part, keeping its decoded text when it is text
// the recipient reads, and returns its decoded size.
func (w *walker) readBody(body io.Reader, part Part) (int, error) {
	isText := (part.ContentType == "text/plain" || part.ContentType == "text/html") && part.Disposition != "attachment"
	if !isText || w.kept >= maxTextBytes {
		n, err := io.Copy(io.Discard, body)
		return int(n), err
	}
	w.buf.Reset()
	n, err := io.Copy(&w.buf, io.LimitReader(body, int64(maxTextBytes-w.kept)))
	rest, err2 := io.Copy(io.Discard, body)
	if err == nil {
		err = err2
	}
	w.kept += int(n)
	if part.ContentType == "text/html" {
		w.html.extract(w.buf.Bytes())
	} else {
		if w.text.Len() > 0 {
			w.text.WriteByte('\n')
		}
		w.text.Write(w.buf.Bytes())
	}
	return int(n + rest), err
}
