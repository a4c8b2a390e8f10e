package scanner

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/emersion/go-message"
	// Importing it registers every charset x/text knows with go-message;
	// without it text parts in anything but UTF-8/ASCII stay undecoded.
	"github.com/emersion/go-message/charset"
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

// maxURLs bounds the links kept per message.
const maxURLs = 500

// walkFactor bounds the walk itself. Past Limits.MaxParts the parts are no
// longer listed (MIME_TOO_COMPLEX, which tags), but their text is still
// read up to walkFactor times as many parts, so 205 empty parts cannot
// hide the text behind them from the model and the rules.
const walkFactor = 5

// handOverBytes is the leaf size from which a leaf keeps the walk's read
// buffer instead of a copy of it. A smaller leaf keeps it too when it
// fills at least half of it (a single-part message's only leaf, most
// often), so it pins less spare room than a copy would allocate; other
// small leaves are copied.
const handOverBytes = 64 << 10

// Message is a message parsed once and shared read-only by every check.
type Message struct {
	// Raw is the message exactly as received (CRLF line endings); nil
	// when it was parsed from a spool file (ParseReaderAt): read it then
	// through Reader, which serves both.
	Raw []byte
	// src and size are the message as received when it is not in Raw.
	src  io.ReaderAt
	size int64
	// Header is the top-level header.
	Header textproto.Header
	// BodyOffset is where the body starts in Raw.
	BodyOffset int
	// HeaderUnterminated: a line that is not a header field ended the
	// header, with no empty line before it; it is the body's first line.
	// The message must be passed on with an empty line inserted at
	// BodyOffset, or a server that reads fields on to the empty line
	// would see a header (From, MIME structure) the scan did not.
	HeaderUnterminated bool
	// HeaderTooLarge: the header, or the header of a MIME part or of an
	// attached message, passes MaxHeaderBytes or MaxHeaderFields. What
	// follows it was not read: Header holds the fields before the limit,
	// the walk stopped at that part.
	HeaderTooLarge bool
	// Symbols are findings of the parser itself (for example MIME_BROKEN).
	Symbols []Symbol

	// Subject is the decoded (RFC 2047) subject.
	Subject string
	// FromName and FromAddr come from the first From address (the rest of
	// the list is not read, nor judged); FromAddr is lower-cased. Both are
	// empty when From is missing or unparsable.
	FromName string
	FromAddr string
	// fromNameQuoted: FromName may hold RFC 2047 words the address
	// parser left as written (ShownFromName).
	fromNameQuoted bool
	// shownFrom is ShownFromName, decoded on first use: several rules
	// read it, and a name can be most of a megabyte of words.
	shownFrom struct {
		once sync.Once
		name string
	}
	// Text is the decoded text of the text/plain parts, in tree order.
	Text string
	// HTML describes the text/html parts: visible text, hidden text, links.
	HTML HTMLInfo
	// URLs are the links found in text and HTML parts (HTML hrefs, image
	// sources and bare URLs in HTML text first, then bare URLs in plain
	// text), at most maxURLs.
	URLs []URL
	// plainLimit is the limit the parser gave FindURLs over Text for URLs
	// (0: Text was not searched, as in a Message built by hand), and
	// plainFrom where in URLs those links start: the HTML parts' bare
	// links before them are plain too, but not Text's.
	plainLimit, plainFrom int
	// Parts lists every entity of the MIME tree in depth-first order,
	// multipart containers included (their Size is 0).
	Parts []Part
	// Structure is the shape of the MIME tree, for example
	// "multipart/alternative(text/plain,text/html)".
	Structure string
	// Leaves are the MIME tree's content entities with their decoded
	// bytes, in tree order, including those inside attached messages:
	// the one read of the body every check (antivirus, attachment rules)
	// shares. Bounded by Limits.MaxParts, MaxPartBytes and
	// MaxDecodedBytes; a leaf cut short is Truncated and the message
	// carries MIME_TOO_COMPLEX.
	Leaves []Leaf

	// letters is what TextLetters and TextASCII say, taken on first use.
	letters struct {
		once             sync.Once
		letters, upper   int
		ascii, htmlASCII bool
	}
}

// TextLetters counts the ASCII letters of m's Text and HTML.Text taken
// together and, of those, the upper-case ones (ASCIILetters). The rules
// and the model both ask, concurrently, for every message: it is counted
// once, on first use, a pass over all the text (~0.3 ns a byte) fewer.
// m's text must not change after.
func (m *Message) TextLetters() (letters, upper int) {
	m.countLetters()
	return m.letters.letters, m.letters.upper
}

// TextASCII reports whether m's Text, and its HTML.Text, are ASCII
// (IsASCII), as found in TextLetters' pass: the rules and the model
// each asked, each a pass over all the text. m's text must not change
// after.
func (m *Message) TextASCII() (text, html bool) {
	m.countLetters()
	return m.letters.ascii, m.letters.htmlASCII
}

func (m *Message) countLetters() {
	m.letters.once.Do(func() {
		l, u, ascii := asciiLetters(m.Text)
		hl, hu, htmlASCII := asciiLetters(m.HTML.Text)
		m.letters.letters, m.letters.upper = l+hl, u+hu
		m.letters.ascii, m.letters.htmlASCII = ascii, htmlASCII
	})
}

// Leaf is one content entity of the MIME tree as read once.
type Leaf struct {
	Part
	// Path locates the leaf in the tree: "" for a single-part body, "1.2"
	// for the second child of the first part.
	Path string
	// Data is the content with its transfer encoding undone; text/* parts
	// with a charset parameter are also converted to UTF-8 (hash and sniff
	// checks on attachments are unaffected: binary kinds carry no charset).
	Data []byte
	// Err is set when decoding stopped early (truncated base64); Data
	// holds what decoded.
	Err error
	// Truncated reports that Data was cut at a byte limit.
	Truncated bool
}

// Part is one entity of the MIME tree.
type Part struct {
	Depth       int
	ContentType string // lower-case media type, "text/plain" when absent
	Charset     string // lower-case charset parameter, if any
	Encoding    string // lower-case Content-Transfer-Encoding, if any
	Disposition string // lower-case disposition (inline, attachment), if any
	Filename    string // decoded file name from Content-Disposition or Content-Type name
	// AltNames are the part's other names: a Content-Type name that is not
	// its Content-Disposition filename, a name parameter given twice. Mail
	// clients differ in which they show and save under ("invoice.txt" in
	// the disposition, "invoice.js" in the type), so checks by name look at
	// Names, never at Filename alone.
	AltNames []string
	Size     int // decoded size in bytes
}

// namedAs reports whether one of p's names ends in the extension ext
// (lower case, no dot), as a mail client would open it.
func (p Part) namedAs(ext string) bool {
	for _, name := range p.Names() {
		if exts := Extensions(name); len(exts) > 0 && exts[0] == ext {
			return true
		}
	}
	return false
}

// Names yields Filename, if any, then AltNames: distinct names, in the
// order the part gives them; then each one that holds a colon as mail
// clients save it (SavedColonName), which may repeat a name.
func (p Part) Names() []string {
	names := slices.Clip(p.AltNames) // appended to: AltNames is shared
	if p.Filename != "" {
		names = append([]string{p.Filename}, p.AltNames...)
	}
	for _, n := range names {
		if saved, colon := SavedColonName(n); colon {
			names = append(names, saved)
		}
	}
	return names
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
	limits  Limits
	// smtp: the message came by SMTP, so a leading "From " line is not
	// skipped (see ForSMTP).
	smtp bool
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
	return &Parser{weights: w, limits: DefaultLimits()}
}

// WithLimits returns a copy of p that reads messages within l (validated
// by the caller, see Limits.Validate).
func (p *Parser) WithLimits(l Limits) *Parser {
	c := *p
	c.limits = l
	return &c
}

// ForSMTP returns a copy of p for mail received by SMTP, where no mbox
// "From " line belongs at the top: there it is a line that is not a
// field, which ends the header as a customer's server reads it. Skipped as
// in an archive file, the fields after it were scanned as the header,
// while that server read them as body, and a header rewritten for relaying
// went out without the line.
func (p *Parser) ForSMTP() *Parser {
	c := *p
	c.smtp = true
	return &c
}

var defaultParser = NewParser(nil)

// Parse parses raw with the default parser weights. It never fails: what
// cannot be parsed becomes a symbol.
func Parse(raw []byte) *Message {
	return defaultParser.Parse(raw)
}

// Parse parses raw. It never fails: what cannot be parsed becomes a symbol.
// raw may use CRLF or bare LF line endings and, unless p is ForSMTP, may
// start with an mbox "From " line (files from mail archives do). The
// Message's leaves and text may share raw's bytes: raw must not be
// modified while the Message is in use.
func (p *Parser) Parse(raw []byte) *Message {
	m := &Message{Raw: raw}
	p.parse(m, bytes.NewReader(raw), int64(len(raw)))
	return m
}

// ParseReaderAt parses a message of size bytes that is not held in memory
// (a body spooled to disk): the walk reads it once, and the Message keeps
// only what Parse keeps besides Raw (decoded leaves and text, within the
// parser's limits). Checks that need the message as received read it
// again through Message.Reader.
func (p *Parser) ParseReaderAt(r io.ReaderAt, size int64) *Message {
	m := &Message{src: r, size: size}
	p.parse(m, r, size)
	return m
}

// bufferedReaders are the buffered readers the header is read through,
// and those BufferedReader lends. None is kept past its use: the fields
// ReadHeader returns are copies.
var bufferedReaders = sync.Pool{New: func() any { return bufio.NewReader(nil) }}

func (p *Parser) parse(m *Message, r io.ReaderAt, size int64) {
	sr := io.NewSectionReader(r, 0, size)
	br, release := bufferedReader(sr)
	defer release()
	if prefix, _ := br.Peek(5); !p.smtp && string(prefix) == "From " {
		for {
			_, err := br.ReadSlice('\n')
			if err != bufio.ErrBufferFull {
				break
			}
		}
	}
	pos, _ := sr.Seek(0, io.SeekCurrent)
	start := pos - int64(br.Buffered())
	ext, err := findHeaderExtent(br, start)
	if err != nil {
		// Only a failing spool file gets here: parse what was found.
		p.add(m, SymbolHeaderBroken, err.Error())
		ext = headerExtent{end: start, body: start}
	}
	br.Reset(io.NewSectionReader(r, start, ext.end-start))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		p.add(m, SymbolHeaderBroken, err.Error())
	}
	switch {
	case ext.tooLarge:
		m.HeaderTooLarge = true
		p.add(m, SymbolHeaderBroken, fmt.Sprintf("header over %d bytes or %d fields", MaxHeaderBytes, MaxHeaderFields))
	case ext.unterminated:
		m.HeaderUnterminated = true
		p.add(m, SymbolHeaderBroken, fmt.Sprintf("header ended by a line that is not a field: %q", ext.badLine))
	}
	m.Header = h
	m.BodyOffset = int(ext.body)

	mh := mail.Header{Header: message.Header{Header: h}}
	if s, err := mh.Subject(); err == nil {
		m.Subject = s
	} else {
		m.Subject = h.Get("Subject")
	}
	m.parseFrom(mh)

	// A leaf decodes to at most its encoded size: sized for the body up
	// front, the buffer leaves read into does not grow from 512 bytes
	// by doubling for every message (15 KB of garbage for a 5 KB one).
	w := walker{m: m, p: p, room: int(min(size-int64(m.BodyOffset), presizedLeafBytes)) + bytes.MinRead}
	body := io.NewSectionReader(r, int64(m.BodyOffset), size-int64(m.BodyOffset))
	if m.Raw != nil {
		w.rawBody = body
	}
	ent, err := message.New(message.Header{Header: h}, body)
	w.entityError(err)
	if ent != nil {
		var sb strings.Builder
		w.walk(ent, 0, "", false, &sb)
		m.Structure = sb.String()
	}
	m.Text = w.textString()
	m.HTML = w.html.info
	m.plainLimit, m.plainFrom = maxURLs-len(w.html.urls), len(w.html.urls)
	m.URLs = append(w.html.urls, FindURLs(m.Text, m.plainLimit)...)
	m.URLs = appendPDFLinks(m.URLs, m.Leaves)
	m.URLs = appendCalendarLinks(m.URLs, m.Leaves)
}

// appendPDFLinks adds the links of the PDFs among leaves, within maxURLs.
func appendPDFLinks(urls []URL, leaves []Leaf) []URL {
	budget, taken := maxPDFInflated, 0
	for _, l := range leaves {
		room := min(maxPDFLinks-taken, maxURLs-len(urls))
		if room <= 0 {
			break
		}
		if !isPDF(l.Data) {
			continue
		}
		for _, raw := range pdfLinks(l.Data, room, &budget) {
			taken++
			if u, ok := parseBrowserURL(raw); ok {
				u.InFile = true
				urls = append(urls, u)
			}
		}
	}
	return urls
}

// appendCalendarLinks adds the links of the calendar invitations among
// leaves, within maxURLs. Accepted or not, an invitation lands in the
// calendar with its link, and phishing sends it for that: the link was
// out of every link rule's and blocklist's reach. An iCalendar line is
// folded by a line break and a blank (RFC 5545 3.1), which may split a
// link.
func appendCalendarLinks(urls []URL, leaves []Leaf) []URL {
	for _, l := range leaves {
		room := maxURLs - len(urls)
		if room <= 0 {
			break
		}
		if !l.Part.IsCalendar() {
			continue
		}
		text := calendarUnfold.Replace(string(l.Data))
		for _, u := range FindURLs(text, room) {
			u.InFile = true
			urls = append(urls, u)
		}
	}
	return urls
}

var calendarUnfold = strings.NewReplacer("\r\n ", "", "\r\n\t", "", "\n ", "", "\n\t", "")

// IsCalendar reports an iCalendar part, by its type or its name.
func (p Part) IsCalendar() bool {
	return p.ContentType == "text/calendar" || p.ContentType == "application/ics" || p.namedAs("ics")
}

// Size is the size of the message as received.
func (m *Message) Size() int64 {
	if m.src != nil {
		return m.size
	}
	return int64(len(m.Raw))
}

// Reader reads the message as received from offset off, whether it is
// held in Raw or was parsed with ParseReaderAt. A source that ends before
// the size it was parsed at (a spool file cut short under the node) is a
// read error, io.ErrUnexpectedEOF, not the message's end: read as its
// end, the relay committed the first part of a message downstream and the
// sender was told all of it was delivered.
func (m *Message) Reader(off int64) io.Reader {
	if m.src != nil {
		return ExactSection(m.src, off, m.size-off)
	}
	return bytes.NewReader(m.Raw[min(off, int64(len(m.Raw))):])
}

// ExactSection reads n bytes of src from off, and fails with
// io.ErrUnexpectedEOF if src ends before: a spooled body's file cut short
// is a failed read, never a shorter message.
func ExactSection(src io.ReaderAt, off, n int64) io.Reader {
	return &exactReader{r: io.NewSectionReader(src, off, n), left: n}
}

// exactReader reads left bytes from r, and fails if r ends before.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = fmt.Errorf("message source ends %d bytes short: %w", e.left, io.ErrUnexpectedEOF)
	}
	return n, err
}

// BufferedReader is Reader(off) through a pooled 4 KiB buffered reader,
// for a library that wraps what it is given in bufio.NewReader: given a
// *bufio.Reader at least that size, it uses it as it is rather than
// allocating a buffer per message. release returns the reader to the pool;
// nothing may use it after.
func (m *Message) BufferedReader(off int64) (r *bufio.Reader, release func()) {
	return bufferedReader(m.Reader(off))
}

func bufferedReader(src io.Reader) (*bufio.Reader, func()) {
	br := bufferedReaders.Get().(*bufio.Reader)
	br.Reset(src)
	return br, func() {
		br.Reset(nil)
		bufferedReaders.Put(br)
	}
}

// Head returns the header as received (up to BodyOffset).
func (m *Message) Head() ([]byte, error) {
	if m.src == nil {
		return m.Raw[:m.BodyOffset], nil
	}
	head := make([]byte, m.BodyOffset)
	if _, err := m.src.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	return head, nil
}

var wordDecoder = mime.WordDecoder{CharsetReader: charset.Reader}

// lenientWordDecoder reads the words of a charset it does not know as
// they are, as Python's email does (unknown-8bit): the letters of a name
// are ASCII whatever the label says.
var lenientWordDecoder = mime.WordDecoder{CharsetReader: func(label string, r io.Reader) (io.Reader, error) {
	if dec, err := charset.Reader(label, r); err == nil {
		return dec, nil
	}
	return r, nil
}}

// decodeNameWords decodes the RFC 2047 words of a file name, those in
// base64 without its padding too (mime.WordDecoder leaves them as they
// are; Thunderbird and Python's email decode them), and those in a
// charset it does not know leniently; or the name stays as written.
func decodeNameWords(n string) string {
	n = padBWords(n)
	if dec, err := wordDecoder.DecodeHeader(n); err == nil {
		return dec
	}
	if dec, err := lenientWordDecoder.DecodeHeader(n); err == nil {
		return dec
	}
	return n
}

// padBWords pads the base64 of n's RFC 2047 "B" words to a multiple of
// four characters. It finds, in one pass, the words the regular
// expression
//
//	=\?[^?\s]+\?[bB]\?[A-Za-z0-9+/]*\?=
//
// finds (TestPadBWordsAsRegexp), which it replaced: Go's regexp engine
// took 70 ms for a name of 900 KB of words, the size a From or a part's
// file name can be.
func padBWords(n string) string {
	var b strings.Builder
	done := 0 // n[:done] is in b
	for i := 0; ; {
		k := strings.Index(n[i:], "=?")
		if k < 0 {
			break
		}
		i += k
		text, end, ok := bWordAt(n, i)
		if !ok {
			i++
			continue
		}
		if pad := (4 - (end-2-text)%4) % 4; pad > 0 {
			b.WriteString(n[done : end-2])
			b.WriteString("==="[:pad])
			done = end - 2
		}
		i = end
	}
	if done == 0 {
		return n
	}
	b.WriteString(n[done:])
	return b.String()
}

// bWordAt matches a "B" word at n[at], which starts "=?": where its base64
// starts, and where the word ends.
func bWordAt(n string, at int) (text, end int, ok bool) {
	q := at + 2
	for q < len(n) && n[q] != '?' && !isRegexpSpace(n[q]) {
		q++
	}
	if q == at+2 || q+2 >= len(n) || n[q] != '?' || n[q+1] != 'b' && n[q+1] != 'B' || n[q+2] != '?' {
		return 0, 0, false
	}
	text = q + 3
	end = text
	for end < len(n) && isBase64Char(n[end]) {
		end++
	}
	if end+1 >= len(n) || n[end] != '?' || n[end+1] != '=' {
		return 0, 0, false
	}
	return text, end + 2, true
}

func isBase64Char(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '+' || c == '/'
}

// ShownFromName is FromName as mail clients show it. A display name
// written as a quoted string keeps its RFC 2047 words ("=?gb18030?B?
// zfXA9g==?=" <wang@qq.com>, as QQ Mail and Foxmail write every name):
// RFC 2047 5 says they are no encoded words there and net/mail leaves
// them, but Gmail, Outlook, Apple Mail and Thunderbird decode them and
// show the name, "PayPal" for "=?utf-8?B?UGF5UGFs?=", so the rules read
// this. The model reads FromName, as it was trained.
func (m *Message) ShownFromName() string {
	if !m.fromNameQuoted || !strings.Contains(m.FromName, "=?") {
		return m.FromName
	}
	m.shownFrom.once.Do(func() { m.shownFrom.name = decodeNameWords(m.FromName) })
	return m.shownFrom.name
}

func (m *Message) parseFrom(mh mail.Header) {
	// The first address alone is parsed: a sender chooses how many
	// follow (see AddressListElements).
	for first := range AddressListElements(mh.Get("From")) {
		if name, addr, ok := SimpleAddress(first); ok {
			m.FromName = name
			m.FromAddr = strings.ToLower(addr)
			return
		}
		if len(first) <= MaxAddressBytes {
			if a, err := mail.ParseAddress(first); err == nil {
				m.FromName = a.Name
				m.fromNameQuoted = strings.HasPrefix(strings.TrimLeft(first, " \t"), `"`)
				m.FromAddr = strings.ToLower(a.Address)
				return
			}
		}
		break
	}
	// Unparsable From (raw 8-bit names are common): keep what looks like
	// a display name and an address so the model and rules still see them.
	raw := mh.Get("From")
	if i := strings.IndexByte(raw, '<'); i >= 0 {
		m.FromName = strings.Trim(strings.TrimSpace(raw[:i]), `"`)
		m.fromNameQuoted = true // nothing decoded it
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

// presizedLeafBytes bounds the leaf buffer allocated before the walk;
// bigger leaves grow it as they are read.
const presizedLeafBytes = 64 << 10

// walker carries the state of one depth-first walk of the MIME tree.
type walker struct {
	m    *Message
	p    *Parser
	html htmlExtractor
	// keptPlain and keptHTML are the decoded text/plain and text/html
	// bytes read so far, each bounded by MaxTextBytes on its own: with
	// one budget, 1 MiB of text/plain starved the text/html alternative
	// a reader shows, its text and links never read.
	keptPlain, keptHTML int
	decoded             int // leaf bytes kept so far
	parts               int
	buf                 bytes.Buffer
	// rawBody is the top-level body's reader when the message is in Raw.
	// go-message hands it on unwrapped as a single-part body's reader
	// when it has nothing to undo (7bit, 8bit or binary, in UTF-8 or
	// ASCII) or cannot undo it (an unknown encoding or charset, read raw
	// then): readBody, given it, reads the leaf as a slice of Raw rather
	// than copying it.
	rawBody io.Reader
	// plain is the text of the message while it is one text/plain part: a
	// slice of that part's leaf, which is never written again, so Text
	// can share it. A second part's text joins both in text.
	plain []byte
	text  strings.Builder
	// room is the size the read buffer is given when a leaf needs one:
	// the body's (capped) size, less what leaves that kept a buffer took.
	room int
}

func (w *walker) entityError(err error) {
	switch {
	case err == nil:
	case errors.Is(err, textproto.ErrHeaderTooLarge):
		// A part's header past the limit ends the walk of its multipart:
		// what follows was not read, so the message may not pass.
		w.m.HeaderTooLarge = true
		w.p.add(w.m, SymbolHeaderBroken, err.Error())
	case message.IsUnknownCharset(err):
		w.p.add(w.m, SymbolUnknownCharset, err.Error())
	case message.IsUnknownEncoding(err):
		w.p.add(w.m, SymbolUnknownEncoding, err.Error())
	default:
		w.p.add(w.m, SymbolMIMEBroken, err.Error())
	}
}

// fieldError reports the error go-message gave reading a part's field
// with parameters. One of more parameters than it reads is past the
// parser's limits, as a part too many is: its other parameters were not
// read (the names in it are still searched, see paramValues).
func (w *walker) fieldError(field string, err error) {
	switch {
	case err == nil:
	case errors.Is(err, message.ErrTooManyParams):
		w.p.add(w.m, SymbolMIMETooComplex, field+": "+err.Error())
	default:
		w.p.add(w.m, SymbolMIMEBroken, field+": "+err.Error())
	}
}

// walk reads entity e at depth and tree position path. attached is true
// inside an attached (not forwarded) message: its leaves are scanned, but
// its text is not this message's text.
func (w *walker) walk(e *message.Entity, depth int, path string, attached bool, shape *strings.Builder) {
	lim := w.p.limits
	w.parts++
	if w.parts > lim.MaxParts || depth > lim.MaxDepth {
		w.p.add(w.m, SymbolMIMETooComplex, fmt.Sprintf("more than %d parts or %d levels", lim.MaxParts, lim.MaxDepth))
	}
	if w.parts > walkFactor*lim.MaxParts || depth > lim.MaxDepth {
		return
	}
	// The encoding as go-message decodes it and Thunderbird reads it:
	// "x-uuencode; x" is uuencode.
	part := Part{Depth: depth, Encoding: e.Header.TransferEncoding()}
	ct, params, err := e.ContentType() // as go-message read it: a field can be a megabyte of parameters
	if e.Header.Get("Content-Type") != "" {
		w.fieldError("Content-Type", err)
	}
	if ct == "" || ct == "text" {
		// RFC 2045 section 5.2; "text" without a subtype is, like no
		// type, untyped text to Thunderbird, which shows a uuencoded
		// file in it as an attachment.
		ct = "text/plain"
	}
	part.ContentType = ct
	part.Charset = strings.ToLower(params["charset"])
	// A field go-message could only read leniently (a repeated or
	// unquoted parameter) still names the file the recipient sees;
	// dparams are nil only for one it could not read at all.
	disp, dparams, derr := e.Header.ContentDisposition()
	if e.Header.Get("Content-Disposition") != "" {
		w.fieldError("Content-Disposition", derr)
	}
	if derr == nil || dparams != nil {
		part.Disposition = disp
	}
	var names []string
	// A part may give 32 names in each of its thousand header fields
	// (maxRawNames, MaxHeaderFields): searching the names kept for each
	// one took seconds a part.
	seen := map[string]struct{}{}
	addName := func(n string) {
		if _, dup := seen[n]; n != "" && !dup {
			seen[n] = struct{}{}
			names = append(names, n)
		}
	}
	for _, n := range slices.Concat(
		paramValues(dparams, derr, e.Header.Get("Content-Disposition"), "filename"),
		paramValues(params, err, e.Header.Get("Content-Type"), "name"),
		repeatedFieldNames(e.Header),
		// Thunderbird's last resorts (MimeHeaders_get_name), for a part
		// with neither parameter: it shows and saves the file by them.
		[]string{e.Header.Get("Content-Name"), e.Header.Get("X-Sun-Data-Name")}) {
		// Many MUAs put RFC 2047 words in file names although RFC 2047 5
		// forbids it; the name is what the recipient sees.
		if strings.Contains(n, "=?") {
			n = decodeNameWords(n)
		}
		addName(n)
	}
	if len(names) > 0 {
		part.Filename, part.AltNames = names[0], names[1:]
	}
	idx := -1
	if w.parts <= lim.MaxParts {
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
		for n := 1; ; n++ {
			child, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if child == nil {
				w.entityError(fmt.Errorf("multipart: %w", err))
				break
			}
			w.entityError(err)
			if n > 1 && shape.Len() < 512 {
				shape.WriteByte(',')
			}
			w.walk(child, depth+1, joinPath(path, n), attached, shape)
			if w.parts > walkFactor*lim.MaxParts {
				break
			}
		}
		if shape.Len() < 512 {
			shape.WriteByte(')')
		}
		return
	}

	if isMessageType(ct) {
		// A forwarded message: its text counts as this message's text. An
		// attached one is still read, for the antivirus and attachment
		// rules, but its text is not what this sender wrote.
		w.walkMessage(e.Body, part, path, attached || part.Disposition == "attachment", shape)
		return
	}

	size, err := w.readBody(e.Body, part, path, attached)
	if idx >= 0 {
		w.m.Parts[idx].Size = size
	}
	if err != nil {
		w.p.add(w.m, SymbolMIMEBroken, ct+" body: "+err.Error())
	}
}

// walkMessage walks the message in body, which go-message leaves as it
// came whatever part's transfer encoding says. Thunderbird shows it so (its
// MimeMessage has no decoder); other readers decode a base64 or
// quoted-printable one. Both readings are walked: the decoded one first,
// as the message's structure, then the body as it came, whose header does
// not parse unless it is a message in clear (marked base64, it was garbage
// to the scanner and an attachment to the recipient). The body is held
// for the two readings, within the bytes a leaf may keep, and counts as
// kept: uncounted, text that both readings read as a message, nested ten
// deep, was walked 2^10 times (up to the walk's part limit), each time
// held and decoded whole.
func (w *walker) walkMessage(body io.Reader, part Part, path string, attached bool, shape *strings.Builder) {
	readings := []io.Reader{body}
	if part.Encoding == "base64" || part.Encoding == "quoted-printable" {
		lim := w.p.limits
		keep := max(min(lim.MaxPartBytes, lim.MaxDecodedBytes-w.decoded), 0)
		raw, err := io.ReadAll(io.LimitReader(body, int64(keep)))
		w.decoded += len(raw)
		if rest, _ := io.Copy(io.Discard, body); rest > 0 {
			w.p.add(w.m, SymbolMIMETooComplex, fmt.Sprintf("message %s larger than the %d bytes read", path, len(raw)))
		}
		if err != nil {
			w.p.add(w.m, SymbolMIMEBroken, part.ContentType+" body: "+err.Error())
		}
		var h message.Header
		h.Set("Content-Transfer-Encoding", part.Encoding)
		dec, _ := message.New(h, bytes.NewReader(raw)) // untyped: no charset to convert
		readings = []io.Reader{dec.Body, bytes.NewReader(raw)}
	}
	walked := false
	for i, r := range readings {
		inner, err := readMessage(r)
		if i > 0 && (inner == nil || isHeaderError(err)) {
			continue // the body as it came is no message
		}
		w.entityError(err)
		if inner == nil {
			continue
		}
		sb, att := shape, attached
		if walked {
			// The structure and the text are the decoded reading's, as
			// they always were; the other gives its leaves.
			sb, att = &strings.Builder{}, true
		}
		if sb.Len() < 512 {
			sb.WriteByte('(')
		}
		w.walk(inner, part.Depth+1, joinPath(path, 1), att, sb)
		if sb.Len() < 512 {
			sb.WriteByte(')')
		}
		walked = true
	}
}

// addEmbedded adds files found inside leaf's content as leaves of their
// own ("1.u1": the first uuencoded file in part 1, "1.y1" its first yEnc
// one, "1.b1" its first BinHex one; "t2" the second file of a single-part
// TNEF body), named as their container names them. They are
// leaves for the content checks, not parts: the message's MIME structure,
// which the model and the structure rules read, is what was sent (a 2002
// kernel-list ham carrying three uuencoded oops dumps scores as before).
func (w *walker) addEmbedded(leaf Leaf, files []embeddedFile, pathPrefix, encoding string) {
	for i, f := range files {
		part := Part{Depth: leaf.Depth + 1, ContentType: "application/octet-stream", Encoding: encoding,
			Disposition: "attachment", Filename: f.name, Size: len(f.data)}
		path := pathPrefix + strconv.Itoa(i+1)
		if leaf.Path != "" {
			path = leaf.Path + "." + path
		}
		w.m.Leaves = append(w.m.Leaves, Leaf{Part: part, Path: path, Data: f.data})
	}
}

// addDecoded adds the files find decodes from leaf's content, within
// what is left of max_decoded_bytes and maxTextFiles. Thunderbird shows
// every one: a file past the limit is reported as the parser's other
// limits are (MIME_TOO_COMPLEX), or eight harmless ones ahead of an
// invoice.exe hid it.
func (w *walker) addDecoded(leaf Leaf, find func(text []byte, budget int) []embeddedFile, pathPrefix, encoding string) {
	files := find(leaf.Data, w.p.limits.MaxDecodedBytes-w.decoded)
	if len(files) > maxTextFiles {
		files = files[:maxTextFiles]
		w.p.add(w.m, SymbolMIMETooComplex, fmt.Sprintf("more than %d %s files in the text of part %q", maxTextFiles, encoding, leaf.Path))
	}
	for _, f := range files {
		w.decoded += len(f.data)
	}
	w.addEmbedded(leaf, files, pathPrefix, encoding)
}

func joinPath(path string, i int) string {
	if path == "" {
		return strconv.Itoa(i)
	}
	return path + "." + strconv.Itoa(i)
}

// readBody consumes a leaf part once: it keeps the decoded bytes as a
// Leaf (within the per-part and per-message limits), feeds text the
// recipient reads to the text and HTML extraction, and returns the
// decoded size.
func (w *walker) readBody(body io.Reader, part Part, path string, attached bool) (int, error) {
	lim := w.p.limits
	keep := min(lim.MaxPartBytes, lim.MaxDecodedBytes-w.decoded)
	var (
		data    []byte
		n, rest int64
		err     error
	)
	inRaw := body == w.rawBody
	if inRaw {
		// Raw is never written (see Parse), and the Message that holds
		// the leaf holds Raw: the leaf can be a slice of it. Capped at
		// its length, an append to the leaf cannot reach the bytes past
		// it.
		raw := w.m.Raw[w.m.BodyOffset:]
		n = int64(min(len(raw), max(keep, 0)))
		rest = int64(len(raw)) - n
		data = raw[:n:n]
	} else {
		w.buf.Reset()
		if w.buf.Cap() == 0 {
			w.buf.Grow(w.room)
		}
		var err2 error
		n, err = io.Copy(&w.buf, io.LimitReader(body, int64(keep)))
		rest, err2 = io.Copy(io.Discard, body)
		if err == nil {
			err = err2
		}
		data = w.buf.Bytes()
	}
	w.decoded += int(n)
	// walk reads no part past walkFactor*MaxParts, so every leaf read is
	// kept, and the text below is read from what the leaf keeps: bytes
	// nothing writes again, which Text may share (textString).
	leaf := Leaf{Part: part, Path: path, Err: err, Truncated: rest > 0}
	switch {
	case inRaw && n > 0:
		leaf.Data = data
	case n >= handOverBytes || (n > 0 && 2*n >= int64(w.buf.Cap())):
		// The leaf keeps the buffer it was read into (handOverBytes):
		// copying a big one would hold the part three times at the
		// peak (buffer, copy, the next leaf's growth) instead of once.
		leaf.Data = data
		w.buf = bytes.Buffer{}
		w.room = max(w.room-int(n), bytes.MinRead)
	case n > 0:
		leaf.Data = bytes.Clone(data)
	}
	w.m.Leaves = append(w.m.Leaves, leaf)
	switch {
	case part.ContentType == "text/plain" || uuEncodings[part.Encoding] || part.ContentType == sunAttachmentType:
		// Thunderbird shows a uuencoded, yEnc- or BinHex-encoded
		// block as an attachment, and decodes a part whose transfer
		// encoding is uuencode, which go-message leaves encoded; and
		// an x-sun-attachment's (Sun MailTool's attachments, which it
		// splits at "----------" lines), whose X-Sun-Encoding-Info is
		// uuencode.
		w.addDecoded(leaf, uuFiles, "u", "x-uuencode")
		w.addDecoded(leaf, yencFiles, "y", "x-yenc")
		w.addDecoded(leaf, binhexFiles, "b", "x-binhex")
	case part.ContentType == binhexType:
		// One BinHex file, which Thunderbird decodes to open it.
		w.addDecoded(leaf, binhexPart(leaf.Filename), "b", "x-binhex")
	case !strings.HasPrefix(part.ContentType, "text/"):
		// Slices of the leaf: no bytes beyond max_decoded_bytes.
		files := tnefFiles(leaf.Data)
		if len(files) > maxTNEFFiles {
			// Outlook shows every one: the files not read are reported.
			files = files[:maxTNEFFiles]
			w.p.add(w.m, SymbolMIMETooComplex, fmt.Sprintf("more than %d files in the TNEF stream of part %q", maxTNEFFiles, path))
		}
		w.addEmbedded(leaf, files, "t", "x-tnef")
	}
	if isMailFile(part) && len(leaf.Data) > 0 {
		// Thunderbird and Outlook open an attached .eml as a message,
		// whatever its type says, and its attachments with a click: an
		// .exe in invoice.eml sent as application/octet-stream passed
		// unread. Read as an attached message is, its parts are not
		// this message's structure (the model's) but its leaves are
		// scanned; a file that is no message is left as it is.
		if inner, err := readMessage(bytes.NewReader(leaf.Data)); inner != nil && !isHeaderError(err) {
			w.walk(inner, part.Depth+1, joinPath(path, 1), true, &strings.Builder{})
		}
	}
	if isSMIME(part) {
		// An opaque-signed message's content is shown as the message
		// (smime.go): its text and links are this message's, though
		// its parts are not the structure the model was fitted to.
		if content := signedContent(leaf.Data); content != nil {
			if inner, err := readMessage(bytes.NewReader(content)); inner != nil && !isHeaderError(err) {
				w.walk(inner, part.Depth+1, joinPath(path, 1), attached, &strings.Builder{})
			}
		}
	}
	if rest > 0 {
		w.p.add(w.m, SymbolMIMETooComplex, fmt.Sprintf("part %s larger than the %d bytes read (max_part_bytes %d, max_decoded_bytes %d)",
			path, n, lim.MaxPartBytes, lim.MaxDecodedBytes))
	}

	isText := (part.ContentType == "text/plain" || part.ContentType == "text/html") && part.Disposition != "attachment" && !attached
	if isText {
		kept := &w.keptPlain
		if part.ContentType == "text/html" {
			kept = &w.keptHTML
		}
		text := leaf.Data[:n]
		if room := lim.MaxTextBytes - *kept; room > 0 {
			text = cutText(text, room)
			*kept += len(text)
			if part.ContentType == "text/html" {
				w.html.extract(text)
			} else {
				w.addText(text)
			}
		} else {
			text = nil
		}
		if part.ContentType == "text/html" && (len(text) < int(n) || rest > 0) {
			// What was not read may be what a mail client shows.
			w.html.info.TextCut = true
		}
	}
	return int(n + rest), err
}

// cutText returns text's first n bytes, or fewer so as not to end inside
// a UTF-8 character: a text part is read as UTF-8 (its charset decoded),
// and the first bytes of a character left at the end of the text read
// were invalid UTF-8, which the rules take for 8-bit text without a
// declared charset. Bytes that are no UTF-8 are cut as they fall.
func cutText(text []byte, n int) []byte {
	if n >= len(text) {
		return text
	}
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(text[i]) {
			return text[:i]
		}
	}
	return text[:n]
}

// isMailFile reports a part named as a saved message (.eml), unless it is
// one by its type already (see isMessageType).
func isMailFile(p Part) bool {
	return !isMessageType(p.ContentType) && p.namedAs("eml")
}

// isMessageType reports a type whose body is walked as a message: an
// attached or forwarded one, or message/news, which Thunderbird shows as
// it shows message/rfc822 (an EICAR in one passed unread).
func isMessageType(ct string) bool {
	return ct == "message/rfc822" || ct == "message/global" || ct == "message/news"
}

// readMessage reads a message from r as Thunderbird reads an attached one:
// a line of its header that is no field (an mbox "From " line, a stray
// line) is passed over, and the message comes with that error. Refused
// whole before, an attached message so written hid its attachments from
// the scanner. A header with no field at all is no message (base64 text
// read as one): nil, with the error.
func readMessage(r io.Reader) (*message.Entity, error) {
	e, err := message.Read(r)
	if e != nil && textproto.IsMalformedHeader(err) && e.Header.Len() == 0 {
		return nil, err
	}
	return e, err
}

// isHeaderError reports an error of readMessage that is no entity's: a
// header that could not be read.
func isHeaderError(err error) bool {
	return err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) && !textproto.IsMalformedHeader(err)
}

// addText adds a text/plain part's text to the message's, after a newline
// unless it is the first non-empty one.
func (w *walker) addText(text []byte) {
	switch {
	case len(w.plain) == 0 && w.text.Len() == 0:
		w.plain = text
		return
	case len(w.plain) > 0:
		w.text.Write(w.plain)
		w.plain = nil
	}
	w.text.WriteByte('\n')
	w.text.Write(text)
}

// textString is the text of the text/plain parts read, as Message.Text.
func (w *walker) textString() string {
	if len(w.plain) > 0 {
		// plain is a leaf's content, which nothing writes (Raw, or a
		// buffer the leaf alone holds): a string may share it.
		return unsafe.String(unsafe.SliceData(w.plain), len(w.plain))
	}
	return w.text.String()
}

// rawParams reads the values of up to n parameters named key (in any
// case, not an RFC 2231 section of one) of a header value, quoted or not,
// in one pass over the whole value. It finds the parameters the regular
// expression
//
//	;\s*([A-Za-z0-9_.-]+)(\*[0-9]+)?\*?\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)
//
// finds (TestRawParamsAsRegexp), which it replaced: Go's regexp engine
// took 50 ms a megabyte of semicolons, and every part of a message may
// carry a 1 MiB Content-Type (two seconds of CPU for a 24 MB message).
// Only key's count towards n: counting every parameter, a repeated file
// name behind 32 others went unread.
func rawParams(raw, key string, n int) []string {
	var out []string
	for i := 0; i < len(raw) && len(out) < n; i++ {
		if raw[i] != ';' || i+1 < len(raw) && raw[i+1] == ';' {
			continue // no parameter starts here: the common case of junk
		}
		if m, end, ok := rawParamAt(raw, i); ok {
			if m[1] == "" && strings.EqualFold(m[0], key) {
				out = append(out, m[2])
			}
			i = end - 1
		}
	}
	return out
}

// rawParamAt matches one parameter at raw[at], a semicolon, and returns
// where the match ends.
func rawParamAt(raw string, at int) (m [3]string, end int, ok bool) {
	i := skipRegexpSpace(raw, at+1)
	j := i
	for j < len(raw) && isParamNameByte(raw[j]) {
		j++
	}
	if j == i {
		return m, 0, false
	}
	m[0] = raw[i:j]
	if j+1 < len(raw) && raw[j] == '*' && isDigit(raw[j+1]) {
		k := j + 1
		for k < len(raw) && isDigit(raw[k]) {
			k++
		}
		m[1], j = raw[j:k], k
	}
	if j < len(raw) && raw[j] == '*' {
		j++
	}
	j = skipRegexpSpace(raw, j)
	if j == len(raw) || raw[j] != '=' {
		return m, 0, false
	}
	v := skipRegexpSpace(raw, j+1)
	if end, ok := quotedEnd(raw, v); ok {
		m[2] = raw[v:end]
		return m, end, true
	}
	end = len(raw)
	if k := strings.IndexByte(raw[v:], ';'); k >= 0 {
		end = v + k
	}
	m[2] = raw[v:end]
	return m, end, true
}

// quotedEnd is the end of the quoted string at raw[at], as
// "(?:[^"\\]|\\.)*" matches it (a backslash escapes any byte but LF).
func quotedEnd(raw string, at int) (int, bool) {
	if at == len(raw) || raw[at] != '"' {
		return 0, false
	}
	for k := at + 1; k < len(raw); k++ {
		switch raw[k] {
		case '"':
			return k + 1, true
		case '\\':
			if k+1 == len(raw) || raw[k+1] == '\n' {
				return 0, false
			}
			k++
		}
	}
	return 0, false
}

// skipRegexpSpace skips what \s matches in Go's regexp.
func skipRegexpSpace(s string, i int) int {
	for i < len(s) && isRegexpSpace(s[i]) {
		i++
	}
	return i
}

// isRegexpSpace reports what \s matches in Go's regexp: [\t\n\f\r ].
func isRegexpSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

func isParamNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '_' || c == '.' || c == '-'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// paramValues is the key parameter of a header value as go-message read
// it, and, when the value did not parse strictly (a parameter given twice,
// which mail clients resolve each their own way; go-message then keeps the
// first), every other value the raw header gives key. Sections of an RFC
// 2231 continuation are not names of their own: go-message joined them.
func paramValues(params map[string]string, parseErr error, raw, key string) []string {
	var vs []string
	if v := params[key]; v != "" {
		vs = append(vs, v)
	}
	if parseErr == nil {
		return vs
	}
	for _, v := range rawParams(raw, key, maxRawNames) {
		v = strings.TrimSpace(v)
		if uq, err := strconv.Unquote(v); err == nil && strings.HasPrefix(v, `"`) {
			v = uq
		} else {
			v = strings.Trim(v, `"`)
		}
		if i := strings.Index(v, "''"); i >= 0 && !strings.ContainsAny(v[:i], " ./") {
			if dec, err := url.PathUnescape(v[i+2:]); err == nil {
				v = dec // RFC 2231 charset'language'value
			}
		}
		vs = append(vs, v)
	}
	return vs
}

// repeatedFieldNames are the names a second (third...) Content-Disposition
// or Content-Type field of h gives. go-message reads the first field, and
// mail clients differ in which they read, as for a repeated parameter: a
// part with "invoice.txt" in one Content-Disposition and "invoice.js" in
// another passed the blocked types and the attachment rules. Each field
// is read for the name's parameters alone (message.ParamsNamed): a part
// may repeat a field of a hundred parameters a thousand times, and read
// whole, a 22 MB message of such parts took 1.4 s and 1.5 GB. Whether the
// whole field would have parsed is then not known, so when others were
// dropped the field is searched for other values of the name too, as one
// that does not parse is.
func repeatedFieldNames(h message.Header) []string {
	var names []string
	for _, f := range [...]struct{ field, key string }{{"Content-Disposition", "filename"}, {"Content-Type", "name"}} {
		values := h.Values(f.field)
		for _, v := range values[min(1, len(values)):] {
			var (
				one    message.Header
				params map[string]string
				err    error
			)
			named, dropped := message.ParamsNamed(v, f.key)
			one.Set(f.field, named)
			if f.field == "Content-Type" {
				_, params, err = one.ContentType()
			} else {
				_, params, err = one.ContentDisposition()
			}
			if dropped && err == nil {
				err = errReadForNames
			}
			names = append(names, paramValues(params, err, v, f.key)...)
		}
	}
	return names
}

// errReadForNames stands for the error a field read for its file names
// alone might have given whole.
var errReadForNames = errors.New("read for its names alone")

// maxRawNames bounds the values of a name read from a header that did not
// parse.
const maxRawNames = 32
