package scanner

// ASCIILetters counts the ASCII letters of s and, of those, the upper-case
// ones (the share of capitals the model and the rules look at). Bytes of
// multi-byte characters are never ASCII, so s is read bytewise.
func ASCIILetters(s string) (letters, upper int) {
	// By table, without a branch: whether the next byte is a capital is
	// a coin toss to the branch predictor, and this reads whole texts.
	for i := 0; i < len(s); i++ {
		k := letterKind[s[i]]
		letters += int(k & 1)
		upper += int(k >> 1)
	}
	return letters, upper
}

// letterKind is 1 for a lower-case ASCII letter, 3 for an upper-case one.
var letterKind = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = 1
		t[c-'a'+'A'] = 3
	}
	return t
}()
