package replytext

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"plain", "5.1.1 user unknown", 400, "5.1.1 user unknown"},
		{"CRLF injection becomes one line", "ok\r\n250 fake", 400, "ok 250 fake"},
		{"white space runs collapse", "  a \t\t b  ", 400, "a b"},
		{"C0, DEL and C1 controls", "a\x00b\x7fc\u0085d", 400, "a b c d"},
		{"invalid UTF-8", "a\xffb", 400, "a?b"},
		{"cut on a byte limit", "abcdef", 3, "abc"},
		{"cut never splits a character", "ab€cd", 4, "ab"},
		{"cut keeps a whole character", "ab€cd", 5, "ab€"},
		{"cut leaves no trailing space", "ab cd", 3, "ab"},
		{"empty", "", 10, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sanitize(tt.in, tt.max); got != tt.want {
				t.Errorf("Sanitize(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain  text", "plain  text"},
		{"a\tb", "a\tb"},
		{"x\r\nInjected: yes", "x  Injected: yes"},
		{"a\x00\x7f\u0085b", "a   b"},
		{"a\xffb", "a?b"},
		// Trojan Source: shown in the panel, "invoice\u202etxt.mcod" reads
		// "invoicedocm.txt"; U+2028 ends a line for some readers.
		{"invoice\u202etxt.mcod", "invoice txt.mcod"},
		{"a\u202ab\u202cc\u2066d\u2069e", "a b c d e"},
		{"one\u2028two\u2029three", "one two three"},
		{"\u200f\u05e9\u05dc\u05d5\u05dd \u200dx", "\u200f\u05e9\u05dc\u05d5\u05dd \u200dx"},
	}
	for _, tt := range tests {
		if got := Printable(tt.in); got != tt.want {
			t.Errorf("Printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncateKeepsUTF8Whole(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc"},
		{"ab€cd", 4, "ab"}, // € is 3 bytes: cutting inside it keeps "ab"
		{"ab€cd", 5, "ab€"},
		{"€€", 1, ""},
	}
	for _, tt := range tests {
		got := Truncate(tt.in, tt.n)
		if got != tt.want || !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestReply(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"5.1.1 user unknown", 400, "5.1.1 user unknown"},
		{"5.1.1 Benutzer unbekannt: müller", 400, "5.1.1 Benutzer unbekannt: m?ller"},
		{"ok\r\n250 fake", 400, "ok 250 fake"},
		{"boîte pleine", 5, "bo?t"}, // cut at 5 bytes ("boît"), then "î" made one "?"
		{"a\xffb", 400, "a?b"},
		{"\u202e\u05e9", 400, "?"},
	}
	for _, tt := range tests {
		if got := Reply(tt.in, tt.max); got != tt.want {
			t.Errorf("Reply(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

// FuzzReply: a reply's text is printable ASCII within the limit, whatever
// it was given.
func FuzzReply(f *testing.F) {
	for _, s := range []string{"ok", "a\r\n250 x", "ab€cd", "\xff\xfe", "müller"} {
		f.Add(s, 4)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1000 {
			return
		}
		got := Reply(s, max)
		if len(got) > max {
			t.Fatalf("Reply(%q, %d) = %q: too long", s, max, got)
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; c < 0x20 || c > 0x7e {
				t.Fatalf("Reply(%q, %d) = %q: byte %#x", s, max, got, c)
			}
		}
	})
}

// FuzzSanitize: whatever the input, the result is one valid, printable,
// trimmed line within the limit, and sanitising it again changes nothing.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"ok", "a\r\n250 x", "ab€cd", "\xff\xfe", " \u0085 x ", "€€€€"} {
		f.Add(s, 4)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1000 {
			return
		}
		got := Sanitize(s, max)
		if len(got) > max || !utf8.ValidString(got) {
			t.Fatalf("Sanitize(%q, %d) = %q: too long or invalid UTF-8", s, max, got)
		}
		if strings.TrimSpace(got) != got || strings.Contains(got, "  ") {
			t.Fatalf("Sanitize(%q, %d) = %q: untrimmed or uncollapsed white space", s, max, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) {
				t.Fatalf("Sanitize(%q, %d) = %q: control character %U", s, max, got, r)
			}
		}
		if again := Sanitize(got, max); again != got {
			t.Fatalf("not idempotent: %q then %q", got, again)
		}
	})
}

// FuzzSanitizeMatchesReference: with its fast path for text already one
// space apart, Sanitize returns what splitting and joining every value did.
func FuzzSanitizeMatchesReference(f *testing.F) {
	for _, s := range []string{"", "ok", "2.0.0 Ok: queued as 4XyZ", " a", "a ", "a  b", "a\tb", "a\u00a0b", "a\u0085b", "x\r\ny", "~ü", "\xff"} {
		f.Add(s, 400)
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1000 {
			return
		}
		want := strings.TrimRight(Truncate(strings.Join(strings.Fields(Printable(s)), " "), max), " ")
		if got := Sanitize(s, max); got != want {
			t.Fatalf("Sanitize(%q, %d) = %q, reference %q", s, max, got, want)
		}
	})
}

// TestSanitizeCleanTextAllocatesNothing: a reply already one printable line
// (nearly every customer server's) comes back as it is.
func TestSanitizeCleanTextAllocatesNothing(t *testing.T) {
	if allocs := testing.AllocsPerRun(100, func() {
		if got := Reply("2.0.0 Ok: queued as 4XyZ", 400); got != "2.0.0 Ok: queued as 4XyZ" {
			t.Fatalf("Reply = %q", got)
		}
	}); allocs != 0 {
		t.Errorf("%.0f allocations", allocs)
	}
}

// FuzzPrintableMatchesReference: the ASCII fast path returns what the
// rune-by-rune mapping, Printable's first version with the bidirectional
// controls and line separators added, returns.
func FuzzPrintableMatchesReference(f *testing.F) {
	for _, s := range []string{"plain  text", "a\tb\x7f", "x\r\ny", "a\u0085b", "\xff", "~ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := strings.Map(func(r rune) rune {
			switch {
			case r == '\t':
				return r
			case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0),
				r == 0x2028, r == 0x2029, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
				return ' '
			case r == utf8.RuneError:
				return '?'
			}
			return r
		}, s)
		if got := Printable(s); got != want {
			t.Fatalf("Printable(%q) = %q, reference %q", s, got, want)
		}
	})
}
