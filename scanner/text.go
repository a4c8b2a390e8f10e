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
	// Four words of eight at a time: one branch per 32 bytes.
	for ; i+32 <= len(s); i += 32 {
		w := binary.LittleEndian.Uint64([]byte(s[i:i+8])) | binary.LittleEndian.Uint64([]byte(s[i+8:i+16])) |
			binary.LittleEndian.Uint64([]byte(s[i+16:i+24])) | binary.LittleEndian.Uint64([]byte(s[i+24:i+32]))
		if w&highs != 0 {
			return false
		}
	}
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
	letters, upper, _ = asciiLetters(s)
	return letters, upper
}

// asciiLetters is ASCIILetters, and IsASCII(s) from the same reads.
func asciiLetters(s string) (letters, upper int, ascii bool) {
	i := 0
	var or uint64 // the words read, or-ed: a high bit set is a byte past ASCII
	// Four words of eight at a time: their marks, all in bit 7 of a byte,
	// shifted apart into bits 7 to 4, take one count each.
	for ; i+32 <= len(s); i += 32 {
		x0, x1 := binary.LittleEndian.Uint64([]byte(s[i:i+8])), binary.LittleEndian.Uint64([]byte(s[i+8:i+16]))
		x2, x3 := binary.LittleEndian.Uint64([]byte(s[i+16:i+24])), binary.LittleEndian.Uint64([]byte(s[i+24:i+32]))
		or |= x0 | x1 | x2 | x3
		l0, u0 := letters8(x0)
		l1, u1 := letters8(x1)
		l2, u2 := letters8(x2)
		l3, u3 := letters8(x3)
		letters += bits.OnesCount64(l0 | l1>>1 | l2>>2 | l3>>3)
		upper += bits.OnesCount64(u0 | u1>>1 | u2>>2 | u3>>3)
	}
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64([]byte(s[i : i+8]))
		or |= x
		l, u := letters8(x)
		letters += bits.OnesCount64(l)
		upper += bits.OnesCount64(u)
	}
	for ; i < len(s); i++ {
		or |= uint64(s[i])
		if c := s[i] | 0x20; c >= 'a' && c <= 'z' {
			letters++
			if s[i]&0x20 == 0 {
				upper++
			}
		}
	}
	return letters, upper, or&highs == 0
}

// ASCIIWord returns the length of the run of ASCII letters and digits
// that starts s, and how many of them are digits.
func ASCIIWord(s string) (n, digits int) {
	if len(s) == 0 || wordByte[s[0]] == 0 {
		// Between words the caller asks at every byte.
		return 0, 0
	}
	for n < len(s) {
		// Eight bytes at a time while eight remain, the rest by table:
		// one step finds the end of a short word without a branch on
		// every byte, which mispredicts where the word ends.
		if n+8 <= len(s) {
			letter, digit := alnum8(binary.LittleEndian.Uint64([]byte(s[n : n+8])))
			if word := letter | digit; word != highs {
				// The first byte that is neither ends the run.
				k := bits.TrailingZeros64(^word&highs) / 8
				return n + k, digits + bits.OnesCount64(digit&(1<<(8*k)-1))
			}
			digits += bits.OnesCount64(digit)
			n += 8
			continue
		}
		k := wordByte[s[n]]
		if k == 0 {
			break
		}
		digits += int(k >> 1)
		n++
	}
	return n, digits
}

// wordByte is 1 for an ASCII letter, 2 for a digit, else 0.
var wordByte = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			t[c] = 1
		case c >= '0' && c <= '9':
			t[c] = 2
		}
	}
	return t
}()

// letters8 marks, with the high bit of each of the eight bytes of x, the
// ASCII letters and, apart, the capitals.
func letters8(x uint64) (letter, capital uint64) {
	letter, _ = alnum8(x)
	return letter, letter &^ (x << 2) // the 0x20 bit, moved up to 0x80
}

// alnum8 marks, with the high bit of each of the eight bytes of x, the
// ASCII letters and the digits. A byte c is a letter when c|0x20 is in
// 'a'..'z' (no other byte is: '@', '[', '`' and '{' fall outside), a
// capital when it is a letter without the 0x20 bit. For a byte y below
// 0x80, y+(0x80-lo) has its high bit set when y >= lo, and y+(0x7f-hi) has
// it clear when y <= hi; neither sum carries into the next byte. Bytes
// with the high bit set are neither.
func alnum8(x uint64) (letter, digit uint64) {
	ascii := ^x & highs
	y := (x | 0x20*ones) &^ highs
	letter = (y + (0x80-'a')*ones) &^ (y + (0x7f-'z')*ones) & ascii
	y = x &^ highs
	digit = (y + (0x80-'0')*ones) &^ (y + (0x7f-'9')*ones) & ascii
	return letter, digit
}
