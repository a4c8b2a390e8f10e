package scanner

import (
	"strings"
	"testing"
)

// asciiLettersReference and isASCIIReference are the byte loops the SWAR
// versions replace: their oracles.
func asciiLettersReference(s string) (letters, upper int) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			letters++
		} else if c >= 'A' && c <= 'Z' {
			letters++
			upper++
		}
	}
	return letters, upper
}

func asciiWordReference(s string) (n, digits int) {
	for ; n < len(s); n++ {
		c := s[n]
		if c >= '0' && c <= '9' {
			digits++
		} else if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			break
		}
	}
	return n, digits
}

func isASCIIReference(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzTextHelpersMatchReference: every byte value at every position of
// the eight-byte words and the tail counts as the byte loops count it.
func FuzzTextHelpersMatchReference(f *testing.F) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	f.Add(string(all))
	f.Add("Hello WORLD @[`{ az AZ 09 ÄÖÜ")
	f.Add(strings.Repeat("1XXXXXXXXX", 9))
	f.Add("abcdefgh12345678ABCDEFGHxyz09/:@[`{\x80\xffzz")
	// IsASCII reads 32 bytes at once: a byte past ASCII in each word of them.
	f.Add(strings.Repeat("a", 31) + "\xff" + strings.Repeat("b", 40))
	f.Add(strings.Repeat("a", 45) + "é" + strings.Repeat("c", 30))
	f.Fuzz(func(t *testing.T, s string) {
		for off := range min(len(s), 8) + 1 {
			s := s[off:]
			l, u, ascii := asciiLetters(s)
			wl, wu := asciiLettersReference(s)
			if l != wl || u != wu || ascii != isASCIIReference(s) {
				t.Fatalf("asciiLetters(%q) = %d, %d, %v; reference %d, %d, %v", s, l, u, ascii, wl, wu, isASCIIReference(s))
			}
			n, d := ASCIIWord(s)
			wn, wd := asciiWordReference(s)
			if n != wn || d != wd {
				t.Fatalf("ASCIIWord(%q) = %d, %d; reference %d, %d", s, n, d, wn, wd)
			}
			if IsASCII(s) != isASCIIReference(s) {
				t.Fatalf("IsASCII(%q) = %v", s, IsASCII(s))
			}
		}
	})
}

// benchText is the text of the message scripts/bench-smtp.sh sends.
var benchText = strings.Repeat("1XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\n", 64)

// BenchmarkTextScans runs each whole-text scan over benchText.
func BenchmarkTextScans(b *testing.B) {
	for _, bc := range []struct {
		name string
		scan func(string)
	}{
		{"ASCIILetters", func(s string) { ASCIILetters(s) }},
		{"IsASCII", func(s string) { IsASCII(s) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(benchText)))
			b.ReportAllocs()
			for b.Loop() {
				bc.scan(benchText)
			}
		})
	}
}

// BenchmarkASCIIWord walks the words of a text as the model's tokenizer
// does: the benchmark message's and prose.
func BenchmarkASCIIWord(b *testing.B) {
	for _, s := range []string{
		benchText,
		strings.Repeat("Dear customer, your account will be suspended within 24 hours unless you verify it.\n", 60),
	} {
		b.Run(s[:4], func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				for i := 0; i < len(s); {
					n, _ := ASCIIWord(s[i:])
					i += max(n, 1)
				}
			}
		})
	}
}
