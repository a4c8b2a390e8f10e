package scanner

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"golang.org/x/text/transform"
)

func TestUTF7(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain ASCII", "plain ASCII"},
		{"Hi Mom -+Jjo--!", "Hi Mom -☺-!"},               // RFC 2152's examples
		{"+ZeVnLIqe-", "日本語"},                            // "
		{"A+ImIDkQ.", "A≢Α."},                            // a run ended by '.', not absorbed
		{"+AFA-ay+AFA-al", "PayPal"},                     // how spam spells words
		{"1 +- 1", "1 + 1"},                              // "+-" is '+'
		{"+2D3eAA-", "\U0001F600"},                       // a surrogate pair
		{"+2D0-x", "\uFFFDx"},                            // a lone surrogate
		{"ends in a run +AGEAYgBj", "ends in a run abc"}, // closed by the end
		{"a lone plus at the end +", "a lone plus at the end +"},
	}
	for _, tt := range tests {
		got, _, err := transform.String(utf7{}.NewDecoder(), tt.in)
		if err != nil || got != tt.want {
			t.Errorf("decode(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestUTF7InMessages: a text part, and an encoded word, in UTF-7 are read
// as the recipient's reader shows them.
func TestUTF7InMessages(t *testing.T) {
	m := Parse([]byte("From: a@example.org\r\nSubject: =?utf-7?Q?Your_+AFA-ayPal_account?=\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=UTF-7\r\n\r\nVerify your +AFA-ayPal account at +AGg-ttps://login.example+AC4-net/\r\n"))
	if m.Subject != "Your PayPal account" {
		t.Errorf("subject %q", m.Subject)
	}
	if !strings.Contains(m.Text, "Verify your PayPal account at https://login.example.net/") {
		t.Errorf("text %q", m.Text)
	}
	for _, s := range m.Symbols {
		if s.Name == SymbolUnknownCharset {
			t.Errorf("symbol %v", s)
		}
	}
	if len(m.URLs) != 1 || m.URLs[0].Host != "login.example.net" {
		t.Errorf("links %+v", m.URLs)
	}
}

// FuzzUTF7 decodes in one piece and one byte at a time: the results must
// agree and be UTF-8.
func FuzzUTF7(f *testing.F) {
	for _, s := range []string{"Hi Mom -+Jjo--!", "+2D3eAA-", "+AFA-ay+AFA-al", strings.Repeat("+AGEAYgBj", 200), "+" + strings.Repeat("2D3eAA", 700)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		whole, _, err := transform.String(utf7{}.NewDecoder(), in)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		piecewise, err := io.ReadAll(transform.NewReader(iotest.OneByteReader(strings.NewReader(in)), utf7{}.NewDecoder()))
		if err != nil {
			t.Fatalf("decode by bytes: %v", err)
		}
		if string(piecewise) != whole {
			t.Fatalf("whole %q, by bytes %q", whole, piecewise)
		}
		if !utf8.ValidString(whole) && utf8.ValidString(in) {
			t.Fatalf("%q decoded to invalid UTF-8 %q", in, whole)
		}
	})
}
