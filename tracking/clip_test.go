package tracking

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mxgrid/mxgrid/replytext"
)

func TestClipKeepsOnePrintableLine(t *testing.T) {
	long := strings.Repeat("é", maxText) // 2 bytes each
	for _, tt := range []struct{ name, in, want string }{
		{"plain", "Quarterly report", "Quarterly report"},
		{"header injection", "hi\r\nBcc: victim@example.org", "hi  Bcc: victim@example.org"},
		{"NUL, DEL and C1", "a\x00b\x7fc\u0085d", "a b c d"},
		{"invalid UTF-8", "caf\xe9 \xff", "caf? ?"},
		{"tab kept", "a\tb", "a\tb"},
		{"cut on a character boundary", long, long[:maxText]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Clip(tt.in)
			if got != tt.want {
				t.Errorf("Clip(%.40q) = %.40q, want %.40q", tt.in, got, tt.want)
			}
			if len(got) > maxText || !utf8.ValidString(got) {
				t.Errorf("Clip(%.40q): %d bytes, valid UTF-8 %v", tt.in, len(got), utf8.ValidString(got))
			}
		})
	}
}

// Clip reads only the start of a long value; the result is the same as
// cutting the whole value made printable.
func FuzzClipMatchesReference(f *testing.F) {
	f.Add("a", uint16(5000))
	f.Add("\ufffd", uint16(2000))
	f.Add("\u0085", uint16(3000))
	f.Add("\xe2\x82", uint16(1600))
	f.Add("é\x00\xff", uint16(1200))
	f.Fuzz(func(t *testing.T, unit string, n uint16) {
		s := strings.Repeat(unit, int(n))
		if len(s) > 1<<20 {
			return
		}
		for _, in := range []string{s, "x" + s, s[:len(s)/2]} {
			if got, want := Clip(in), replytext.Truncate(replytext.Printable(in), maxText); got != want {
				t.Fatalf("Clip(%.40q...) = %.40q..., want %.40q...", in, got, want)
			}
		}
	})
}
