package model

import (
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/mxgrid/mxgrid/scanner"
)

// drainReference is what the extractor returned before its two-level
// bitset: the first maxFeatures distinct indices added, sorted.
func drainReference(bits uint8, hashes []uint64) []uint32 {
	seen := map[uint32]bool{}
	var out []uint32
	for _, h := range hashes {
		i := uint32(mix(h) >> (64 - bits))
		if !seen[i] && len(out) < maxFeatures {
			seen[i] = true
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// TestDrainMatchesReference: the bitsets give the reference's features
// for few and many features, at the smallest and the default table size,
// past the feature cap, and leave the scratch clean for the next message.
func TestDrainMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, bits := range []uint8{minBits, 16, 20} {
		x := NewExtractor(bits, 4)
		for _, n := range []int{0, 1, 5, 300, 1500, 20000, 3 * maxFeatures} {
			hashes := make([]uint64, n)
			for i := range hashes {
				hashes[i] = rng.Uint64()
				if i > 0 && rng.IntN(4) == 0 {
					hashes[i] = hashes[rng.IntN(i)] // repeats
				}
			}
			s := x.pool.Get().(*scratch)
			e := emitter{x: x, s: s}
			for _, h := range hashes {
				e.add(h)
			}
			s.drain()
			if want := drainReference(bits, hashes); !slices.Equal(s.feats, want) {
				t.Fatalf("bits %d, %d hashes: %d features, reference %d", bits, n, len(s.feats), len(want))
			}
			if slices.ContainsFunc(s.seen, func(w uint64) bool { return w != 0 }) ||
				slices.ContainsFunc(s.used, func(w uint64) bool { return w != 0 }) || s.n != 0 {
				t.Fatalf("bits %d, %d hashes: scratch not cleared", bits, n)
			}
			x.pool.Put(s)
		}
	}
}

// textTokensReference is textTokens as first written, with closures,
// unicode calls on every rune and a string per number token: the oracle
// for the table-driven version.
func (e *emitter) textTokensReference(text string, uni, pair uint64, limit int) {
	if text == "" {
		return
	}
	if !scanner.IsASCII(text) {
		// NFKC folds full-width letters, ligatures and other look-alike
		// compatibility forms spammers use to dodge word matches.
		text = norm.NFKC.String(text)
	}
	ring := e.s.ring
	for i := range ring {
		ring[i] = 0
	}
	n := 0
	emit := func(h uint64) {
		e.add(uni<<56 ^ h)
		if pair != 0 {
			for d := 1; d < len(ring) && d <= n; d++ {
				prev := ring[(n-d)%len(ring)]
				e.add(pair<<56 ^ prev*0x9e3779b97f4a7c15 ^ h ^ uint64(d)<<48)
			}
			ring[n%len(ring)] = h
		}
		n++
	}
	word := e.s.word[:0]
	letters, digits, runes := 0, 0, 0
	flush := func() {
		if runes == 0 {
			return
		}
		switch {
		case digits == runes && runes > 2:
			emit(hashString("#num" + strconv.Itoa(min(runes, 8))))
		case runes == 1 && !isCJK(word):
		case runes > maxTokenLen:
			emit(hashString("#long"))
		case digits > 0 && letters > 0 && runes > 6:
			emit(hashString("#mixed"))
		default:
			emit(hashBytes(word))
		}
		word = word[:0]
		letters, digits, runes = 0, 0, 0
	}
	for _, r := range text {
		if n >= limit {
			break
		}
		switch {
		case unicode.IsLetter(r):
			if isCJKRune(r) {
				// CJK has no spaces: each ideograph is a word and the pairs
				// give the bigrams.
				flush()
				word = utf8.AppendRune(word, r)
				runes = 1
				flush()
				continue
			}
			word = utf8.AppendRune(word, unicode.ToLower(r))
			letters++
			runes++
		case unicode.IsDigit(r):
			word = utf8.AppendRune(word, r)
			digits++
			runes++
		case r == '$' || r == '€' || r == '£':
			flush()
			emit(hashString("#money"))
		case r == '!':
			flush()
			emit(hashString("!"))
		default:
			flush()
		}
	}
	flush()
	e.s.word = word
}

// emitted returns the features f emits (on a table large enough that two
// different emissions hardly collide into the same set).
func emitted(x *Extractor, f func(e *emitter)) []uint32 {
	s := x.pool.Get().(*scratch)
	defer x.pool.Put(s)
	f(&emitter{x: x, s: s})
	s.drain()
	return slices.Clone(s.feats)
}

// FuzzTextTokensMatchesReference: for any text, in every namespace
// setting and limit the model uses, the tokenizer emits the reference's
// features.
func FuzzTextTokensMatchesReference(f *testing.F) {
	for _, s := range []string{"", "Hello World! Win $100 now 12345 abc123def", "ÜBER café ﬁne Ｆｕｌｌ 東京都 한국어 ١٢٣ €5 £3",
		"a\xffb\xc3 x\u200by", "1 22 333 4444 55555 666666 7777777 88888888 999999999", "ſKİ Σίσυφος ǅemal"} {
		f.Add(s, 3)
	}
	// Words about maxTokenLen long, in ASCII runs broken by other letters.
	f.Add("ABCDEFGHIJKLMNOPQRSTUVWX abcdefghijklmnopqrstuvwxY Abcdefgh12345678ijklmnop9 "+
		"abcdefghijklmnopqrstuvwü üabcdefghijklmnopqrstuvw abcdefghijkéLMNOPQRSTUVWXyz "+
		strings.Repeat("1"+strings.Repeat("X", 77)+"\r\n", 3), 300)
	x := NewExtractor(22, 4)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		limit = 1 + abs(limit)%300
		for _, ns := range [][2]uint64{{nsWord, nsPair}, {nsHidden, 0}} {
			got := emitted(x, func(e *emitter) { e.textTokens(text, scanner.IsASCII(text), ns[0], ns[1], limit) })
			want := emitted(x, func(e *emitter) { e.textTokensReference(text, ns[0], ns[1], limit) })
			if !slices.Equal(got, want) {
				t.Fatalf("%q limit %d: %d features, reference %d", text, limit, len(got), len(want))
			}
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// capsPercentReference is capsPercent as first written, on the texts
// joined, rune by rune.
func capsPercentReference(s string) int {
	var upper, letters int
	for _, r := range s {
		if r < 128 {
			if r >= 'A' && r <= 'Z' {
				upper++
				letters++
			} else if r >= 'a' && r <= 'z' {
				letters++
			}
		}
	}
	if letters < 10 {
		return 0
	}
	return upper * 100 / letters
}

func FuzzCapsPercentMatchesReference(f *testing.F) {
	f.Add("HELLO world", "ÄÖÜ ABC def\xff\xc3")
	f.Add("", "SHOUTING LOUDLY")
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := capsPercent(a, b), capsPercentReference(a+b); got != want {
			t.Fatalf("capsPercent(%q, %q) = %d, reference %d", a, b, got, want)
		}
	})
}

var listFooterMarkersReference = [...]string{
	"mailing list\n", "/mailman/listinfo", "to unsubscribe from this group",
	"yahoo! groups sponsor", "your use of yahoo! groups", "this sf.net email is sponsored",
	"this sf.net e-mail is sponsored", "to unsubscribe, e-mail:", "to unsubscribe, send",
}

// bodyTextReference is bodyText as first written, lower-casing into a
// new string.
func bodyTextReference(text string) string {
	const tail = 3000
	from := max(0, len(text)-tail)
	// ASCII-only lowering keeps byte offsets equal to text's (ToLower
	// may change lengths on invalid UTF-8).
	lower := lowerASCII(text[from:])
	cut := -1
	for _, mk := range listFooterMarkersReference {
		if i := strings.Index(lower, mk); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut < 0 {
		return text
	}
	// Back up to the separator line (____ or ----) that usually precedes
	// the footer, if it is close; else to the start of the marker's line.
	region := lower[max(0, cut-600):cut]
	if i := lastSeparator(region); i >= 0 {
		return text[:from+max(0, cut-600)+i]
	}
	if i := strings.LastIndexByte(lower[:cut], '\n'); i >= 0 {
		return text[:from+i]
	}
	return text[:from]
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func FuzzBodyTextMatchesReference(f *testing.F) {
	f.Add("Hello\n_______________\nXYZ Mailing List\nhttp://x/mailman/listinfo/y\n", 0)
	f.Add("text\nTo unsubscribe from this group, send an email to:\n", 2990)
	f.Add("a\xffB\nYour use of Yahoo! Groups is subject to", 5000)
	// Markers' first bytes and heads before a marker, and one cut short.
	f.Add("This is the thing you told me: to unsubscribe, e-mai\nyahoo! groups\nTo Unsubscribe, send mail\nthis sf.n", 0)
	f.Add("To unsubscribe from this group\n", 0)
	f.Fuzz(func(t *testing.T, text string, pad int) {
		text = strings.Repeat("Some text\n", min(abs(pad)%400, 400)) + text
		got, _ := bodyText(text, nil)
		if want := bodyTextReference(text); got != want {
			t.Fatalf("bodyText(%q) = %q, reference %q", text, got, want)
		}
	})
}

// charsReference is chars as first written, adding every 4-gram.
func (e *emitter) charsReference(text string, limit int) {
	var win uint32
	n := 0
	space := true
	for i := 0; i < len(text) && i < limit; i++ {
		c := text[i]
		switch {
		case c <= ' ':
			if space {
				continue
			}
			c, space = ' ', true
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
			space = false
		default:
			space = false
		}
		win = win<<8 | uint32(c)
		if n++; n >= 4 {
			e.add(nsChar<<56 ^ uint64(win))
		}
	}
}

func FuzzCharsMatchesReference(f *testing.F) {
	f.Add("====  ====\t\n\x00\x00 xxxxxXXXX aaaa", 4000)
	f.Add("1"+strings.Repeat("X", 78)+"\r\n", 30)
	f.Add("\x01\x02\x03\x04\x05 ab", 3)
	// Eight bytes at a time, runs of one byte, words and white space at
	// every alignment, and the limit inside a word of eight.
	f.Add(strings.Repeat("1"+strings.Repeat("X", 77)+"\r\n", 6), 4000)
	f.Add(strings.Repeat("The Quick BROWN fox\tjumps  over 12 lazy dogs ÄÖÜ\xff@[`{ ", 7), 301)
	f.Add("abc"+strings.Repeat("a", 40)+"aaaAAAAAAAAbbbbbbbbbbbbbb\x00bbbbbbbb", 70)
	f.Add("abcdefgabcxxxxxxxxxyz", 100) // a run starting inside the window
	x := NewExtractor(22, 4)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		limit = abs(limit) % 5000
		got := emitted(x, func(e *emitter) { e.chars(text, limit) })
		want := emitted(x, func(e *emitter) { e.charsReference(text, limit) })
		if !slices.Equal(got, want) {
			t.Fatalf("%q limit %d: %d features, reference %d", text, limit, len(got), len(want))
		}
	})
}

// TestWordHelpersMatchByteLoops: lower8 and spaceOrControl8 treat every
// byte value at every position of a word of eight as chars' byte loop
// does, whatever the bytes around it.
func TestWordHelpersMatchByteLoops(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for c := range 256 {
		for pos := range 8 {
			for range 8 {
				var w [8]byte
				for k := range w {
					w[k] = byte(rng.Uint32())
				}
				w[pos] = byte(c)
				x := binary.LittleEndian.Uint64(w[:])
				lower, ws := lower8(x), spaceOrControl8(x)
				for k, b := range w {
					want := b
					if b >= 'A' && b <= 'Z' {
						want += 'a' - 'A'
					}
					if got := byte(lower >> (8 * k)); got != want {
						t.Fatalf("lower8(% x) byte %d = %#x, want %#x", w, k, got, want)
					}
					if got := ws>>(8*k)&0xff == 0x80; got != (b <= ' ') || ws>>(8*k)&0x7f != 0 {
						t.Fatalf("spaceOrControl8(% x) byte %d = %#x", w, k, ws>>(8*k)&0xff)
					}
				}
			}
		}
	}
}

// TestTextTokensMatchReferenceAcrossPieces: a text longer than one piece
// of normalization (normPiece), of runs NFKC changes (ligatures,
// full-width letters, U+FDFA spelled out in four words, decomposed
// accents, runs of combining marks past the stream-safe 30, Hangul
// jamo that compose) among ASCII words, numbers and bytes that are no
// UTF-8, gives the reference's features at every limit, so that no word
// is cut or joined where one piece ends and the next starts.
func TestTextTokensMatchReferenceAcrossPieces(t *testing.T) {
	pieces := []string{"word", "Ab12", " ", "  ", "\n", "$", "!", "ﬁne", "Ｆｕｌｌ", "\ufdfa", "e\u0301", "\u0301",
		strings.Repeat("\u0301", 40), "\u1100\u1161", "東京", "١٢٣", "\xff", "\xc3", "x\u200by", "12345678901",
		strings.Repeat("a", 30), "ǅ", "\u00a0", "ſ", "€", "\u0f73", "\u3300",
		"\x80", "\x82\x82\x82\x82\x82", "\xe2\x82"}
	rng := rand.New(rand.NewPCG(5, 6))
	x := NewExtractor(22, 4)
	for run := range 40 {
		var b strings.Builder
		for b.Len() < 3*normPiece+rng.IntN(normPiece) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		text := b.String()
		for _, limit := range []int{1, 300, maxWords, 1 << 30} {
			got := emitted(x, func(e *emitter) { e.textTokens(text, false, nsWord, nsPair, limit) })
			want := emitted(x, func(e *emitter) { e.textTokensReference(text, nsWord, nsPair, limit) })
			if !slices.Equal(got, want) {
				t.Fatalf("run %d, limit %d: %d features, reference %d", run, limit, len(got), len(want))
			}
		}
	}
}

// TestNormalizationStopsAtTheWordLimit: only the words up to the limit
// are used, so only the text they come from is normalized. Normalized
// whole, a megabyte of U+FDFA (which NFKC spells out as 18 letters and
// spaces) allocated 69 MB and took 0.4 s per text for its first 3,000
// words: a message's text, HTML text and subject each.
func TestNormalizationStopsAtTheWordLimit(t *testing.T) {
	text := strings.Repeat("\ufdfa", 1<<20/3)
	x := NewExtractor(22, 4)
	s := x.pool.Get().(*scratch)
	defer x.pool.Put(s)
	e := &emitter{x: x, s: s}
	// Once first, for what the first use of the tables allocates.
	e.textTokens(text, false, nsWord, nsPair, maxWords)
	s.drain()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	e.textTokens(text, false, nsWord, nsPair, maxWords)
	runtime.ReadMemStats(&after)
	s.drain()
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("tokenizing %d bytes of U+FDFA up to %d words allocated %d bytes, want at most 1 MiB", len(text), maxWords, got)
	}
}
