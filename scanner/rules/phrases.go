package rules

import (
	"bufio"
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/text/unicode/norm"
)

// phraseSet finds listed phrases in text as whole words, with case and
// accents folded. It hashes each word once and looks a phrase up only from
// a word that starts one, so a long text costs about one map lookup per
// word whatever the number of phrases.
type phraseSet struct {
	starts   map[uint64]bool // hash of the first word of some phrase
	prefixes map[uint64]bool // hash of the first two or more words of some phrase
	phrases  map[uint64]bool // hash of a whole phrase (chained word hashes)
	longest  int             // words in the longest phrase
	// startBits, prefixBits and phraseBits hold a bit per hash of the
	// maps, indexed by its top bits: most words start no phrase, and a
	// clear bit says so without a map lookup.
	startBits, prefixBits, phraseBits hashBits
}

// hashBits is a one-hash Bloom filter over 64-bit hashes.
type hashBits [1 << 8]uint64

func (b *hashBits) add(h uint64)      { b[h>>56] |= 1 << (h >> 50 & 63) }
func (b *hashBits) has(h uint64) bool { return b[h>>56]&(1<<(h>>50&63)) != 0 }

var phraseSeed = maphash.MakeSeed()

func wordHash(w string) uint64 { return maphash.String(phraseSeed, w) }

// chain extends a phrase hash by one word.
func chain(h, w uint64) uint64 { return (h^w)*0x100000001b3 + 0x9e3779b97f4a7c15 }

// parsePhrases reads a list: one phrase per line, # comments.
func parsePhrases(list string) *phraseSet {
	ps := &phraseSet{starts: map[uint64]bool{}, prefixes: map[uint64]bool{}, phrases: map[uint64]bool{}}
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		words := foldWords(line, 0)
		if len(words) == 0 {
			continue
		}
		h := wordHash(words[0])
		ps.starts[h] = true
		ps.startBits.add(h)
		for _, w := range words[1:] {
			h = chain(h, wordHash(w))
			ps.prefixes[h] = true
			ps.prefixBits.add(h)
		}
		ps.phrases[h] = true
		ps.phraseBits.add(h)
		ps.longest = max(ps.longest, len(words))
	}
	return ps
}

// find returns the first listed phrase in folded text (see fold), or "".
func (ps *phraseSet) find(folded string) string {
	var out [1]string
	findFirst(folded, &ps.startBits, []*phraseSet{ps}, out[:])
	return out[0]
}

// phraseSets are sets looked for together, in one pass over a text.
type phraseSets struct {
	sets []*phraseSet
	// startBits is the union of the sets' own: a word that starts no
	// phrase of any set costs one bit test, however many sets there are.
	startBits hashBits
}

func newPhraseSets(sets ...*phraseSet) *phraseSets {
	ss := &phraseSets{sets: sets}
	for _, ps := range sets {
		for i, w := range ps.startBits {
			ss.startBits[i] |= w
		}
	}
	return ss
}

// find sets out[k] to the first phrase of the k-th set in folded text.
func (ss *phraseSets) find(folded string, out []string) {
	findFirst(folded, &ss.startBits, ss.sets, out)
}

// findFirst sets out[k] to the first phrase of sets[k] in folded text, or
// "", reading and hashing each word once for all the sets. starts holds
// at least every set's start bits.
func findFirst(folded string, starts *hashBits, sets []*phraseSet, out []string) {
	left := len(sets)
	for i := 0; i < len(folded) && left > 0; {
		end := wordEnd(folded, i)
		h := wordHash(folded[i:end])
		if !starts.has(h) {
			i = end + 1
			continue
		}
		for k, ps := range sets {
			if out[k] == "" && ps.startBits.has(h) && ps.starts[h] {
				if p := ps.phraseAt(folded, i, end, h); p != "" {
					out[k] = p
					left--
				}
			}
		}
		i = end + 1
	}
}

// phraseAt returns the shortest listed phrase starting with the word
// folded[i:end], whose hash is h, or "". It reads on only while the words
// so far begin some phrase: common words ("your", "if", "a") start
// phrases, and each would otherwise cost the longest phrase's length in
// word hashes.
func (ps *phraseSet) phraseAt(folded string, i, end int, h uint64) string {
	j := end
	for n := 1; n <= ps.longest; n++ {
		if n > 1 {
			if j >= len(folded) {
				break
			}
			k := wordEnd(folded, j+1)
			h = chain(h, wordHash(folded[j+1:k]))
			j = k
			if !ps.prefixBits.has(h) || !ps.prefixes[h] {
				break
			}
		}
		if ps.phraseBits.has(h) && ps.phrases[h] {
			return folded[i:j]
		}
	}
	return ""
}

func wordEnd(s string, i int) int {
	if k := strings.IndexByte(s[i:], ' '); k >= 0 {
		return i + k
	}
	return len(s)
}

// foldWords splits s into folded words (for the lists, not hot).
func foldWords(s string, _ int) []string { return strings.Fields(fold(s, 0)) }

// fold lower-cases s, strips accents from Latin letters and turns every
// run of other characters (punctuation, apostrophes, hyphens, spaces) into
// one space, so phrases match as whole words: "Última notificação!" ->
// "ultima notificacao". Each Chinese or Japanese character is a word of
// its own (see unspacedScript). At most limit bytes of s are read (0: all).
func fold(s string, limit int) string { return foldParts(limit, s) }

// foldParts folds the parts as if joined by spaces, reading at most limit
// bytes of them in all (0: all), without building the joined string: a
// message's text can be megabytes, the rules read its first kilobytes.
func foldParts(limit int, parts ...string) string {
	b := appendFold(nil, limit, parts...)
	// b is referenced nowhere else: the string may have its bytes, as a
	// strings.Builder's does.
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// appendFold appends to dst what foldParts returns, so that a caller
// done with the folded text before it returns can lend it a buffer.
func appendFold(dst []byte, limit int, parts ...string) []byte {
	size := 0
	for _, p := range parts {
		size += len(p) + 1
	}
	if limit > 0 {
		size = min(size, limit)
	}
	b := slices.Grow(dst, size)
	start := len(b)
	space := true
	read := 0
	// ASCII goes through run, one append per run of it rather than one
	// per byte, eight bytes at a time where fold8s can and else by table;
	// the rest through the unicode package.
	var run [256]byte
	for _, s := range parts {
		if limit > 0 && read >= limit {
			break
		}
		if limit > 0 && len(s) > limit-read {
			s = s[:limit-read]
		}
		read += len(s)
		if !space {
			b = append(b, ' ')
			space = true
		}
		for i := 0; i < len(s); {
			if s[i] < utf8.RuneSelf {
				n := 0
				for i < len(s) && s[i] < utf8.RuneSelf && n < len(run) {
					k, sp := fold8s(run[n:], s[i:], space)
					n, i, space = n+k, i+k, sp
					// Byte by byte past the byte fold8s stopped at, or,
					// where it folded none, to the next word of eight:
					// retrying at every byte would cost more than it
					// saves in runs of separators.
					step := 1
					if k == 0 {
						step = 8
					}
					for end := min(i+step, len(s)); i < end && s[i] < utf8.RuneSelf && n < len(run); i++ {
						if f := asciiFold[s[i]]; f != 0 {
							run[n] = f
							n++
							space = false
						} else if !space {
							run[n] = ' '
							n++
							space = true
						}
					}
				}
				b = append(b, run[:n]...)
				continue
			}
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			switch {
			case unspacedScript(r):
				if !space {
					b = append(b, ' ')
				}
				b = append(utf8.AppendRune(b, r), ' ')
				space = true
			case unicode.IsLetter(r) || unicode.IsDigit(r):
				if base, ok := latinBase[r]; ok {
					b = append(b, base...)
				} else {
					b = utf8.AppendRune(b, unicode.ToLower(r))
				}
				space = false
			case unicode.Is(unicode.Mn, r):
				// A combining accent written apart from its letter.
			default:
				if !space {
					b = append(b, ' ')
					space = true
				}
			}
		}
	}
	if len(b) > start && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// unspacedScript: r is written without spaces between words (Chinese,
// Japanese kana and kanji), so fold makes each character a word of its
// own, in a list's phrase and in the text alike: "24時間以内に" holds the
// phrase "24時間以内" as "24 時 間 以 内" followed by "に", where read as
// one word it could match no phrase at all.
func unspacedScript(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana)
}

// fold8s folds s into dst eight bytes at a time as appendFold's byte
// loop would, given whether the text folded so far ends in a space, for
// as long as it can, and returns how many bytes it folded (as many as it
// wrote) and whether they end in a space. It stops at a byte outside
// ASCII and at a separator following a separator or that space: the byte
// loop drops such a one, and eight bytes would not stay eight. That
// leaves it single spaces between words, most of prose. dst may be
// written past what it returns.
func fold8s(dst []byte, s string, space bool) (n int, last bool) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	after := uint64(0) // 0x80 when a separator would follow one
	if space {
		after = 0x80
	}
	for end := min(len(s), len(dst)); n+8 <= end; n += 8 {
		x := binary.LittleEndian.Uint64([]byte(s[n : n+8]))
		// With x ASCII, y's letters are 'a'..'z' and nothing else is
		// (but y's digits are not x's: 0x10|0x20 is '0'). For a byte c
		// below 0x80, c+(0x80-lo) has its high bit set when c >= lo and
		// c+(0x7f-hi) has it clear when c <= hi, and neither carries
		// into the next byte (as in scanner's alnum8).
		y := x | 0x20*ones
		word := ((y+(0x80-'a')*ones)&^(y+(0x7f-'z')*ones) | (x+(0x80-'0')*ones)&^(x+(0x7f-'9')*ones)) & highs
		sep := word ^ highs
		// Words' bytes with the lower-case bit (digits have it), the
		// separators ' ': the bit alone.
		binary.LittleEndian.PutUint64(dst[n:], x&(word-word>>7)|0x20*ones)
		if stop := x&highs | sep&(sep<<8|after); stop != 0 {
			// The bytes before the first to stop at are folded (a
			// byte's sums carry only into the bytes after it).
			d := bits.TrailingZeros64(stop) / 8
			if d > 0 {
				after = sep >> (8*d - 8) & 0x80
			}
			return n + d, after != 0
		}
		after = sep >> 56
	}
	return n, after != 0
}

// asciiFold maps ASCII letters and digits to their folded form and
// everything else to 0, a word break.
var asciiFold = func() (t [utf8.RuneSelf]byte) {
	for c := range byte(utf8.RuneSelf) {
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			t[c] = c
		case c >= 'A' && c <= 'Z':
			t[c] = c + 'a' - 'A'
		}
	}
	return t
}()

// latinBase maps the accented Latin letters (Latin-1 and Latin Extended-A)
// to their lower-case base letters ("ß" to "ss"), and the fullwidth Latin
// letters and digits to theirs: "ｐａｓｓｗｏｒｄ" shows the word password.
var latinBase = func() map[rune]string {
	m := map[rune]string{'ß': "ss", 'æ': "ae", 'Æ': "ae", 'œ': "oe", 'Œ': "oe", 'ø': "o", 'Ø': "o", 'đ': "d", 'Đ': "d", 'ł': "l", 'Ł': "l"}
	for r := rune(0xC0); r <= 0x17F; r++ {
		if _, ok := m[r]; ok || !unicode.IsLetter(r) {
			continue
		}
		var base []rune
		for _, d := range norm.NFD.String(string(unicode.ToLower(r))) {
			if !unicode.Is(unicode.Mn, d) {
				base = append(base, d)
			}
		}
		if len(base) == 1 && base[0] < utf8.RuneSelf {
			m[r] = string(base)
		}
	}
	for r := rune('０'); r <= 'ｚ'; r++ {
		if c := byte(r - '０' + '0'); unicode.IsLetter(r) || unicode.IsDigit(r) {
			m[r] = string(rune(asciiFold[c]))
		}
	}
	return m
}()
