package message

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"sort"
	"strconv"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// MaxHeaderParams bounds the parameters read of a Content-Type or
// Content-Disposition field (an mxgrid patch), and of those past it, the
// ones mail readers look up by name (see capParams). A field of 20,000
// RFC 2231 parameters cost 25 ms and 30 MB to read, in every part.
const MaxHeaderParams = 100

// ErrTooManyParams is returned, with the parameters read, for a field of
// more than MaxHeaderParams parameters.
var ErrTooManyParams = errors.New("message: more than 100 parameters in a header field")

func parseHeaderWithParams(s string) (f string, params map[string]string, err error) {
	s, capped := capParams(s)
	f, params, err = mime.ParseMediaType(s)
	if err != nil {
		// mxgrid patch: what mime.ParseMediaType refuses, mail readers
		// read (the error is still returned, for callers to note).
		var ok bool
		if f, params, ok = parseParamsLenient(s); !ok {
			return s, nil, err
		}
	}
	if capped {
		err = ErrTooManyParams
	}
	if strings.Contains(s, "*=") {
		addCharsetParams(s, params)
	}
	if strings.Contains(s, "\\") {
		unescapeQuotedPairs(s, params)
	}
	for k, v := range params {
		params[k], _ = decodeHeader(v)
	}
	return
}

// capParams returns s with its first MaxHeaderParams parameters, and
// after them up to MaxHeaderParams more that are a boundary, a charset or
// a file name (name, filename, or an RFC 2231 form of one), which mail
// readers find anywhere in the field; capped is false, and s as it is,
// for a field of no more parameters than that.
func capParams(s string) (_ string, capped bool) {
	i := strings.IndexByte(s, ';')
	if i < 0 {
		return s, false
	}
	n := 0
	for rest, more := s[i+1:], true; more && n <= MaxHeaderParams; {
		var p string
		p, rest, more = cutParam(rest)
		if strings.Contains(p, "=") {
			n++
		}
	}
	if n <= MaxHeaderParams {
		return s, false
	}
	var b strings.Builder
	b.WriteString(s[:i])
	n, looked := 0, 0
	for rest, more := s[i+1:], true; more; {
		var p string
		p, rest, more = cutParam(rest)
		k, _, ok := strings.Cut(p, "=")
		switch {
		case !ok:
			continue
		case n < MaxHeaderParams:
			n++
		case looked < MaxHeaderParams && isLookedUpParam(k):
			looked++
		default:
			continue
		}
		b.WriteByte(';')
		b.WriteString(p)
	}
	return b.String(), true
}

// ParamsNamed returns a Content-Type or Content-Disposition value with its
// type and, of its parameters, only those named key (or an RFC 2231
// section of key): what ContentType or ContentDisposition read of key,
// without the cost of the others (an mxgrid patch, for a caller that
// reads a part's every repeated field for its file name). dropped
// reports parameters left out.
func ParamsNamed(s, key string) (_ string, dropped bool) {
	i := strings.IndexByte(s, ';')
	if i < 0 {
		return s, false
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for rest, more := s[i+1:], true; more; {
		var p string
		p, rest, more = cutParam(rest)
		k, _, _ := strings.Cut(p, "=")
		if base, _, _ := strings.Cut(strings.TrimSpace(k), "*"); !strings.EqualFold(base, key) {
			dropped = dropped || strings.TrimSpace(p) != ""
			continue
		}
		b.WriteByte(';')
		b.WriteString(p)
	}
	if !dropped {
		return s, false
	}
	return b.String(), true
}

// isLookedUpParam reports a parameter name (k, before its '=') of the
// kind mail readers and mxgrid's scanner look up: a boundary, a charset,
// a file name, or an RFC 2231 section of one.
func isLookedUpParam(k string) bool {
	base, _, _ := strings.Cut(strings.TrimSpace(k), "*")
	for _, name := range [...]string{"boundary", "charset", "name", "filename"} {
		if strings.EqualFold(base, name) {
			return true
		}
	}
	return false
}

// addCharsetParams sets the RFC 2231 parameters (name*=charset'lang'value,
// or continued as name*0*=, name*1=...) whose charset is neither UTF-8 nor
// US-ASCII: mime.ParseMediaType drops those without an error (or keeps
// only their unencoded sections), where mail readers decode them. Before
// this mxgrid patch "filename*=iso-8859-1'en'setup.exe" named no file for
// the scanner, and the recipient's reader showed setup.exe.
func addCharsetParams(s string, params map[string]string) {
	sections := make(map[string][]paramSection)
	_, rest, _ := strings.Cut(s, ";")
	for more := true; more; {
		var p string
		p, rest, more = cutParam(rest)
		k, v, ok := strings.Cut(p, "=")
		base, idx, ext := strings.Cut(strings.ToLower(strings.TrimSpace(k)), "*")
		if !ok || !ext {
			continue
		}
		sec := paramSection{enc: true, v: unquoteParam(strings.TrimSpace(v))}
		if idx != "" {
			idx, sec.enc = strings.CutSuffix(idx, "*")
			n, err := strconv.Atoi(idx)
			if err != nil || n < 0 {
				continue
			}
			sec.n = n
		}
		sections[base] = append(sections[base], sec)
	}
	for base, secs := range sections {
		sort.SliceStable(secs, func(i, j int) bool { return secs[i].n < secs[j].n })
		charset, value, ok := cutCharset(secs[0])
		if !ok {
			continue // ParseMediaType read it, or nobody can
		}
		raw := percentDecode(value)
		// The sections run from 0 without a gap (RFC 2231 3).
		for i := 1; i < len(secs) && secs[i].n == i; i++ {
			if secs[i].enc {
				raw = append(raw, percentDecode(secs[i].v)...)
			} else {
				raw = append(raw, secs[i].v...)
			}
		}
		params[base] = string(raw)
		if r, err := charsetReader(charset, bytes.NewReader(raw)); err == nil {
			if b, err := io.ReadAll(r); err == nil {
				params[base] = string(b)
			}
		}
	}
}

// unescapeQuotedPairs sets each parameter whose value is a quoted-string
// with a backslash in it (the first of a repeated one) as Thunderbird's
// RemoveQuotedStringEscapes reads it: every quoted-pair is the character
// after the backslash (RFC 822 3.4.1). mime.ParseMediaType undoes only a
// quoted tspecial, so filename="invoice.j\s" was "invoice.j\s" to the
// attachment rules and invoice.js to the recipient, and boundary="\b"
// delimited nothing for the scanner and the parts for the reader.
func unescapeQuotedPairs(s string, params map[string]string) {
	if params == nil {
		return
	}
	rest := ""
	if i := strings.IndexAny(s, ";,"); i >= 0 {
		rest = s[i+1:]
	}
	seen := make(map[string]bool)
	for more := true; more; {
		var p string
		p, rest, more = cutParam(rest)
		k, v, ok := strings.Cut(p, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || seen[k] {
			continue
		}
		seen[k] = true
		if _, set := params[k]; set && len(v) > 1 && v[0] == '"' && strings.Contains(v, "\\") {
			params[k] = unquoteParam(v)
		}
	}
}

// paramSection is one section of an RFC 2231 parameter: name*n or
// name*n* (encoded), or name* alone (section 0, encoded).
type paramSection struct {
	n   int
	enc bool
	v   string
}

// cutCharset splits the first section of an encoded parameter,
// "charset'language'value", when its charset is one mime.ParseMediaType
// does not decode. An empty one, which it drops too, leaves the bytes as
// they are: to Thunderbird and Python's email this names invoice.js:
//
//	filename*=''invoice.js
func cutCharset(first paramSection) (charset, value string, ok bool) {
	parts := strings.SplitN(first.v, "'", 3)
	if first.n != 0 || !first.enc || len(parts) != 3 {
		return "", "", false
	}
	switch strings.ToLower(parts[0]) {
	case "utf-8", "us-ascii":
		return "", "", false
	}
	return parts[0], parts[2], true
}

// percentDecode undoes RFC 2231's %XX escapes; a '%' not followed by two
// hex digits stays as it is.
func percentDecode(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b = append(b, byte(v))
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return b
}

// parseParamsLenient reads a media type and its parameters as mail readers
// do where mime.ParseMediaType gives up: a repeated parameter counts once,
// the first (as Thunderbird reads it), an unquoted value ends at a blank
// (Thunderbird's nsMIMEHeaderParamImpl, Python's email), and a value it
// cannot parse otherwise (parentheses, a stray ';') is taken as written. Without it a file name or boundary written so vanished for the
// scanner while the recipient's reader still used it: "filename=a.js;
// filename=b" hid a script from the attachment rules, and a repeated
// boundary made a multipart unreadable. The type is the first token, up to
// a ';', a ',' or a blank, and the parameters follow the first ';' or ','
// (Thunderbird's MimeHeaders_get and nsMIMEHeaderParamImpl): a comment
// after the type ("multipart/mixed (x); boundary=b") or a comma before the
// first parameter hid a multipart's parts, or an attachment's name, from
// the scanner and not from the reader. ok is false when s has no first
// token.
func parseParamsLenient(s string) (f string, params map[string]string, ok bool) {
	// With no ';' or ',', Thunderbird reads the parameters from the
	// start ("for broken http servers"): "Content-Disposition:
	// filename=invoice.js" names the file the recipient sees.
	f, rest := s, s
	if i := strings.IndexAny(s, ";,"); i >= 0 {
		f, rest = s[:i], s[i+1:]
	}
	f = strings.ToLower(strings.TrimSpace(f))
	if i := strings.IndexAny(f, " \t\r\n"); i >= 0 {
		f = f[:i]
	}
	if f == "" {
		return "", nil, false
	}
	// Built as one buffer: appended to a string, it was copied whole for
	// every parameter kept, quadratic in a field of thousands of them.
	var canonical strings.Builder
	canonical.WriteString(f)
	params = make(map[string]string)
	for more := true; more; {
		var p string
		p, rest, more = cutParam(rest)
		k, v, found := strings.Cut(p, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if _, dup := params[k]; !found || k == "" || dup {
			continue
		}
		if i := strings.IndexAny(v, asciiSpace); i >= 0 && !strings.HasPrefix(v, `"`) {
			// An unquoted value ends at a blank, to Thunderbird and
			// Python's email: "boundary=b x" delimits with "--b".
			v = v[:i]
		}
		params[k] = unquoteParam(v)
		canonical.WriteString("; ")
		canonical.WriteString(k)
		canonical.WriteByte('=')
		canonical.WriteString(v)
	}
	// Without the repeats, mime.ParseMediaType may read the rest, and
	// then decodes RFC 2231 values and continuations.
	if _, strict, err := mime.ParseMediaType(canonical.String()); err == nil {
		params = strict
	}
	return f, params, true
}

// cutParam cuts a parameter list at its first semicolon outside a quoted
// string: the parameter before it and the list after it, more false when
// there is none. Read one at a time, a field of a million semicolons is
// not a million strings held at once.
func cutParam(s string) (param, rest string, more bool) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == ';' && !quoted:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// unquoteParam undoes an RFC 2045 quoted-string; other values are
// returned as they are.
func unquoteParam(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		if v[i] == '\\' && i+1 < len(v)-1 {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func formatHeaderWithParams(f string, params map[string]string) string {
	encParams := make(map[string]string)
	for k, v := range params {
		encParams[k] = encodeHeader(v)
	}
	return mime.FormatMediaType(f, encParams)
}

// HeaderFields iterates over header fields.
type HeaderFields interface {
	textproto.HeaderFields

	// Text parses the value of the current field as plaintext. The field
	// charset is decoded to UTF-8. If the header field's charset is unknown,
	// the raw field value is returned and the error verifies IsUnknownCharset.
	Text() (string, error)
}

type headerFields struct {
	textproto.HeaderFields
}

func (hf *headerFields) Text() (string, error) {
	return decodeHeader(hf.Value())
}

// A Header represents the key-value pairs in a message header.
type Header struct {
	textproto.Header
}

// HeaderFromMap creates a header from a map of header fields.
//
// This function is provided for interoperability with the standard library.
// If possible, ReadHeader should be used instead to avoid loosing information.
// The map representation looses the ordering of the fields, the capitalization
// of the header keys, and the whitespace of the original header.
func HeaderFromMap(m map[string][]string) Header {
	return Header{textproto.HeaderFromMap(m)}
}

// ContentType parses the Content-Type header field.
//
// If no Content-Type is specified, it returns "text/plain".
func (h *Header) ContentType() (t string, params map[string]string, err error) {
	v := h.Get("Content-Type")
	if v == "" {
		return "text/plain", nil, nil
	}
	t, params, err = parseHeaderWithParams(v)
	// mxgrid patch: Thunderbird's mime_create reads the type as what
	// follows its last '?' (for "=?windows-1252?q?application/pdf", its
	// bug 659355), so "text/plain?multipart/mixed; boundary=b" is a
	// multipart to the recipient, whose parts the scanner never read.
	if i := strings.LastIndexByte(t, '?'); i >= 0 {
		t = t[i+1:]
	}
	return t, params, err
}

// SetContentType formats the Content-Type header field.
func (h *Header) SetContentType(t string, params map[string]string) {
	h.Set("Content-Type", formatHeaderWithParams(t, params))
}

// ContentDisposition parses the Content-Disposition header field, as defined in
// RFC 2183.
func (h *Header) ContentDisposition() (disp string, params map[string]string, err error) {
	return parseHeaderWithParams(h.Get("Content-Disposition"))
}

// SetContentDisposition formats the Content-Disposition header field, as
// defined in RFC 2183.
// TransferEncoding returns the Content-Transfer-Encoding as Thunderbird
// reads it (MimeHeaders_get with strip_p): its first token, up to a ';', a
// ',' or an ASCII space of C's isspace, in lower case. "base64 (mail)",
// "base64;", "base64,x" and "\fbase64" are base64 to the recipient's
// reader; read whole, they were an unknown encoding to the scanner, which
// left the part encoded.
func (h *Header) TransferEncoding() string {
	enc := strings.TrimLeft(h.Get("Content-Transfer-Encoding"), asciiSpace)
	if i := strings.IndexAny(enc, asciiSpace+";,"); i >= 0 {
		enc = enc[:i]
	}
	return strings.ToLower(enc)
}

// asciiSpace is C's isspace in the C locale.
const asciiSpace = " \t\n\v\f\r"

func (h *Header) SetContentDisposition(disp string, params map[string]string) {
	h.Set("Content-Disposition", formatHeaderWithParams(disp, params))
}

// Text parses a plaintext header field. The field charset is automatically
// decoded to UTF-8. If the header field's charset is unknown, the raw field
// value is returned and the error verifies IsUnknownCharset.
func (h *Header) Text(k string) (string, error) {
	return decodeHeader(h.Get(k))
}

// SetText sets a plaintext header field.
func (h *Header) SetText(k, v string) {
	h.Set(k, encodeHeader(v))
}

// Copy creates a stand-alone copy of the header.
func (h *Header) Copy() Header {
	return Header{h.Header.Copy()}
}

// Fields iterates over all the header fields.
//
// The header may not be mutated while iterating, except using HeaderFields.Del.
func (h *Header) Fields() HeaderFields {
	return &headerFields{h.Header.Fields()}
}

// FieldsByKey iterates over all fields having the specified key.
//
// The header may not be mutated while iterating, except using HeaderFields.Del.
func (h *Header) FieldsByKey(k string) HeaderFields {
	return &headerFields{h.Header.FieldsByKey(k)}
}
