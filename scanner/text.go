package scanner

import (
	"encoding/binary"
	"math/bits"
)

// The checks read every message's whole text several times; these helpers
// read it eight bytes at a time (SWAR) where a byte loop would branch on
// every byte.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// IsASCII reports whether s holds only ASCII bytes.
func IsASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if binary.LittleEndian.Uint64([]byte(s[i:i+8]))&highs != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// ASCIILetters counts the ASCII letters of s and, of those, the upper-case
// ones (the share of capitals the model and the rules look at). Bytes of
// multi-byte characters are never ASCII, so s is read bytewise.
func ASCIILetters(s string) (letters, upper int) {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		l, u := asciiLetters8(binary.LittleEndian.Uint64([]byte(s[i : i+8])))
		letters += l
		upper += u
	}
	for ; i < len(s); i++ {
		if c := s[i] | 0x20; c >= 'a' && c <= 'z' {
			letters++
			if s[i]&0x20 == 0 {
				upper++
			}
		}
	}
	return letters, upper
}

// asciiLetters8 counts the ASCII letters and capitals among the eight
// bytes of x. A byte c is a letter when c|0x20 is in 'a'..'z' (no other
// byte is: '@', '[', '`' and '{' fall outside), a capital when it is a
// letter without the 0x20 bit. For a byte y below 0x80, y+(0x80-lo) has
// its high bit set when y >= lo, and y+(0x7f-hi) has it clear when y <= hi;
// neither sum carries into the next byte. Bytes with the high bit set are
// masked out.
func asciiLetters8(x uint64) (letters, upper int) {
	ascii := ^x & highs
	y := (x | 0x20*ones) &^ highs
	ge := y + (0x80-'a')*ones
	le := ^(y + (0x7f-'z')*ones)
	letter := ge & le & ascii
	capital := letter & ^(x << 2) // the 0x20 bit, moved up to 0x80
	return bits.OnesCount64(letter), bits.OnesCount64(capital)
}
