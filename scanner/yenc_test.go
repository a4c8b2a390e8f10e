package scanner

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// yencode is the reference encoder (yEnc 1.3, single part): each byte plus
// 42, NUL, LF, CR and '=' escaped as '=' and the byte plus 64.
func yencode(name string, data []byte) string {
	var s strings.Builder
	fmt.Fprintf(&s, "=ybegin line=128 size=%d name=%s\r\n", len(data), name)
	col := 0
	for _, b := range data {
		c := b + 42
		switch c {
		case 0, '\n', '\r', '=':
			s.WriteByte('=')
			c += 64
			col++
		}
		s.WriteByte(c)
		if col++; col >= 128 {
			s.WriteString("\r\n")
			col = 0
		}
	}
	if col > 0 {
		s.WriteString("\r\n")
	}
	fmt.Fprintf(&s, "=yend size=%d\r\n", len(data))
	return s.String()
}

func TestYencFiles(t *testing.T) {
	// Every byte value, so every escape is used.
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	pe := append([]byte("MZ"), bytes.Repeat([]byte{0, 1, 2, 0xff}, 40)...)
	testTextFiles(t, yencFiles, []textFilesCase{
		{"one file between text", "see below\r\n" + yencode("invoice.exe", pe) + "regards\r\n", 1 << 20, []embeddedFile{{"invoice.exe", pe}}},
		{"every byte value, LF only", strings.ReplaceAll(yencode("all.bin", all), "\r\n", "\n"), 1 << 20, []embeddedFile{{"all.bin", all}}},
		{"two files", yencode("a.js", []byte("var x;")) + yencode("b.txt", []byte("hi")), 1 << 20,
			[]embeddedFile{{"a.js", []byte("var x;")}, {"b.txt", []byte("hi")}}},
		{"cut at the budget", yencode("big.bin", pe), 10, []embeddedFile{{"big.bin", pe[:10]}}},
		{"no end line", strings.TrimSuffix(yencode("x.exe", pe), fmt.Sprintf("=yend size=%d\r\n", len(pe))), 1 << 20, []embeddedFile{{"x.exe", pe}}},
		// Thunderbird opens only single-part yEnc 1.x with this header.
		{"multipart yEnc", "=ybegin part=1 line=128 size=3 name=x.exe\r\n+++\r\n=yend size=3\r\n", 1 << 20, nil},
		{"prose that says ybegin", "=ybegin is how yEnc starts\r\n", 1 << 20, nil},
	})
}

// FuzzYencFiles: any text decodes within the budget, never more files than
// the bound, and an encoded file round-trips.
func FuzzYencFiles(f *testing.F) {
	f.Add([]byte("=ybegin line=128 size=3 name=a.exe\n+++\n=yend size=3\n"), []byte("payload"), 100)
	f.Add([]byte("=ybegin line= size= name=x\n=\n"), []byte{}, 5)
	fuzzTextFiles(f, yencFiles, yencode)
}
