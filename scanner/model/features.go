package model

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/mxgrid/mxgrid/scanner"
)

// The model sees content only. Every feature below comes from what the
// author of a message wrote: subject, body text (plain and visible HTML),
// hidden HTML text, link targets, the MIME shape, the From display name.
// Nothing comes from delivery-path headers (Received, Return-Path,
// Message-ID, To/Cc, List-*, ...): in a public corpus those identify the
// mailboxes it was collected in, not spam, and a model leaning on them
// fails on anyone else's mail.

// Feature namespaces keep, say, the word "free" in a subject apart from
// the word "free" in a body.
const (
	nsWord = iota + 1
	nsPair
	nsSubject
	nsSubjectPair
	nsHidden
	nsFromName
	nsURLDomain
	nsURLHost
	nsURLTLD
	nsMIME
	nsShape
	nsAnchor
	nsChar
)

// FeatureVersion changes whenever the extraction below changes in a way
// that makes older models meaningless; Load refuses a model trained with
// another version. Version 2: the text/HTML size and HTML-only shape
// features were dropped while the version stayed 1, so a version 1 file
// may expect features this build no longer emits.
const FeatureVersion = 2

const (
	maxWords     = 3000 // words of body text used; the rest adds little but time
	maxTokenLen  = 24
	maxChars     = 4000 // bytes of text turned into character 4-grams
	normPiece    = 4096 // bytes of text normalized at a time
	maxFeatures  = 1 << 15
	wordHashSeed = 0xcbf29ce484222325
)

// Extractor turns messages into sets of hashed feature indices. It is safe
// for concurrent use.
type Extractor struct {
	bits   uint8
	window int
	pool   sync.Pool // *scratch
}

type scratch struct {
	// seen is a bitset over the hashed space and used a bitset over seen's
	// words, marking those not zero: the features are read off in order
	// by visiting only those words, which also clears both. Scanning all
	// of seen (2^bits/64 words) or sorting the features took a third of
	// the scan time.
	seen  []uint64
	used  []uint64
	n     int      // features in seen
	feats []uint32 // the message's features, sorted
	nb    []int8   // their Bayes table bytes, for Judge
	ring  []uint64
	word  []byte
	lower []byte // for bodyText
}

// NewExtractor returns an extractor hashing into 2^bits buckets and pairing
// each word with the window-1 words before it (orthogonal sparse bigrams).
func NewExtractor(bits uint8, window int) *Extractor {
	x := &Extractor{bits: bits, window: window}
	x.pool.New = func() any {
		words := (1<<bits + 63) / 64
		return &scratch{seen: make([]uint64, words), used: make([]uint64, (words+63)/64), ring: make([]uint64, window)}
	}
	return x
}

// Features returns the sorted, distinct feature indices of msg. The result
// is a new slice owned by the caller.
func (x *Extractor) Features(msg *scanner.Message) []uint32 {
	s := x.extract(msg)
	defer x.pool.Put(s)
	return slices.Clone(s.feats)
}

// extract leaves msg's features in s.feats of a scratch from the pool,
// which the caller puts back when done with them.
func (x *Extractor) extract(msg *scanner.Message) *scratch {
	s := x.pool.Get().(*scratch)
	e := emitter{x: x, s: s}
	e.message(msg)
	s.drain()
	return s
}

// drain moves the features from the bitsets to feats, in order.
func (s *scratch) drain() {
	s.feats = s.feats[:0]
	for u, used := range s.used {
		for used != 0 {
			w := u*64 + bits.TrailingZeros64(used)
			used &= used - 1
			for word := s.seen[w]; word != 0; word &= word - 1 {
				s.feats = append(s.feats, uint32(w*64+bits.TrailingZeros64(word)))
			}
			s.seen[w] = 0
		}
		s.used[u] = 0
	}
	s.n = 0
}

type emitter struct {
	x *Extractor
	s *scratch
}

func (e *emitter) add(h uint64) {
	if i := e.x.index(h); !e.s.has(i) {
		e.s.insert(i)
	}
}

// index is the feature of hash h.
func (x *Extractor) index(h uint64) uint32 { return uint32(mix(h) >> (64 - x.bits)) }

func (s *scratch) has(i uint32) bool { return s.seen[i/64]&(1<<(i%64)) != 0 }

// insert adds the feature i, not yet in the set, unless the set is full.
func (s *scratch) insert(i uint32) {
	if s.n >= maxFeatures {
		return
	}
	w := i / 64
	s.seen[w] |= 1 << (i % 64)
	s.used[w/64] |= 1 << (w % 64)
	s.n++
}

func (e *emitter) addString(ns uint64, s string) {
	e.add(ns<<56 ^ hashString(s))
}

func (e *emitter) message(m *scanner.Message) {
	e.textTokens(stripListTag(m.Subject), false, nsSubject, nsSubjectPair, 200)
	var body string
	body, e.s.lower = bodyText(m.Text, e.s.lower)
	// body is m.Text or the start of it.
	textASCII, htmlASCII := m.TextASCII()
	e.textTokens(body, textASCII, nsWord, nsPair, maxWords)
	e.textTokens(m.HTML.Text, htmlASCII, nsWord, nsPair, maxWords)
	e.chars(body, maxChars)
	e.chars(m.HTML.Text, maxChars)
	e.textTokens(m.HTML.Hidden, false, nsHidden, 0, 500)
	e.textTokens(m.FromName, false, nsFromName, 0, 20)
	e.urls(m, body)
	e.mime(m)
	e.shape(m, body)
}

// textTokens emits a unigram per word and, when pair != 0, orthogonal
// sparse bigrams: the word with each of the window-1 words before it, each
// distance its own feature (CRM114/rspamd OSB), which captures phrases
// while tolerating inserted filler words. ascii says the caller knows
// text is ASCII; else it is looked at.
func (e *emitter) textTokens(text string, ascii bool, uni, pair uint64, limit int) {
	if text == "" {
		return
	}
	t := tokenizer{e: e, uni: uni, pair: pair, ring: e.s.ring, word: e.s.word[:0]}
	clear(t.ring)
	if ascii || scanner.IsASCII(text) {
		t.words(text, limit)
	} else {
		// NFKC folds full-width letters, ligatures and other look-alike
		// compatibility forms spammers use to dodge word matches. Only
		// the words up to limit are used, so the text is normalized a
		// piece at a time until they are read: normalized whole, a
		// megabyte of U+FDFA, which NFKC spells out in 18 letters and
		// spaces, allocated 69 MB and took 0.4 s for 3,000 words. The
		// pieces end where NFKC's segments do, so they normalize as the
		// whole would, and a word cut between two goes on in the next
		// (the tokenizer's state is t).
		for rest := text; rest != "" && t.n < limit; {
			piece := rest[:normBoundary(rest)]
			rest = rest[len(piece):]
			t.words(norm.NFKC.String(piece), limit)
		}
	}
	t.flush()
	e.s.word = t.word
}

// normBoundary is where the first piece of text to normalize on its
// own ends: the first NFKC boundary at or after normPiece bytes, or the
// end of text.
func normBoundary(text string) int {
	if len(text) <= normPiece {
		return len(text)
	}
	// Not inside a rune: back to its first byte. Bytes that continue
	// none (more than UTFMax-1 in a row) are no rune and may be cut.
	i := normPiece
	for k := 1; k < utf8.UTFMax && !utf8.RuneStart(text[i]); k++ {
		i--
	}
	if b := norm.NFKC.FirstBoundaryInString(text[i:]); b >= 0 {
		return i + b
	}
	return len(text)
}

// words reads text into t's words until t has emitted limit.
func (t *tokenizer) words(text string, limit int) {
	for i := 0; i < len(text); {
		if t.n >= limit {
			return
		}
		// ASCII, most of any text, is read a word at a time; the rest
		// by the unicode package.
		if c := text[i]; c < utf8.RuneSelf {
			if n, digits := scanner.ASCIIWord(text[i:]); n > 0 {
				t.addASCII(text[i:i+n], digits)
				i += n
				continue
			}
			i++
			switch c {
			case '$':
				t.flush()
				t.emit(hashMoney)
			case '!':
				t.flush()
				t.emit(hashBang)
			default:
				t.flush()
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		switch {
		case unicode.IsLetter(r):
			if isCJKRune(r) {
				// CJK has no spaces: each ideograph is a word and the pairs
				// give the bigrams.
				t.flush()
				t.word = utf8.AppendRune(t.word, r)
				t.runes = 1
				t.flush()
				continue
			}
			t.word = utf8.AppendRune(t.word, unicode.ToLower(r))
			t.letters++
			t.runes++
		case unicode.IsDigit(r):
			t.word = utf8.AppendRune(t.word, r)
			t.digits++
			t.runes++
		case r == '€' || r == '£':
			t.flush()
			t.emit(hashMoney)
		default:
			t.flush()
		}
	}
}

// tokenizer is the state of one textTokens call.
type tokenizer struct {
	e         *emitter
	uni, pair uint64
	ring      []uint64 // hashes of the last words, for the pairs
	n         int      // words emitted
	pos       int      // n % len(ring)
	word      []byte   // the word being read, lower-cased
	letters   int
	digits    int
	runes     int
}

// addASCII adds a run of ASCII letters and digits to the word. Past
// maxTokenLen the word becomes "#long" (or a "#num"), whatever its
// characters, so a run that takes it there is not kept.
func (t *tokenizer) addASCII(run string, digits int) {
	if t.runes+len(run) <= maxTokenLen {
		// Lower-case: the 0x20 bit; digits have it.
		k := 0
		for ; k+8 <= len(run); k += 8 {
			t.word = binary.LittleEndian.AppendUint64(t.word, binary.LittleEndian.Uint64([]byte(run[k:k+8]))|0x20*ones)
		}
		for ; k < len(run); k++ {
			t.word = append(t.word, run[k]|0x20)
		}
	}
	t.letters += len(run) - digits
	t.digits += digits
	t.runes += len(run)
}

func (t *tokenizer) emit(h uint64) {
	t.e.add(t.uni<<56 ^ h)
	if t.pair != 0 {
		ring := t.ring
		for d := 1; d < len(ring) && d <= t.n; d++ {
			j := t.pos - d
			if j < 0 {
				j += len(ring)
			}
			// t.e.add spelled out, as in chars: a word has up to
			// len(ring)-1 pairs.
			if i := t.e.x.index(t.pair<<56 ^ ring[j]*0x9e3779b97f4a7c15 ^ h ^ uint64(d)<<48); !t.e.s.has(i) {
				t.e.s.insert(i)
			}
		}
		ring[t.pos] = h
	}
	t.n++
	if t.pos++; t.pos == len(t.ring) {
		t.pos = 0
	}
}

// flush emits the word read so far: the word itself, or the shape of a
// number or an id.
func (t *tokenizer) flush() {
	if t.runes == 0 {
		return
	}
	switch {
	case t.digits == t.runes && t.runes > 2:
		t.emit(hashNum[min(t.runes, 8)])
	case t.runes == 1 && !isCJK(t.word):
	case t.runes > maxTokenLen:
		t.emit(hashLong)
	case t.digits > 0 && t.letters > 0 && t.runes > 6:
		t.emit(hashMixed)
	default:
		t.emit(hashBytes(t.word))
	}
	t.word = t.word[:0]
	t.letters, t.digits, t.runes = 0, 0, 0
}

// Hashes of the tokens that stand for a shape rather than a word.
var (
	hashMoney = hashString("#money")
	hashBang  = hashString("!")
	hashLong  = hashString("#long")
	hashMixed = hashString("#mixed")
	hashNum   = func() (h [9]uint64) {
		for n := 3; n <= 8; n++ {
			h[n] = hashString("#num" + strconv.Itoa(n))
		}
		return h
	}()
)

// chars emits character 4-grams of the lower-cased text with white space
// collapsed (the TREC 2007 spam track leaders' features). They catch
// obfuscated words, inflections and languages without spaces that the word
// features miss.
func (e *emitter) chars(text string, limit int) {
	var win uint32
	n := 0
	space := true
	end := min(len(text), limit)
	for i := 0; i < end; {
		// Once the window is full, the bytes up to the next white space
		// or control are read eight at a time: they need no collapsing,
		// only lower-casing, which lower8 does to all eight at once.
		if n >= 3 && i+8 <= end {
			x := binary.LittleEndian.Uint64([]byte(text[i : i+8]))
			k := 8
			if ws := spaceOrControl8(x); ws != 0 {
				k = bits.TrailingZeros64(ws) / 8
			}
			x = lower8(x)
			// A run of the byte that fills the window (separator lines,
			// padding) adds nothing: every 4-gram is the one before.
			if b := win & 0xff; k == 8 && win == b*0x01010101 && x == uint64(b)*ones {
				i += 8
				continue
			}
			for range k {
				prev := win
				win = win<<8 | uint32(uint8(x))
				x >>= 8
				if win != prev {
					// e.add spelled out, as in the byte loop below:
					// add is too big to be inlined, and most 4-grams
					// are in the set already.
					if j := e.x.index(nsChar<<56 ^ uint64(win)); !e.s.has(j) {
						e.s.insert(j)
					}
				}
			}
			if k > 0 {
				n += k
				i += k
				space = false
			}
			if k == 8 {
				continue
			}
			// text[i] is white space or a control: on to the byte loop.
		}
		c := text[i]
		i++
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
		prev := win
		win = win<<8 | uint32(c)
		// A 4-gram equal to the one before it ("====", "xxxx") is
		// already in the set, or was refused at the feature cap. (The
		// first never equals the 3 bytes before it: no byte is 0.)
		if n++; n >= 4 && win != prev {
			if j := e.x.index(nsChar<<56 ^ uint64(win)); !e.s.has(j) {
				e.s.insert(j)
			}
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// lower8 lower-cases the ASCII capitals among the eight bytes of x and
// leaves the other bytes as they are. For a byte y below 0x80, y+(0x80-lo)
// has its high bit set when y >= lo, and y+(0x7f-hi) has it clear when
// y <= hi; neither sum carries into the next byte.
func lower8(x uint64) uint64 {
	y := x &^ highs
	upper := (y + (0x80-'A')*ones) &^ (y + (0x7f-'Z')*ones) &^ x & highs
	return x | upper>>2 // 0x20, the lower-case bit
}

// spaceOrControl8 marks, with the high bit of each of the eight bytes of
// x, those that chars collapses as white space: every byte up to ' '.
func spaceOrControl8(x uint64) uint64 {
	return ^((x&^highs + (0x7f-' ')*ones) | x) & highs
}

func (e *emitter) urls(m *scanner.Message, body string) {
	urls := make([]scanner.URL, 0, len(m.URLs))
	for _, u := range m.URLs {
		if !u.Plain {
			urls = append(urls, u)
		}
	}
	// Plain-text links again, but only from the body without its list
	// footer: footers carry the collecting list's own URLs.
	urls = m.AppendPlainURLs(urls, body, 200)
	domains := 0
	for i, u := range urls {
		if i >= 100 {
			break
		}
		e.addString(nsURLDomain, u.Domain)
		e.addString(nsURLHost, u.Host)
		if j := strings.LastIndexByte(u.Host, '.'); j >= 0 && !u.IP {
			e.addString(nsURLTLD, u.Host[j+1:])
		}
		if u.IP {
			e.addString(nsShape, "url:ip")
		}
		if u.UserInfo {
			e.addString(nsShape, "url:userinfo")
		}
		if u.Image {
			e.addString(nsShape, "url:img")
		}
		if u.Text != "" && !u.Image {
			e.textTokens(u.Text, false, nsAnchor, 0, 20)
		}
		if i == 0 || urls[i-1].Domain != u.Domain {
			domains++
		}
	}
	e.addString(nsShape, "urls:"+bucket(len(urls)))
	e.addString(nsShape, "domains:"+bucket(domains))
}

func (e *emitter) mime(m *scanner.Message) {
	e.addString(nsMIME, "shape:"+m.Structure)
	for _, p := range m.Parts {
		e.addString(nsMIME, "ct:"+p.ContentType)
		if p.Charset != "" {
			e.addString(nsMIME, "cs:"+p.Charset)
		}
		if p.Encoding != "" {
			e.addString(nsMIME, "cte:"+p.ContentType+":"+p.Encoding)
		}
		if p.IsAttachment() {
			e.addString(nsMIME, "att:"+p.ContentType)
			if ext := strings.ToLower(path.Ext(p.Filename)); ext != "" {
				e.addString(nsMIME, "ext:"+ext)
			}
			e.addString(nsMIME, "attsize:"+bucket(p.Size>>10))
		}
	}
	for _, s := range m.Symbols {
		e.addString(nsMIME, "sym:"+s.Name)
	}
}

// shape emits coarse, language-independent facts about the message. They
// generalise across mailboxes better than words do.
func (e *emitter) shape(m *scanner.Message, body string) {
	h := &m.HTML
	if h.Hidden != "" {
		e.addString(nsShape, "hidden:"+bucket(len(h.Hidden)>>4))
	}
	e.addString(nsShape, "img:"+bucket(h.Images))
	if h.Images > 0 && len(h.Text)+len(body) < 200 {
		e.addString(nsShape, "imgonly")
	}
	if h.Forms > 0 {
		e.addString(nsShape, "form")
	}
	if h.Scripts > 0 {
		e.addString(nsShape, "script")
	}
	if h.CommentBytes > 0 {
		e.addString(nsShape, "comments:"+bucket(h.CommentBytes>>5))
	}
	caps := 0
	if len(body) == len(m.Text) {
		// No footer cut (body is a prefix of m.Text): the count the
		// rules take too.
		caps = capsShare(m.TextLetters())
	} else {
		caps = capsPercent(body, h.Text)
	}
	e.addString(nsShape, "caps:"+bucket(caps/10))
	e.addString(nsShape, "subjcaps:"+bucket(capsPercent(m.Subject)/25))
	if m.FromName == "" {
		e.addString(nsShape, "fromname:none")
	} else if strings.Contains(m.FromName, "@") {
		e.addString(nsShape, "fromname:addr")
	}
	subj := strings.ToLower(strings.TrimSpace(stripListTag(m.Subject)))
	switch {
	case subj == "":
		e.addString(nsShape, "subj:empty")
	case strings.HasPrefix(subj, "re:"):
		e.addString(nsShape, "subj:re")
	case strings.HasPrefix(subj, "fw"):
		e.addString(nsShape, "subj:fwd")
	}
}

// stripListTag removes leading "[listname]" tags, also after a reply
// prefix ("Re: [list] ..."): they name the mailing list a corpus was
// collected from, a delivery-path fact in disguise. At most a few tags are
// removed, so a hostile subject cannot make this quadratic.
func stripListTag(s string) string {
	t := strings.TrimSpace(s)
	prefix := ""
	for range 4 {
		if strings.HasPrefix(t, "[") {
			i := strings.IndexByte(t, ']')
			if i < 0 || i > 40 {
				break
			}
			t = strings.TrimSpace(t[i+1:])
			continue
		}
		p := replyPrefix(t)
		if p == "" || !strings.HasPrefix(strings.TrimSpace(t[len(p):]), "[") {
			break
		}
		prefix += t[:len(p)] + " "
		t = strings.TrimSpace(t[len(p):])
	}
	return prefix + t
}

func replyPrefix(t string) string {
	for _, p := range [...]string{"re:", "aw:", "fw:", "fwd:"} {
		if len(t) >= len(p) && strings.EqualFold(t[:len(p)], p) {
			return t[:len(p)]
		}
	}
	return ""
}

// listFooterMarkers start the footers mailing-list software appends. Like
// list tags they identify where a corpus was collected, not what the
// author wrote, so the model does not see them.
var listFooterMarkers = [...][]byte{
	[]byte("mailing list\n"), []byte("/mailman/listinfo"), []byte("to unsubscribe from this group"),
	[]byte("yahoo! groups sponsor"), []byte("your use of yahoo! groups"), []byte("this sf.net email is sponsored"),
	[]byte("this sf.net e-mail is sponsored"), []byte("to unsubscribe, e-mail:"), []byte("to unsubscribe, send"),
}

// bodyText returns text without a trailing mailing-list footer. The tail
// of text is lower-cased into buf, which is returned for reuse.
func bodyText(text string, buf []byte) (string, []byte) {
	const tail = 3000
	from := max(0, len(text)-tail)
	// ASCII-only lowering keeps byte offsets equal to text's (ToLower
	// may change lengths on invalid UTF-8).
	lower := slices.Grow(buf[:0], len(text)-from)
	i := from
	for ; i+8 <= len(text); i += 8 {
		lower = binary.LittleEndian.AppendUint64(lower, lower8(binary.LittleEndian.Uint64([]byte(text[i:i+8]))))
	}
	for ; i < len(text); i++ {
		c := text[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower = append(lower, c)
	}
	cut := firstFooter(lower)
	if cut < 0 {
		return text, lower
	}
	// Back up to the separator line (____ or ----) that usually precedes
	// the footer, if it is close; else to the start of the marker's line.
	region := string(lower[max(0, cut-600):cut])
	if i := lastSeparator(region); i >= 0 {
		return text[:from+max(0, cut-600)+i], lower
	}
	if i := bytes.LastIndexByte(lower[:cut], '\n'); i >= 0 {
		return text[:from+i], lower
	}
	return text[:from], lower
}

// footerStarts holds, by first byte, the markers and their first four
// bytes as a number; footerFirsts the bytes that start a marker.
var footerStarts, footerFirsts = func() (t [256][]footerMarker, firsts []byte) {
	for _, mk := range listFooterMarkers {
		if t[mk[0]] == nil {
			firsts = append(firsts, mk[0])
		}
		t[mk[0]] = append(t[mk[0]], footerMarker{binary.LittleEndian.Uint32(mk), mk})
	}
	return t, firsts
}()

type footerMarker struct {
	head uint32
	text []byte
}

// firstFooter returns where the first of the listFooterMarkers in lower
// starts, or -1. It reads lower once from the first byte that starts a
// marker, where a search per marker stopped at each of its first bytes:
// in prose 't', 'y' and 'm' abound.
func firstFooter(lower []byte) int {
	from := len(lower)
	for _, c := range footerFirsts {
		if i := bytes.IndexByte(lower[:from], c); i >= 0 {
			from = i
		}
	}
	for i := from; i+4 <= len(lower); i++ {
		for _, mk := range footerStarts[lower[i]] {
			if binary.LittleEndian.Uint32(lower[i:]) == mk.head && bytes.HasPrefix(lower[i:], mk.text) {
				return i
			}
		}
	}
	return -1
}

func lastSeparator(s string) int {
	for end := len(s); end > 0; {
		start := strings.LastIndexByte(s[:end], '\n') + 1
		line := strings.TrimSpace(s[start:end])
		if len(line) >= 10 && strings.Trim(line, "_-=~*") == "" {
			return start
		}
		end = start - 1
	}
	return -1
}

// capsPercent is the share of capitals among the ASCII letters of the
// texts (taken as one), 0 with fewer than 10 letters.
func capsPercent(texts ...string) int {
	var upper, letters int
	for _, s := range texts {
		l, u := scanner.ASCIILetters(s)
		letters += l
		upper += u
	}
	return capsShare(letters, upper)
}

// capsShare is the percentage of upper among letters, 0 with fewer than 10.
func capsShare(letters, upper int) int {
	if letters < 10 {
		return 0
	}
	return upper * 100 / letters
}

// bucket maps a count to a small log2 class name: 0, 1, 2, 4, 8, ...
func bucket(n int) string {
	if n <= 0 {
		return "0"
	}
	return strconv.Itoa(1 << (bits.Len(uint(n)) - 1))
}

func isCJKRune(r rune) bool {
	return r >= 0x2e80 && (unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r))
}

func isCJK(word []byte) bool {
	r, _ := utf8.DecodeRune(word)
	return isCJKRune(r)
}

// FNV-1a, inlined so hashing a word allocates nothing.
func hashBytes(b []byte) uint64 {
	h := uint64(wordHashSeed)
	for _, c := range b {
		h ^= uint64(c)
		h *= 0x100000001b3
	}
	return h
}

func hashString(s string) uint64 {
	h := uint64(wordHashSeed)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return h
}

// mix is the splitmix64 finaliser: it spreads FNV's weak high bits so the
// top bits index the table uniformly.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
