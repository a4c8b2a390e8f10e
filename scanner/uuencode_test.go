package scanner

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/internal/testenv"
)

// uuencode is the reference encoder (POSIX uuencode's format).
func uuencode(name string, data []byte) string {
	enc := func(b byte) byte {
		if b == 0 {
			return '`'
		}
		return b + ' '
	}
	var s strings.Builder
	s.WriteString("begin 644 " + name + "\r\n")
	for len(data) > 0 {
		n := min(len(data), 45)
		chunk := append(bytes.Clone(data[:n]), 0, 0)
		s.WriteByte(enc(byte(n)))
		for i := 0; i < n; i += 3 {
			a, b, c := chunk[i], chunk[i+1], chunk[i+2]
			s.Write([]byte{enc(a >> 2), enc((a<<4 | b>>4) & 63), enc((b<<2 | c>>6) & 63), enc(c & 63)})
		}
		s.WriteString("\r\n")
		data = data[n:]
	}
	s.WriteString("`\r\nend\r\n")
	return s.String()
}

func TestUUFiles(t *testing.T) {
	pe := append([]byte("MZ"), bytes.Repeat([]byte{0, 1, 2, 0xff}, 40)...)
	testTextFiles(t, uuFiles, []textFilesCase{
		{"one file between text", "see below\r\n" + uuencode("invoice.exe", pe) + "regards\r\n", 1 << 20, []embeddedFile{{"invoice.exe", pe}}},
		{"two files, LF only", strings.ReplaceAll(uuencode("a.js", []byte("var x;"))+uuencode("b.txt", []byte("hi")), "\r\n", "\n"), 1 << 20,
			[]embeddedFile{{"a.js", []byte("var x;")}, {"b.txt", []byte("hi")}}},
		{"cut at the budget", uuencode("big.bin", pe), 10, []embeddedFile{{"big.bin", pe[:10]}}},
		{"no end line", "begin 644 x.exe\r\n" + strings.Split(uuencode("x.exe", pe), "\r\n")[1] + "\r\n", 1 << 20, []embeddedFile{{"x.exe", pe[:45]}}},
		{"prose that says begin", "begin the meeting at 10\r\nbegin 644\r\n", 1 << 20, nil},
		{"no name", "begin 644 \r\n" + strings.SplitN(uuencode("x", pe), "\r\n", 2)[1], 1 << 20, []embeddedFile{{"", pe}}},
	})
}

// FuzzUUFiles: any text decodes within the budget, never more files than
// the bound, and an encoded file round-trips.
func FuzzUUFiles(f *testing.F) {
	f.Add([]byte("begin 644 a.exe\n#86)C\n`\nend\n"), []byte("payload"), 100)
	f.Add([]byte("begin 644 x\n\xff\xff\n"), []byte{}, 5)
	fuzzTextFiles(f, uuFiles, uuencode)
}

// TestTextFilesPastTheLimit: Thunderbird shows every file encoded in a
// text part; the walk decodes maxTextFiles of each encoding, and a message
// with more is past the parser's limits (MIME_TOO_COMPLEX, which tags),
// not clean: eight harmless files ahead of an invoice.exe hid it.
func TestTextFilesPastTheLimit(t *testing.T) {
	pe := append([]byte("MZ"), bytes.Repeat([]byte{0, 1, 2, 0xff}, 40)...)
	for _, tt := range []struct {
		name   string
		encode func(name string, data []byte) string
	}{
		{"uuencode", uuencode},
		{"yEnc", yencode},
		{"BinHex", testenv.BinHex},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{maxTextFiles, maxTextFiles + 1} {
				body := strings.Repeat(tt.encode("notes.txt", []byte("hello")), n-1) + tt.encode("invoice.exe", pe)
				m := Parse(append(crlf("From: a@example.org\nSubject: files\n\n"), body...))
				files, tooComplex := 0, false
				for _, l := range m.Leaves {
					if l.Path != "" {
						files++
					}
				}
				for _, s := range m.Symbols {
					tooComplex = tooComplex || s.Name == SymbolMIMETooComplex
				}
				if files != min(n, maxTextFiles) || tooComplex != (n > maxTextFiles) {
					t.Errorf("%d files: %d decoded, MIME_TOO_COMPLEX %v; want %d, %v", n, files, tooComplex, min(n, maxTextFiles), n > maxTextFiles)
				}
			}
		})
	}
}

// uuBeginPattern and yencBeginPattern are the lines uuBeginName and
// yencBeginName read by hand, as regular expressions.
var (
	uuBeginPattern   = regexp.MustCompile(`^begin [0-7]{3,4} ([^\r\n]*?)\r?$`)
	yencBeginPattern = regexp.MustCompile(`^=ybegin line=[0-9]* size=[0-9]* name=([^\r\n]+?)\r?$`)
)

// FuzzBeginLinesMatchPatterns: for any line, uuBeginName and
// yencBeginName take what their patterns capture, or refuse it as they do.
func FuzzBeginLinesMatchPatterns(f *testing.F) {
	for _, s := range []string{"begin 644 a.exe", "begin 644 a.exe\r", "begin 0644 \r", "begin 644 ", "begin 64 a", "begin 06444 a",
		"begin 648 a", "begin 644 a\rb", "begin 644 a\nb", "begin 644 a\r\r", "begin  644 a", "begin 644\ta", "begin 644 \xff\xfe",
		"=ybegin line=128 size=10 name=a.exe", "=ybegin line= size= name=a\r", "=ybegin line=1 size=1 name=\r", "=ybegin line=1 size=1 name=",
		"=ybegin line=1 size=1 name=a\r\r", "=ybegin line=x size=1 name=a", "=ybegin line=1  size=1 name=a", "=ybegin line=1 size=1 name=a\nb"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, tt := range []struct {
			read    func([]byte) ([]byte, bool)
			pattern *regexp.Regexp
		}{{uuBeginName, uuBeginPattern}, {yencBeginName, yencBeginPattern}} {
			name, ok := tt.read(line)
			m := tt.pattern.FindSubmatch(line)
			if ok != (m != nil) || ok && !bytes.Equal(name, m[1]) {
				t.Fatalf("%q: %q %v, the pattern %q", line, name, ok, m)
			}
		}
	})
}

// BenchmarkBeginLineOf4MB: a text part's line that starts as a
// uuencoded or yEnc file and runs on for megabytes is read once, at the
// speed of a byte search. Go's regexp read it at 30 ns a byte.
func BenchmarkBeginLineOf4MB(b *testing.B) {
	for _, tt := range []struct {
		name string
		read func([]byte) ([]byte, bool)
		line []byte
	}{
		{"uuencode", uuBeginName, append([]byte("begin 644 "), bytes.Repeat([]byte("a"), 4<<20)...)},
		{"yEnc", yencBeginName, append([]byte("=ybegin line=128 size=1 name="), bytes.Repeat([]byte("a"), 4<<20)...)},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.SetBytes(int64(len(tt.line)))
			for b.Loop() {
				if _, ok := tt.read(tt.line); !ok {
					b.Fatal("not read as a first line")
				}
			}
		})
	}
}
