package scanner

import (
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// qpDecoded is r as the body of a quoted-printable text part, decoded by
// the patched go-message (third_party/go-message/PATCHES.md).
func qpDecoded(t testing.TB, r io.Reader) io.Reader {
	t.Helper()
	var h textproto.Header
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	e, err := message.New(message.Header{Header: h}, r)
	if err != nil {
		t.Fatal(err)
	}
	return e.Body
}

// TestQuotedPrintable: the patched decoder reads on where
// mime/quotedprintable stopped (a control byte, an escape at its buffer's
// end), in any read size.
func TestQuotedPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<p>\x01</p><a href=3D\"https://evil.example/\">verify</a>\r\n", "<p>\x01</p><a href=\"https://evil.example/\">verify</a>\r\n"},
		{"a\x00b\x1bc\x7fd=\r\ne", "a\x00b\x1bc\x7fde"},
		{"caf\xc3\xa9 =C3=a9\tx\r\n", "caf\xc3\xa9 \xc3\xa9\tx\r\n"},
		{strings.Repeat("\x01", 5000), strings.Repeat("\x01", 5000)},
		// mime/quotedprintable failed where its 4 KiB buffer split an escape.
		{strings.Repeat("a", 4095) + "=3Dx\r\n", strings.Repeat("a", 4095) + "=x\r\n"},
		{"trailing blanks \t \r\nsoft=  \r\nbreak=\nend=", "trailing blanks\r\nsoftbreakend"},
		{"lone = sign, =zz, =4\r\n", "lone = sign, =zz, =4\r\n"},
		{"a=   \t b   \r\n", "a=   \t b\r\n"},
	}
	for _, tt := range tests {
		for name, r := range map[string]io.Reader{
			"whole":     strings.NewReader(tt.in),
			"one byte":  iotest.OneByteReader(strings.NewReader(tt.in)),
			"half read": iotest.HalfReader(strings.NewReader(tt.in)),
		} {
			got, err := io.ReadAll(qpDecoded(t, r))
			if err != nil || string(got) != tt.want {
				t.Errorf("%s: decode(%.40q) = %.40q (%d bytes), %v; want %.40q (%d bytes)", name, tt.in, got, len(got), err, tt.want, len(tt.want))
			}
		}
	}
}

// TestQuotedPrintableBlankRuns: runs of blanks inside lines, as long as the
// buffer and longer, are text. Each run is looked through once: looked
// through again from every blank, a megabyte of them took minutes.
func TestQuotedPrintableBlankRuns(t *testing.T) {
	in := strings.Repeat(strings.Repeat(" ", 4000)+"x"+strings.Repeat("\t", 5000)+"y", 100)
	out, err := io.ReadAll(qpDecoded(t, strings.NewReader(in)))
	if err != nil || string(out) != in {
		t.Fatalf("%d of %d bytes, %v", len(out), len(in), err)
	}
}

// FuzzQuotedPrintable: where mime/quotedprintable decodes a body, the
// patched decoder gives the same bytes.
func FuzzQuotedPrintable(f *testing.F) {
	f.Add("a=3Db\r\nc=\r\nd")
	f.Add("x\x01y")
	f.Add("tab\t \r\n= \r\n")
	f.Fuzz(func(t *testing.T, in string) {
		// A bare CR never reaches the parser (smtpd turns it into CRLF or
		// refuses the message), and mime/quotedprintable trims it as a
		// blank where it ends a line.
		if strings.Count(in, "\r") != strings.Count(in, "\r\n") {
			return
		}
		plain, plainErr := io.ReadAll(quotedprintable.NewReader(strings.NewReader(in)))
		patched, err := io.ReadAll(qpDecoded(t, iotest.OneByteReader(strings.NewReader(in))))
		if plainErr == nil && (err != nil || string(patched) != string(plain)) {
			t.Fatalf("%q: %q, %v; mime/quotedprintable alone gave %q", in, patched, err, plain)
		}
	})
}

// TestBase64StrayCharacters: a character outside the base64 alphabet is
// skipped (RFC 2045 6.8), as mail readers skip it; encoding/base64 stopped
// there, so one "!" hid the rest of an HTML body, its text and its links.
func TestBase64StrayCharacters(t *testing.T) {
	html := "<html><body>" + strings.Repeat("<p>Your mailbox is almost full.</p>", 5) +
		`<a href="https://mailbox-upgrade.example/login">Upgrade now</a></body></html>`
	enc := base64.StdEncoding.EncodeToString([]byte(html))
	var lines []string
	for len(enc) > 76 {
		lines = append(lines, enc[:76])
		enc = enc[76:]
	}
	lines = append(lines, enc)
	lines[0] = lines[0][:30] + "!" + lines[0][30:]
	m := Parse([]byte("From: a@example.org\r\nSubject: Mailbox\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + strings.Join(lines, "\r\n") + "\r\n"))
	if !strings.Contains(m.HTML.Text, "Upgrade now") || len(m.URLs) != 1 || m.URLs[0].Host != "mailbox-upgrade.example" {
		t.Fatalf("HTML text %q, links %+v", m.HTML.Text, m.URLs)
	}
}
