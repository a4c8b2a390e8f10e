package smtpd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-message"
)

var eightBitHeaderCases = []struct {
	name string
	msg  string
	want bool
}{
	{"7-bit", "Subject: a\r\n\r\nb\r\n", false},
	{"8-bit body", "Subject: a\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n", false},
	{"8-bit Subject", "Subject: Gr\xc3\xbc\xc3\x9fe\r\n\r\nb\r\n", true},
	{"8-bit folded line", "Subject: a\r\n b\xe9\r\n\r\nb\r\n", true},
	{"8-bit field name", "X-\xe9: a\r\n\r\nb\r\n", true},
	{"8-bit past a long line", "Subject: " + strings.Repeat("a", 10000) + "\xe9\r\n\r\nb\r\n", true},
	{"LF line ends", "Content-Type: multipart/mixed; boundary=b\n\n--b\nX: \xe9\n\nc\n--b--\n", true},
	{"8-bit text part", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\xe9\r\n--b--\r\n", false},
	{"8-bit preamble and epilogue", "Content-Type: multipart/mixed; boundary=b\r\n\r\n\xe9\r\n--b\r\n\r\nc\r\n--b--\r\nX: \xe9\r\n", false},
	{"8-bit part header", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment; filename=\xe9.pdf\r\n\r\nc\r\n--b--\r\n", true},
	{"type read case-blind, folded", "CONTENT-TYPE : Multipart/Mixed;\r\n\tboundary=\"b\"\r\n\r\n--b\r\nX: \xe9\r\n\r\nc\r\n--b--\r\n", true},
	{"type as go-message reads it: a repeated boundary", "Content-Type: multipart/mixed; boundary=b; boundary=c\r\n\r\n--b\r\nX: \xe9\r\n\r\n", true},
	{"every Content-Type field counts", "Content-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX: \xe9\r\n\r\n", true},
	{"delimiter followed by junk", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b junk\r\nX: \xe9\r\n\r\n", true},
	{"a part's header ends at an empty line alone", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nnot a field\r\nX: \xe9\r\n\r\n", true},
	{"a delimiter inside a part's header", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nX: \xe9\r\n\r\n", true},
	{"empty boundary: -- delimits", "Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\nX: \xe9\r\n\r\n", true},
	{"no boundary delimits nothing", "Content-Type: multipart/mixed\r\n\r\n--\r\nX: \xe9\r\n\r\n", false},
	{"an outer delimiter closes the inner multipart", "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\na\r\n--o--\r\n--i\r\nX: \xe9\r\n\r\n", false},
	{"a closed multipart's delimiter still counts", "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\na\r\n--i--\r\n--i\r\nX: \xe9\r\n\r\n--o--\r\n", true},
	{"a field named as a delimiter, read as one by go-message", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n--b: \xe9\r\n\r\nc\r\n--b--\r\n", true},
	{"a field named as a close delimiter", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b--: \xe9\r\n\r\nc\r\n--b--\r\n", true},
	{"a long field named as a delimiter", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b: " + strings.Repeat("a", 10000) + "\xe9\r\n\r\nc\r\n--b--\r\n", true},
	{"a delimiter in a part's header, which go-message reads on", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n--b\r\nX: a\r\n\r\nSubject: \xe9\r\n\r\nc\r\n--b--\r\n", true},
	{"a close delimiter in a part's header, which go-message reads on", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b--\r\nX: \xe9\r\n\r\nc\r\n--b--\r\n", true},
	{"8-bit after a delimiter in a body", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nc\r\n--b \xe9\r\n\r\nc\r\n--b--\r\n", false},
	{"a close to Postfix, no close to Go", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--x\r\n--b\r\nX: \xe9\r\n\r\n", true},
	{"attached message", "Content-Type: message/rfc822\r\n\r\nSubject: \xe9\r\n\r\nb\r\n", true},
	{"attached message's 8-bit body", "Content-Type: message/rfc822\r\n\r\nSubject: a\r\n\r\n\xe9\r\n", false},
	{"message/global", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/global\r\n\r\nFrom: J\xc3\xbcrgen <j@a.test>\r\n\r\nb\r\n--b--\r\n", true},
	{"digest's untyped part is a message", "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nFrom: \xe9\r\n\r\nb\r\n--d--\r\n", true},
	{"digest's typed part is not", "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\nContent-Type: text/plain\r\n\r\nFrom: \xe9\r\n--d--\r\n", false},
	{"nested deeper than followed", strings.Repeat("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n", maxOpenMultiparts+1) + "\r\n\xe9\r\n", true},
	{"more parts than read", "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n\r\n", maxHeaders+1) + "\xe9\r\n", true},
	{"as many parts as read", "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n\r\n", maxHeaders) + "\xe9\r\n", false},
	{"too many Content-Type fields", strings.Repeat("Content-Type: text/plain\r\n", maxTypes+1) + "\r\n\xe9\r\n", true},
	{"Content-Type longer than read", "Content-Type: text/plain;\r\n x=" + strings.Repeat("a", maxTypeBytes) + "\r\n\r\n\xe9\r\n", true},
	{"boundary longer than followed", "Content-Type: multipart/mixed; boundary=" + strings.Repeat("b", maxBoundary+1) + "\r\n\r\n\xe9\r\n", true},
}

func TestEightBitHeader(t *testing.T) {
	for _, tc := range eightBitHeaderCases {
		t.Run(tc.name, func(t *testing.T) {
			// One byte a read: a line is seen in the pieces a spool file
			// or the network may give.
			for _, r := range []io.Reader{strings.NewReader(tc.msg), iotest.OneByteReader(strings.NewReader(tc.msg))} {
				if got, err := eightBitHeader(r); got != tc.want || err != nil {
					t.Errorf("eightBitHeader = %v, %v; want %v", got, err, tc.want)
				}
			}
		})
	}
	broken := errors.New("read spool file: input/output error")
	if _, err := eightBitHeader(io.MultiReader(strings.NewReader("Subject: a\r\n"), iotest.ErrReader(broken))); !errors.Is(err, broken) {
		t.Errorf("unreadable message: %v, want the read error", err)
	}
}

// FuzzEightBitHeader checks eightBitHeader against go-message's reading of
// the same bytes: any header field it finds 8-bit in raw bytes (a part's,
// an attached message's), eightBitHeader must find too.
func FuzzEightBitHeader(f *testing.F) {
	for _, tc := range eightBitHeaderCases {
		f.Add([]byte(tc.msg))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := eightBitHeader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if !got && goMessageEightBitHeader(bytes.NewReader(raw), 0) {
			t.Fatal("go-message reads an 8-bit header field that eightBitHeader missed")
		}
	})
}

// goMessageEightBitHeader walks the entity in r as go-message reads it,
// into parts and attached messages whose bytes it does not decode.
func goMessageEightBitHeader(r io.Reader, depth int) bool {
	e, _ := message.Read(r)
	return e != nil && entityEightBitHeader(e, depth)
}

func entityEightBitHeader(e *message.Entity, depth int) bool {
	for f := e.Header.Fields(); f.Next(); {
		if has8Bit([]byte(f.Key())) || has8Bit([]byte(f.Value())) {
			return true
		}
	}
	switch e.Header.Get("Content-Transfer-Encoding") {
	case "", "7bit", "8bit", "binary":
	default:
		return false
	}
	if depth > maxOpenMultiparts {
		return false
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if p == nil || err != nil {
				return p != nil && entityEightBitHeader(p, depth+1)
			}
			if entityEightBitHeader(p, depth+1) {
				return true
			}
		}
	}
	if t, _, _ := e.Header.ContentType(); strings.HasPrefix(strings.ToLower(t), "message/") {
		return goMessageEightBitHeader(e.Body, depth+1)
	}
	return false
}

// BenchmarkEightBitHeaderHostile: what the costliest lines cost, per MB.
// A line of dashes is compared with every open boundary, at most
// maxOpenMultiparts; parts' headers are read up to maxHeaders.
func BenchmarkEightBitHeaderHostile(b *testing.B) {
	var open strings.Builder
	for i := range maxOpenMultiparts {
		fmt.Fprintf(&open, "Content-Type: multipart/mixed; boundary=z%c\r\n\r\n--z%c\r\n", 'a'+i, 'a'+i)
	}
	open.WriteString("\r\n")
	const size = 1 << 20
	for _, bc := range []struct{ name, msg string }{
		{"dashes", open.String() + strings.Repeat("--zz\r\n", size/6)},
		{"parts", "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\n", size/60)},
		{"long types", "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\nContent-Type: a;"+strings.Repeat("b=c;", 2000)+"\r\n\r\n", size/8000)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.msg)))
			for b.Loop() {
				eightBitHeader(strings.NewReader(bc.msg))
			}
		})
	}
}
