package smtpd

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

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
		got := truncate(tt.in, tt.n)
		if got != tt.want || !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestWriteFieldFoldsLongValues(t *testing.T) {
	var b bytes.Buffer
	value := strings.Repeat("SYMBOL_NAME(1.00),", 20)
	writeField(&b, "X-Spam-Symbols", value+"\r\nInjected: yes")
	out := b.String()
	for _, line := range strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
		if strings.HasPrefix(line, "Injected:") {
			t.Error("a CRLF in the value started a new header field")
		}
	}
	unfolded := strings.ReplaceAll(strings.TrimSuffix(out, "\r\n"), "\r\n\t", " ")
	if !strings.HasPrefix(unfolded, "X-Spam-Symbols: SYMBOL_NAME(1.00),") || strings.Count(unfolded, "SYMBOL_NAME") != 20 {
		t.Errorf("value lost in folding: %q", unfolded)
	}
}
