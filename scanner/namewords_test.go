package scanner

import (
	"math/rand"
	"regexp"
	"strings"
	"testing"
)

// bWordRegexp is what padBWords replaced, the reference it must match.
var bWordRegexp = regexp.MustCompile(`=\?[^?\s]+\?[bB]\?[A-Za-z0-9+/]*\?=`)

func regexpPadBWords(n string) string {
	return bWordRegexp.ReplaceAllStringFunc(n, func(w string) string {
		text := w[strings.LastIndexByte(w[:len(w)-2], '?')+1 : len(w)-2]
		return w[:len(w)-2] + strings.Repeat("=", (4-len(text)%4)%4) + "?="
	})
}

func checkPadBWordsAsRegexp(t *testing.T, n string) {
	t.Helper()
	if got, want := padBWords(n), regexpPadBWords(n); got != want {
		t.Fatalf("padBWords(%q) = %q, the regexp gives %q", n, got, want)
	}
}

var padBWordsSeeds = []string{
	"=?utf-8?B?UGF5UGFs?=",
	"=?utf-8?b?UGF5UGE?= x =?gb18030?B?zfXA9g==?= =?utf-8?Q?a?=",
	"=?=?utf-8?B?QQ?=?B?QQ?=",
	"=? utf-8?B?QQ?= =?utf-8\t?B?QQ?= =??B?QQ?= =?\xff?B?Q?=",
	"=?a?B?QUJD?==?a?B?QQ?=?=",
}

func TestPadBWordsAsRegexp(t *testing.T) {
	for _, s := range padBWordsSeeds {
		checkPadBWordsAsRegexp(t, s)
	}
	r := rand.New(rand.NewSource(1))
	alphabet := []string{"=", "?", "=?", "?=", "B", "b", "Q", "A", "+", "/", "u", " ", "\t", "\n", "\xff", "é", "=?u?B?", "?B?"}
	for range 100000 {
		var b strings.Builder
		for range r.Intn(16) {
			b.WriteString(alphabet[r.Intn(len(alphabet))])
		}
		checkPadBWordsAsRegexp(t, b.String())
	}
}

func FuzzPadBWordsAsRegexp(f *testing.F) {
	for _, s := range padBWordsSeeds {
		f.Add(s)
	}
	f.Fuzz(checkPadBWordsAsRegexp)
}

// BenchmarkDecodeNameWords: a quoted From name, or a part's file name,
// can be most of a megabyte of RFC 2047 words. Go's regexp engine took
// about 100 ms to pad the base64 of 900 KB of them.
func BenchmarkDecodeNameWords(b *testing.B) {
	n := strings.Repeat("=?utf-8?B?UGF5UGE?= ", 45000)
	b.SetBytes(int64(len(n)))
	for b.Loop() {
		if got := decodeNameWords(n); len(got) != 5*45000+1 {
			b.Fatalf("decoded %d bytes, want %d", len(got), 5*45000+1)
		}
	}
}
