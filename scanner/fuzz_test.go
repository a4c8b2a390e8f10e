package scanner_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/model"
	"github.com/mxgrid/mxgrid/scanner/rules"
)

// FuzzParse feeds arbitrary bytes through everything that reads a message
// on the hot path: the MIME parser, the model's feature extraction and the
// rules. None may panic, and the parser's outputs must stay within bounds.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"../testdata/corpus/spam", "../testdata/corpus/ham"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range files {
			raw, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(raw)
		}
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: text/html\r\n\r\n<a href=http://[::1]:x@%zz/>x</a>\r\n--b--\r\n"))
	f.Add([]byte("From x\nSubject: =?utf-8?b?invalid?=\n\n"))
	// An attachment that is a zip by content: the attachment rules read its directory.
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\npassword: 1\r\n--b\r\nContent-Disposition: attachment; filename=a.dat\r\n\r\nPK\x03\x04\x14\x00\x01\x00x.iso\r\n--b--\r\n"))
	// Files the walk decodes from BinHex, in a text part and as a part of their own.
	hqx := testenv.BinHex("a.exe", []byte("MZ\x90\x90\x90\x90\x00"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + hqx +
		"--b\r\nContent-Type: application/mac-binhex40; name=a.hqx\r\n\r\n" + hqx + "--b--\r\n"))
	m, err := model.Default()
	if err != nil {
		f.Fatal(err)
	}
	r := rules.New(nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		msg := scanner.Parse(raw)
		if msg.BodyOffset < 0 || msg.BodyOffset > len(raw) {
			t.Fatalf("BodyOffset %d outside [0, %d]", msg.BodyOffset, len(raw))
		}
		if len(msg.URLs) > 500 {
			t.Fatalf("%d URLs kept, limit is 500", len(msg.URLs))
		}
		for _, s := range msg.Symbols {
			if s.Score <= 0 || !utf8.ValidString(s.Name) {
				t.Fatalf("bad parser symbol %+v", s)
			}
		}
		// The one walk's leaves stay within the decoded byte limit, and a
		// cut leaf is never a quiet one.
		decoded, truncated := 0, false
		for _, l := range msg.Leaves {
			decoded += len(l.Data)
			truncated = truncated || l.Truncated
		}
		if lim := scanner.DefaultLimits(); decoded > lim.MaxDecodedBytes || len(msg.Leaves) > 5*lim.MaxParts {
			t.Fatalf("%d leaves, %d decoded bytes kept, past the limits", len(msg.Leaves), decoded)
		}
		if truncated && !hasSymbol(msg.Symbols, scanner.SymbolMIMETooComplex) {
			t.Fatal("a truncated leaf without MIME_TOO_COMPLEX")
		}
		// A spooled message (parsed from a ReaderAt) reads the same.
		spooled := scanner.NewParser(nil).ParseReaderAt(bytes.NewReader(raw), int64(len(raw)))
		if diff := parseDiff(msg, spooled); diff != "" {
			t.Fatalf("ParseReaderAt differs from Parse in %s", diff)
		}
		if got, err := io.ReadAll(spooled.Reader(0)); err != nil || !bytes.Equal(got, raw) || spooled.Size() != int64(len(raw)) {
			t.Fatalf("spooled Reader gave %d bytes (%v), want the %d received", len(got), err, len(raw))
		}
		_ = m.Classify(msg)
		if _, err := r.Check(context.Background(), &scanner.Envelope{HELO: string(raw[:min(len(raw), 64)])}, msg); err != nil {
			t.Fatalf("rules: %v", err)
		}
	})
}

// parseDiff names the first field in which two parses of one message
// differ, "" when they agree.
func parseDiff(a, b *scanner.Message) string {
	fields := []struct {
		name string
		a, b any
	}{
		{"Header", a.Header.Map(), b.Header.Map()}, {"BodyOffset", a.BodyOffset, b.BodyOffset},
		{"Symbols", a.Symbols, b.Symbols}, {"Subject", a.Subject, b.Subject},
		{"From", a.FromName + a.FromAddr, b.FromName + b.FromAddr}, {"Text", a.Text, b.Text},
		{"HTML", a.HTML, b.HTML}, {"URLs", a.URLs, b.URLs}, {"Parts", a.Parts, b.Parts},
		{"Structure", a.Structure, b.Structure}, {"Leaves", a.Leaves, b.Leaves},
	}
	for _, f := range fields {
		if !reflect.DeepEqual(f.a, f.b) {
			return f.name
		}
	}
	return ""
}

func hasSymbol(syms []scanner.Symbol, name string) bool {
	for _, s := range syms {
		if s.Name == name {
			return true
		}
	}
	return false
}
