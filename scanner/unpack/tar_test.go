package unpack

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzTarOctalMatchesParseUint: a tar header's 8-byte numeric field reads
// as strconv.ParseUint of it trimmed, base 8, did.
func FuzzTarOctalMatchesParseUint(f *testing.F) {
	for _, s := range []string{"0000644\x00", " 17 \x00\x00", "", "\x00\x00\x00\x00", "0o17", "+17", "1_7", "8", "77777777", "1 2"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, field []byte) {
		field = field[:min(len(field), 8)]
		got, ok := tarOctal(field)
		want, err := strconv.ParseUint(strings.Trim(string(field), " \x00"), 8, 32)
		if ok != (err == nil) || got != want {
			t.Fatalf("tarOctal(%q) = %d, %v; ParseUint %d, %v", field, got, ok, want, err)
		}
	})
}
