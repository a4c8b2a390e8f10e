package antivirus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// leaf is one decoded MIME part, as the engine sees it.
type leaf struct {
	path     string // "1.2" in the MIME tree, for details
	name     string // file name from Content-Disposition or Content-Type
	data     []byte // transfer-decoded content (no charset conversion: bytes matter here)
	brokenAt error  // set when decoding stopped early (truncated base64); data holds what decoded
}

// walker walks a MIME tree with bounds on depth and part count. It does its
// own parsing rather than go-message's Entity, because go-message converts
// text charsets (changing the bytes a hash or signature is computed on) and
// recurses without a depth limit.
type walker struct {
	ctx                context.Context
	maxDepth, maxParts int
	parts              int
	visit              func(*leaf)
	// problem records a structural finding (symbol name, detail) once.
	problem func(symbol, detail string)
}

var wordDecoder = mime.WordDecoder{CharsetReader: charset.Reader}

// walk visits every leaf of the entity with header h and body r.
func (w *walker) walk(h textproto.Header, r io.Reader, depth int, path string) {
	if w.ctx.Err() != nil {
		return
	}
	w.parts++
	if w.parts > w.maxParts {
		if w.parts == w.maxParts+1 {
			w.problem(SymbolMIMELimit, fmt.Sprintf("more than %d MIME parts", w.maxParts))
		}
		return
	}
	if depth > w.maxDepth {
		w.problem(SymbolMIMELimit, fmt.Sprintf("MIME nesting deeper than %d at %s", w.maxDepth, where(path)))
		return
	}
	mediaType, params := mediaTypeOf(h)
	switch {
	case strings.HasPrefix(mediaType, "multipart/") && params["boundary"] != "":
		mr := textproto.NewMultipartReader(r, params["boundary"])
		for i := 1; ; i++ {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				// A missing final boundary or garbage between parts: what was
				// read is scanned, the rest cannot be delimited (RFC 2046 5.1.1).
				w.problem(SymbolMIMEBroken, fmt.Sprintf("multipart %s: %v", where(path), err))
				return
			}
			w.walk(p.Header, p, depth+1, joinPath(path, i))
		}
	case mediaType == "message/rfc822" || mediaType == "message/global":
		br := bufio.NewReader(decodeTransfer(h, r))
		inner, err := textproto.ReadHeader(br)
		if err != nil {
			w.problem(SymbolMIMEBroken, fmt.Sprintf("attached message %s: %v", where(path), err))
		}
		w.walk(inner, br, depth+1, joinPath(path, 1))
	default:
		data, err := io.ReadAll(decodeTransfer(h, r))
		w.visit(&leaf{path: path, name: filename(h, params), data: data, brokenAt: err})
	}
}

// where names a position in the tree for symbol details.
func where(path string) string {
	if path == "" {
		return "body"
	}
	return "part " + path
}

func joinPath(path string, i int) string {
	if path == "" {
		return fmt.Sprint(i)
	}
	return fmt.Sprintf("%s.%d", path, i)
}

// mediaTypeOf returns the lower-case media type and its parameters,
// text/plain when absent or unparsable (RFC 2045 5.2).
func mediaTypeOf(h textproto.Header) (string, map[string]string) {
	v := h.Get("Content-Type")
	if v == "" {
		return "text/plain", map[string]string{}
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		// Keep the type even when a parameter is malformed: a sloppy
		// multipart must still be walked.
		mt, _, _ = strings.Cut(v, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if params == nil {
			params = map[string]string{}
		}
	}
	return mt, params
}

// filename takes Content-Disposition's filename (RFC 2183, RFC 2231
// encoded), else Content-Type's name, and decodes RFC 2047 words that many
// MUAs put there although RFC 2047 5 forbids it.
func filename(h textproto.Header, ctParams map[string]string) string {
	name := ""
	if _, p, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil {
		name = p["filename"]
	}
	if name == "" {
		name = ctParams["name"]
	}
	if dec, err := wordDecoder.DecodeHeader(name); err == nil {
		name = dec
	}
	return name
}

// decodeTransfer undoes the Content-Transfer-Encoding (RFC 2045 6).
func decodeTransfer(h textproto.Header, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &base64Filter{r: r})
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// base64Filter drops what RFC 2045 6.8 says decoders must ignore: line
// breaks, white space and any character outside the base64 alphabet.
type base64Filter struct{ r io.Reader }

func (f *base64Filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// walkMessage walks a whole message given its parsed top-level header and body.
func (w *walker) walkMessage(h textproto.Header, body []byte) {
	w.walk(h, bytes.NewReader(body), 0, "")
}
