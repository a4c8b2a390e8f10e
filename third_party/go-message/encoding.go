package message

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
)

type UnknownEncodingError struct {
	e error
}

func (u UnknownEncodingError) Unwrap() error { return u.e }

func (u UnknownEncodingError) Error() string {
	return "encoding error: " + u.e.Error()
}

// IsUnknownEncoding returns a boolean indicating whether the error is known to
// report that the encoding advertised by the entity is unknown.
func IsUnknownEncoding(err error) bool {
	return errors.As(err, new(UnknownEncodingError))
}

// encodingReader decodes r. A base64 body is read past characters outside
// the base64 alphabet (mxgrid patch), as RFC 2045 6.8 and mail readers
// have them ignored, where encoding/base64 stops at the first: one stray
// byte hid the rest of a part from the scanner (a zip's central directory
// and members, an HTML body's text and links) while the recipient's
// reader decoded it whole. A mailing list footer appended to a base64
// body decodes into a few bytes of junk, as it does for those readers.
// It is read past padding too (base64Reader), as Thunderbird reads it.
func encodingReader(enc string, r io.Reader) (io.Reader, error) {
	var dec io.Reader
	switch strings.ToLower(enc) {
	case "quoted-printable":
		dec = &qpReader{r: bufio.NewReader(r)}
	case "base64":
		dec = &base64Reader{r: r}
	case "7bit", "8bit", "binary", "":
		dec = r
	default:
		return nil, fmt.Errorf("unhandled encoding %q", enc)
	}
	return dec, nil
}

type nopCloser struct {
	io.Writer
}

func (nopCloser) Close() error {
	return nil
}

func encodingWriter(enc string, w io.Writer) (io.WriteCloser, error) {
	var wc io.WriteCloser
	switch strings.ToLower(enc) {
	case "quoted-printable":
		wc = quotedprintable.NewWriter(w)
	case "base64":
		wc = base64.NewEncoder(base64.StdEncoding, &lineWrapper{w: w, maxLineLen: 76})
	case "7bit", "8bit":
		wc = nopCloser{&lineWrapper{w: w, maxLineLen: 998}}
	case "binary", "":
		wc = nopCloser{w}
	default:
		return nil, fmt.Errorf("unhandled encoding %q", enc)
	}
	return wc, nil
}

// qpReader decodes quoted-printable as mail readers do (mxgrid patch, in
// place of mime/quotedprintable). mime/quotedprintable stops with an error
// at a control byte (one \x01 at the top of an HTML part hid its text and
// links from the scanner) and at an escape split by its 4 KiB line buffer
// (any longer line could end a part early), where readers decode on. Here
// "=XX" is the byte XX (either case), "=" before the end of a line is a
// soft line break, whitespace before the end of a line is dropped (RFC
// 2045 6.7), and every other byte, a lone "=" included, is itself.
type qpReader struct {
	r *bufio.Reader
	// textBlanks are blanks ahead already found not to end a line: each
	// run of blanks is looked through once, not once per blank.
	textBlanks int
}

func (q *qpReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c, err := q.r.ReadByte()
		if err != nil {
			return n, err
		}
		switch c {
		case '=':
			if b, _ := q.r.Peek(2); len(b) == 2 && isHex(b[0]) && isHex(b[1]) {
				q.r.Discard(2)
				c = unhex(b[0])<<4 | unhex(b[1])
			} else if blanks, ending, ok := q.blanksToLineEnd(); ok {
				q.r.Discard(blanks + ending)
				continue
			}
		case ' ', '\t':
			if q.textBlanks > 0 {
				q.textBlanks--
				break
			}
			if blanks, _, ok := q.blanksToLineEnd(); ok {
				q.r.Discard(blanks)
				continue
			}
		}
		p[n] = c
		n++
	}
	return n, nil
}

// blanksToLineEnd reports whether the unread input is blanks (spaces and
// tabs, counted in blanks) then a line end (CRLF or LF, its length in
// ending) or the end of input. A run of blanks longer than the buffer is
// taken as text.
func (q *qpReader) blanksToLineEnd() (blanks, ending int, ok bool) {
	if q.textBlanks > 0 {
		return 0, 0, false
	}
	for k := 0; ; k++ {
		b, err := q.r.Peek(k + 2)
		switch {
		case len(b) <= k:
			if err != nil && err != bufio.ErrBufferFull {
				return k, 0, true
			}
			q.textBlanks = k
			return 0, 0, false
		case b[k] == ' ' || b[k] == '\t':
		case b[k] == '\n':
			return k, 1, true
		case b[k] == '\r' && len(b) > k+1 && b[k+1] == '\n':
			return k, 2, true
		default:
			q.textBlanks = k
			return 0, 0, false
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// base64Reader decodes base64 four characters at a time, each group on
// its own, as Thunderbird does (mime_decode_base64_buffer), an mxgrid
// patch: characters outside the alphabet are skipped, and a group with
// '=' gives its one or two bytes and decoding goes on after it.
// encoding/base64 stopped at the first padded group, so a file encoded as
// its first byte ("UA==") then the rest was one byte to the scanner and
// the whole file to the recipient. Characters left over at the end, short
// of a group, are io.ErrUnexpectedEOF, as for encoding/base64.
type base64Reader struct {
	r     io.Reader
	in    [1024]byte
	group [4]byte
	n     int       // characters in group
	buf   [768]byte // in's 1024 characters and 3 left in group: 256 groups
	out   []byte
	err   error
}

func (d *base64Reader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		n, err := d.r.Read(d.in[:])
		d.decode(d.in[:n])
		if err == io.EOF && d.n > 0 {
			err = io.ErrUnexpectedEOF
		}
		d.err = err
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

func (d *base64Reader) decode(in []byte) {
	out := d.buf[:0]
	for i := 0; i < len(in); i++ {
		if d.n == 0 && i+4 <= len(in) {
			// A group of four characters of the alphabet, nearly all
			// groups, at once: padding and skipped bytes are above 63.
			a, b, c, e := base64Value[in[i]], base64Value[in[i+1]], base64Value[in[i+2]], base64Value[in[i+3]]
			if a|b|c|e < 64 {
				num := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(e)
				out = append(out, byte(num>>16), byte(num>>8), byte(num))
				i += 3
				continue
			}
		}
		v := base64Value[in[i]]
		if v == notBase64 {
			continue
		}
		d.group[d.n] = v
		if d.n++; d.n < 4 {
			continue
		}
		d.n = 0
		g := d.group
		pad := 0
		for k := range g {
			if g[k] == base64Pad {
				g[k] = 0
				pad++
			}
		}
		num := uint32(g[0])<<18 | uint32(g[1])<<12 | uint32(g[2])<<6 | uint32(g[3])
		keep := 3 - pad
		if pad > 2 {
			keep = 1 // "x===" and "====" encode no byte; Thunderbird writes one
		}
		out = append(out, byte(num>>16), byte(num>>8), byte(num))[:len(out)+keep]
	}
	d.out = out
}

const (
	notBase64 = 0xff
	base64Pad = 0xfe
)

// base64Value is each byte's value in the base64 alphabet, base64Pad for
// '=' and notBase64 for the characters skipped.
var base64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = notBase64
	}
	for i, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = byte(i)
	}
	t['='] = base64Pad
	return t
}()

type lineWrapper struct {
	w          io.Writer
	maxLineLen int

	curLineLen int
	cr         bool
}

func (w *lineWrapper) Write(b []byte) (int, error) {
	var written int
	for len(b) > 0 {
		var l []byte
		l, b = cutLine(b, w.maxLineLen-w.curLineLen)

		lf := bytes.HasSuffix(l, []byte("\n"))
		l = bytes.TrimSuffix(l, []byte("\n"))

		n, err := w.w.Write(l)
		if err != nil {
			return written, err
		}
		written += n

		cr := bytes.HasSuffix(l, []byte("\r"))
		if len(l) == 0 {
			cr = w.cr
		}

		if !lf && len(b) == 0 {
			w.curLineLen += len(l)
			w.cr = cr
			break
		}
		w.curLineLen = 0

		ending := []byte("\r\n")
		if cr {
			ending = []byte("\n")
		}
		_, err = w.w.Write(ending)
		if err != nil {
			return written, err
		}
		// If the written `\n` was part of the input bytes slice, then account for it.
		if lf {
			written++
		}
		w.cr = false
	}

	return written, nil
}

func cutLine(b []byte, max int) ([]byte, []byte) {
	for i := 0; i < len(b); i++ {
		if b[i] == '\r' && i == max {
			continue
		}
		if b[i] == '\n' {
			return b[:i+1], b[i+1:]
		}
		if i >= max {
			return b[:i], b[i:]
		}
	}
	return b, nil
}
