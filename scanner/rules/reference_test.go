package rules

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/mxgrid/mxgrid/scanner"
)

// The first, simplest versions of the text rules' hot functions are kept
// here as oracles: the fast versions must agree with them on any input.

// foldPartsReference is foldParts as first written, every rune through
// the unicode package.
func foldPartsReference(limit int, parts ...string) string {
	size := 0
	for _, p := range parts {
		size += len(p) + 1
	}
	if limit > 0 {
		size = min(size, limit)
	}
	b := make([]byte, 0, size)
	space := true
	read := 0
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
		for _, r := range s {
			switch {
			case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9'):
				b = append(b, byte(r))
				space = false
			case r < utf8.RuneSelf && r >= 'A' && r <= 'Z':
				b = append(b, byte(r+'a'-'A'))
				space = false
			case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana):
				if !space {
					b = append(b, ' ')
				}
				b = append(utf8.AppendRune(b, r), ' ')
				space = true
			case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)):
				if base, ok := latinBase[r]; ok {
					b = append(b, base...)
				} else {
					b = utf8.AppendRune(b, unicode.ToLower(r))
				}
				space = false
			case r >= utf8.RuneSelf && unicode.Is(unicode.Mn, r):
				// A combining accent written apart from its letter.
			default:
				if !space {
					b = append(b, ' ')
					space = true
				}
			}
		}
	}
	if len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return string(b)
}

// findReference is find as first written, one set at a time.
func (ps *phraseSet) findReference(folded string) string {
	for i := 0; i < len(folded); {
		end := wordEnd(folded, i)
		h := wordHash(folded[i:end])
		if ps.starts[h] {
			j := end
			for n := 1; n <= ps.longest; n++ {
				if n > 1 {
					if j >= len(folded) {
						break
					}
					k := wordEnd(folded, j+1)
					h = chain(h, wordHash(folded[j+1:k]))
					j = k
				}
				if ps.phrases[h] {
					return folded[i:j]
				}
			}
		}
		i = end + 1
	}
	return ""
}

// disguisedWordsReference is disguisedWords as first written, every rune
// through the unicode package and every word through mixedScript.
func disguisedWordsReference(texts ...string) (zeroWidth int, mixed string) {
	runes := 0
	for _, t := range texts {
		start := -1
		prevLatin := false
		shy, letters := 0, 0 // the word's soft hyphens and letters
		endWord := func() {
			if letters < hyphenatedLetters {
				zeroWidth += shy
			}
			shy, letters = 0, 0
		}
		for i, r := range t {
			if runes++; runes > maxScannedRunes {
				return zeroWidth, mixed
			}
			switch {
			case isZeroWidth(r):
				if prevLatin && i+len(string(r)) < len(t) && startsLatinLetter(t[i+len(string(r)):]) {
					if r == '\u00ad' {
						shy++
					} else {
						zeroWidth++
					}
				}
				continue
			case unicode.IsLetter(r):
				if start < 0 {
					start = i
				}
				prevLatin = r < 0x250
				letters++
				continue
			}
			if start >= 0 && mixed == "" && mixedScript(t[start:i]) {
				mixed = t[start:i]
			}
			endWord()
			start, prevLatin = -1, false
		}
		if start >= 0 && mixed == "" && mixedScript(t[start:]) {
			mixed = t[start:]
		}
		endWord()
	}
	return zeroWidth, mixed
}

// bodyReference is body as first written: it joins the texts and
// lower-cases the plain one.
func bodyReference(f *findings, m *scanner.Message) {
	if !utf8.ValidString(m.Text) {
		// Decoding gave invalid UTF-8: the part declared us-ascii (or no
		// charset) but carries 8-bit text, which no standard MUA sends.
		f.hit(TextUndeclared8bit, "")
	}
	text := m.Text + " " + m.HTML.Text
	letters, upper := 0, 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= 'a' && c <= 'z' {
			letters++
		} else if c >= 'A' && c <= 'Z' {
			letters++
			upper++
		}
	}
	if letters >= 200 && upper*2 > letters {
		f.hit(TextUppercase, "")
	}
	if m.HTML.Parts == 0 {
		lt := strings.ToLower(m.Text)
		if strings.Contains(lt, "<html") || strings.Contains(lt, "<body") || strings.Contains(lt, "<a href") {
			f.hit(TextHTMLAsPlain, "")
		}
	}
	// Nothing to read, look at or open: (HTML_IMAGE_ONLY covers pictures).
	if len(strings.TrimSpace(text)) == 0 && !hasAttachment(m) && m.HTML.Images == 0 && len(m.URLs) == 0 && readWhole(m) {
		f.hit(BodyEmpty, "")
	}
	h := &m.HTML
	words := 0
	for _, w := range strings.Fields(h.Hidden) {
		if strings.IndexFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0 {
			words++
		}
	}
	if words >= 20+h.HiddenShownWords {
		f.hit(HTMLHiddenText, "")
	}
	if h.Images > h.Decorations && len(strings.TrimSpace(h.Text))+len(strings.TrimSpace(m.Text)) < 200 && clickableElsewhere(f, m, false) {
		f.hit(HTMLImageOnly, "")
	}
	if h.Scripts > 0 {
		f.hit(HTMLScript, "")
	}
	if h.Forms > 0 {
		f.hit(HTMLForm, "")
	}
	if h.CommentBytes > 500 && h.CommentBytes*3 > h.Bytes {
		f.hit(HTMLCommentFlood, "")
	}
}

// textSeeds mix ASCII, accents, other scripts, look-alike letters,
// zero-width characters, invalid UTF-8 and listed phrases.
var textSeeds = []string{
	"", " ", "Hello, World!", "Última NOTIFICAÇÃO: sua conta será BLOQUEADA!", "Straße d'impôt",
	"Your account will be SUSPENDED within 24 hours: verify your password", "Pay\u200bPal ve\u200dri\u00adfy",
	"PаyPal аccount", "Σίσυφος and Ωmega", "bisonпїЅone", "a\xffb\xc3 \xe2\x80", "ﬁne Ｆｕｌｌ 東京都 한국어 ١٢٣",
	"KELVIN \u212a İstanbul ǅemal e\u0301te", "x\u034fy \ufeffz\u2060w",
}

func FuzzFoldPartsMatchesReference(f *testing.F) {
	for _, s := range textSeeds {
		f.Add(s, "Subject: "+s, 0)
		f.Add(s, s, 7)
	}
	// Longer than foldParts' run buffer, in ASCII and mixed.
	f.Add(strings.Repeat("Word-ab, ", 80), strings.Repeat("é x", 120), 0)
	// Words of eight bytes at once (fold8) and not, at every alignment.
	f.Add(strings.Repeat("1"+strings.Repeat("X", 77)+"\r\n", 5), "Quick Brown FOX 123 jumps over the lazy dog. Tab\there", 0)
	f.Add(" aBcDeFgH "+strings.Repeat("Zz 0 ", 70), "x_y-z@[`{/:az09AZ  \x7f\x00 ", 0)
	f.Add("0123456\x10 9876543\x19 @`[{/:", "ABCDEFG\x01 abcdefg\x1a", 0) // bytes that |0x20 makes digits
	f.Fuzz(func(t *testing.T, a, b string, limit int) {
		limit = max(0, limit%64)
		if got, want := foldParts(limit, a, b, a), foldPartsReference(limit, a, b, a); got != want {
			t.Fatalf("foldParts(%d, %q, %q) = %q, reference %q", limit, a, b, got, want)
		}
	})
}

func FuzzFindMatchesReference(f *testing.F) {
	for _, s := range textSeeds {
		f.Add(s)
	}
	f.Add("please act now your account will be suspended within 24 hours verify your password and login")
	f.Add("final final notice your your account has been locked")
	f.Fuzz(func(t *testing.T, text string) {
		folded := fold(text, 0)
		var got [foundSets]string
		textPhrases.find(folded, got[:])
		for k, ps := range textPhrases.sets {
			if want := ps.findReference(folded); got[k] != want || ps.find(folded) != want {
				t.Fatalf("%q: set %d found %q (alone %q), reference %q", folded, k, got[k], ps.find(folded), want)
			}
		}
	})
}

func FuzzDisguisedWordsMatchesReference(f *testing.F) {
	for _, s := range textSeeds {
		f.Add(s, s+" tail")
	}
	// A run of ASCII letters taking the rune budget to within a few runes
	// of its end: the word that mixes scripts after it is found or not.
	for d := -2; d <= 2; d++ {
		f.Add("é "+strings.Repeat("x", maxScannedRunes-8+d), "Gооgle")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		wzw, wmixed := disguisedWordsReference(a, b)
		// Without, then with, what the caller knows of which is ASCII.
		for _, ascii := range [][]bool{nil, {scanner.IsASCII(a), scanner.IsASCII(b)}} {
			zw, mixed := disguisedWords([]string{a, b}, ascii)
			if zw != wzw || mixed != wmixed {
				t.Fatalf("disguisedWords(%q, %q, %v) = %d %q, reference %d %q", a, b, ascii, zw, mixed, wzw, wmixed)
			}
		}
	})
}

func FuzzBodyMatchesReference(f *testing.F) {
	for _, s := range textSeeds {
		f.Add(s, "<HTML><Body>"+s, s, 0)
	}
	f.Add("<A HREF=x> \u212a", strings.Repeat("WORD ", 60), strings.Repeat("hidden\u00a0", 25), 1)
	f.Add(" \u00a0\t", "\u2003", "", 0)
	f.Fuzz(func(t *testing.T, text, html, hidden string, images int) {
		m := &scanner.Message{Text: text, HTML: scanner.HTMLInfo{Text: html, Hidden: hidden, Images: images % 2}}
		got, want := findings{w: DefaultWeights()}, findings{w: DefaultWeights()}
		body(&got, m)
		bodyReference(&want, m)
		if !slices.Equal(got.syms, want.syms) {
			t.Fatalf("%q %q %q: %v, reference %v", text, html, hidden, got.syms, want.syms)
		}
	})
}

// FuzzClassDistanceBoundsEditDistance: the class bound never exceeds the
// edit distance, so lookalike skips only keys editDistance would refuse.
func FuzzClassDistanceBoundsEditDistance(f *testing.F) {
	f.Add("paypa1", "paypal")
	f.Add("arnazon", "amazon")
	f.Add("docusing", "docusign")
	f.Add("micros0ft-x", "microsoft")
	f.Add("ПayPal", "paypal")
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(b) >= 64 || len(a) >= 64 {
			return
		}
		d := editDistance(a, b, 64)
		if c := classDistance(charClasses(a), charClasses(b)); c > d {
			t.Fatalf("%q %q: class distance %d > edit distance %d", a, b, c, d)
		}
	})
}

// lookalikeReference is lookalike as first written: every label split
// out, every skeleton built, every key's edit distance computed.
func (idx *brandIndex) lookalikeReference(host string) (b *brand, why string) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	org := orgDomain(host)
	if idx.owner[org] != nil || org == "" {
		return nil, ""
	}
	labels := strings.Split(host, ".")
	orgLabels := strings.Count(org, ".") + 1
	// A brand's name among the labels left of someone else's domain.
	for _, l := range labels[:max(0, len(labels)-orgLabels)] {
		if b := idx.keys[l]; b != nil && len(l) >= 4 {
			return b, "brand label in " + host
		}
		for i, tok := range strings.Split(l, "-") {
			if b := idx.keys[tok]; b != nil && strings.Contains(l, "-") && (i == 0 || len(tok) >= 4) {
				return b, "brand name in " + host
			}
		}
	}
	first := firstLabel(org)
	if strings.HasPrefix(first, "xn--") {
		if u, err := idna.ToUnicode(first); err == nil {
			if b := idx.keys[skeletonReference(u)]; b != nil {
				return b, "look-alike letters in " + org
			}
		}
	}
	if b := idx.keys[skeletonReference(first)]; b != nil && skeletonReference(first) != first {
		return b, "digits for letters in " + org
	}
	for _, tok := range strings.Split(first, "-") {
		if b := idx.keys[tok]; b != nil && strings.Contains(first, "-") {
			return b, "brand name in " + org
		}
		if b := idx.brandWithFiller(tok); b != nil {
			return b, "brand name in " + org
		}
		if !strings.Contains(first, "-") {
			continue
		}
		if b := idx.keys[skeletonReference(tok)]; b != nil && skeletonReference(tok) != tok {
			return b, "digits for letters in " + org
		}
	}
	if b := idx.misspeltReference(first); b != nil {
		return b, "misspelt brand in " + org
	}
	return nil, ""
}

// misspeltReference is misspelt without the letter-class filter.
func (idx *brandIndex) misspeltReference(word string) *brand {
	if len(word) < 5 {
		return nil
	}
	for n := max(5, len(word)-2); n <= min(maxKeyLen, len(word)+2); n++ {
		for _, k := range idx.byLen[n] {
			limit := 1
			if len(k.key) >= 8 {
				limit = 2
			}
			if d := editDistance(word, k.key, limit); d > 0 && d <= limit && !extended(word, k.key) {
				return idx.keys[k.key]
			}
		}
	}
	return nil
}

func skeletonReference(s string) string {
	var b strings.Builder
	for _, r := range s {
		if c, ok := confusable[r]; ok {
			b.WriteRune(c)
			continue
		}
		b.WriteRune(r)
	}
	out := b.String()
	out = strings.ReplaceAll(out, "rn", "m")
	return strings.ReplaceAll(out, "vv", "w")
}

func FuzzLookalikeMatchesReference(f *testing.F) {
	for _, h := range []string{"paypal.com.secure-id.ru", "dhl-express-parcel.com", "microsoftonline-verify.net", "paypa1.com",
		"arnazon.com", "docusing.com", "xn--pypal-4ve.com", "securepaypal.net", "a-.b", "-", "", ".", "WWW.AMAZON.CO.UK.",
		"rnicrosoft.com", "vvellsfargo.com", "d\xffhl.com", "1.2.3.4", "[::1]", "mail.paypal.com",
		"ing-verificatie.nl.rt83.xyz", "sign-ups.example.org", "a.paypal-x.b.example.com", "linkedln-careers.com", "paypa1-secure.net"} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, host string) {
		b, why := brands.lookalike(host)
		wb, wwhy := brands.lookalikeReference(host)
		if b != wb || why != wwhy {
			t.Fatalf("lookalike(%q) = %v %q, reference %v %q", host, b, why, wb, wwhy)
		}
		if skeleton(host) != skeletonReference(host) {
			t.Fatalf("skeleton(%q) = %q, reference %q", host, skeleton(host), skeletonReference(host))
		}
	})
}

// claimedByReference is claimedBy as first written, padding each alias
// for every name.
func (idx *brandIndex) claimedByReference(displayName string) *brand {
	f := joinSpelledOut(fold(displayName, 200))
	if f == "" {
		return nil
	}
	padded := " " + f + " "
	for _, b := range idx.brands {
		for _, pa := range b.aliases {
			a := strings.TrimSpace(pa)
			i := strings.Index(padded, " "+a+" ")
			if i < 0 {
				continue
			}
			rest := padded[:i] + " " + padded[i+len(a)+1:]
			if onlyServiceWords(rest) {
				return b
			}
		}
	}
	return nil
}

func FuzzClaimedByMatchesReference(f *testing.F) {
	for _, n := range []string{"PayPal", "Microsoft account team", "Suporte Itaú", "Lockergnome Apple Tips", "Chase Miller",
		"DHL Paket", "Amazon.com", "", "  ", "the the paypal service", "Banco do Brasil S.A."} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := brands.claimedBy(name), brands.claimedByReference(name); got != want {
			t.Fatalf("claimedBy(%q) = %v, reference %v", name, got, want)
		}
	})
}

func FuzzMayBeDynamicCoversDynamicHost(f *testing.F) {
	for _, h := range []string{"mail.example.com", "pool-71-105-3-9.nycmny.fios.verizon.net", "adsl-dyn.example.net", "dsl.example",
		"dynamic.example.com", "dhcp-12.example.org", "dial-up.isp.example", "dialup.isp.example", "broadband.example",
		"cust123.example.com", "client-1.example", "ppp.x.example", "host.dyn.example", "", "bdsl-", "x.dhcp.", "k\u212aa.example"} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if dynamicHost.MatchString(h) && !mayBeDynamic(h) {
			t.Fatalf("mayBeDynamic(%q) = false, but dynamicHost matches it", h)
		}
	})
}

// activeAttributeReference is the pattern activeAttribute reads by hand,
// as Go's regexp ran it.
var activeAttributeReference = regexp.MustCompile(`<[^>]*\son[a-z]+\s*=|http-equiv\s*=\s*["']?refresh|\s(src|href|data|action|formaction)\s*=\s*["']?\s*//`)

// FuzzActiveAttributeMatchesReference: for any page, activeAttribute
// finds what the pattern finds (and the event handlers a browser reads
// where the pattern sees none: TestActiveMarkup).
func FuzzActiveAttributeMatchesReference(f *testing.F) {
	for _, s := range []string{
		`<img src=x onerror="x">`, `<body\tonload =x>`, `< onx=`, `<a><p> onclick=x`, `<a> onclick=x`, `<a on=x>`, `<a onX=x>`,
		`<a\x0bonclick=x>`, `<a\fonclick\n=x>`, "<a\n\n onclick \r\n = x>", `<é onclick=x>`, "<\xff onclick=x>",
		`<meta http-equiv=refresh>`, `<meta http-equiv = "refresh">`, `http-equiv=''refresh`, `http-equiv='Refresh'`,
		` src=//x`, ` href = " //x`, "\tdata='  //x", ` action=//`, ` formaction=//`, ` xaction=//`, `a src=//x`,
		` src="/x`, ` src=//`, ` srcx=//`, `<p>one = 1, online =2</p>`, `&#111;nload=`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, page []byte) {
		if got, want := activeAttribute(page), activeAttributeReference.Match(page); want && !got {
			t.Fatalf("%q: activeAttribute %v, the pattern %v", page, got, want)
		}
	})
}
