package tracking

import (
	"strings"
	"testing"
	"unicode/utf8"
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
