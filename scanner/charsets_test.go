package scanner

import (
	"strings"
	"testing"
)

// TestCharsetNamesMailersWrite: charsets by the names Python's email
// package, Java and Windows write, which neither IANA's nor the WHATWG's
// index knows. Unknown, a part was left undecoded, and a short Japanese
// business mail in cp932 scored MIME_UNKNOWN_CHARSET and, its Shift_JIS
// bytes read as UTF-8, TEXT_UNDECLARED_8BIT: tagged as spam (6.31), where
// the same mail labelled Shift_JIS scores 2.97.
func TestCharsetNamesMailersWrite(t *testing.T) {
	const ja = "\x89\xef\x8b\x63\x82\xcc\x8e\x91\x97\xbf" // 会議の資料 in Shift_JIS
	const ko = "\xc8\xb8\xc0\xc7 \xc0\xda\xb7\xe1"        // 회의 자료 in EUC-KR
	for _, tt := range []struct {
		charset, body, want string
	}{
		{"cp932", ja, "会議の資料"},
		{"CP932", ja, "会議の資料"},
		{"x-ms-cp932", ja, "会議の資料"},
		{"windows-932", ja, "会議の資料"},
		{"cp949", ko, "회의 자료"},
		{"x-windows-949", ko, "회의 자료"},
		{"windows-949", ko, "회의 자료"},
		{"uhc", ko, "회의 자료"},
		{"iso-2022-jp-2", "\x1b$B2q5D$N;qNA\x1b(B", "会議の資料"},
		{"x-cp20936", "\xbb\xe1\xd2\xe9", "会议"},
		{"cp-850", "caf\x82", "café"},
	} {
		t.Run(tt.charset, func(t *testing.T) {
			m := Parse(crlf("From: a@example.org\nMIME-Version: 1.0\nContent-Type: text/plain; charset=" + tt.charset +
				"\nContent-Transfer-Encoding: 8bit\n\n" + tt.body + "\n"))
			if strings.TrimSpace(m.Text) != tt.want || len(m.Symbols) > 0 {
				t.Errorf("text %q, symbols %v; want %q and none", m.Text, m.Symbols, tt.want)
			}
		})
	}
}
