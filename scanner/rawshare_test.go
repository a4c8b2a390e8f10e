package scanner_test

import (
	"testing"
	"unsafe"

	"github.com/mxgrid/mxgrid/scanner"
)

// within reports whether the n bytes at p lie inside b.
func within(p *byte, n int, b []byte) bool {
	start, end := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))+uintptr(len(b))
	return n > 0 && uintptr(unsafe.Pointer(p)) >= start && uintptr(unsafe.Pointer(p))+uintptr(n) <= end
}

// TestParseSharesRawWhenNothingIsDecoded: a body with nothing to decode
// is read as a slice of Raw, its text too, instead of a copy per message
// (11 KB of the 17 KB a 5 KB message cost to scan); a body that is
// decoded is not, and whatever the path the content and Text are the same.
func TestParseSharesRawWhenNothingIsDecoded(t *testing.T) {
	const head = "From: a@example.com\r\nSubject: s\r\n"
	tests := []struct {
		name      string
		raw       string
		partBytes int
		wantData  []string
		wantText  string
		wantShare bool
	}{
		{"no transfer encoding", head + "\r\nhello\r\nworld\r\n", 0, []string{"hello\r\nworld\r\n"}, "hello\r\nworld\r\n", true},
		{"8bit utf-8", head + "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nol\xc3\xa1\r\n", 0,
			[]string{"ol\xc3\xa1\r\n"}, "ol\xc3\xa1\r\n", true},
		{"cut at max_part_bytes", head + "\r\nhello world\r\n", 5, []string{"hello"}, "hello", true},
		{"quoted-printable", head + "Content-Transfer-Encoding: quoted-printable\r\n\r\nol=C3=A1\r\n", 0,
			[]string{"ol\xc3\xa1\r\n"}, "ol\xc3\xa1\r\n", false},
		{"latin-1", head + "Content-Type: text/plain; charset=iso-8859-1\r\n\r\nol\xe1\r\n", 0,
			[]string{"ol\xc3\xa1\r\n"}, "ol\xc3\xa1\r\n", false},
		{"two text parts, the first empty", head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\n\r\n\r\n--b\r\n\r\ntwo\r\n--b\r\nContent-Type: text/plain\r\n\r\nthree\r\n--b--\r\n", 0,
			[]string{"", "two", "three"}, "two\nthree", false},
		{"one text part of a multipart", head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\n\r\none\r\n--b\r\nContent-Type: application/zip\r\n\r\nPK\r\n--b--\r\n", 0,
			[]string{"one", "PK"}, "one", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := scanner.NewParser(nil)
			if tt.partBytes > 0 {
				l := scanner.DefaultLimits()
				l.MaxPartBytes = tt.partBytes
				p = p.WithLimits(l)
			}
			m := p.Parse([]byte(tt.raw))
			if len(m.Leaves) != len(tt.wantData) {
				t.Fatalf("%d leaves, want %d", len(m.Leaves), len(tt.wantData))
			}
			for i, l := range m.Leaves {
				if string(l.Data) != tt.wantData[i] {
					t.Errorf("leaf %d = %q, want %q", i, l.Data, tt.wantData[i])
				}
			}
			if m.Text != tt.wantText {
				t.Errorf("Text = %q, want %q", m.Text, tt.wantText)
			}
			data := m.Leaves[0].Data
			if got := within(unsafe.SliceData(data), len(data), m.Raw); got != tt.wantShare {
				t.Errorf("leaf in Raw = %v, want %v", got, tt.wantShare)
			}
			if got := within(unsafe.StringData(m.Text), len(m.Text), m.Raw); got != tt.wantShare {
				t.Errorf("Text in Raw = %v, want %v", got, tt.wantShare)
			}
			if tt.wantText != "two\nthree" && !within(unsafe.StringData(m.Text), len(m.Text), data) {
				t.Error("Text is a copy of the one text part's leaf")
			}
			if tt.wantShare && cap(data) != len(data) {
				t.Errorf("leaf cap %d, len %d: an append would write into Raw", cap(data), len(data))
			}
		})
	}
}
