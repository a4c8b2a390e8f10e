package rules

import (
	"bufio"
	_ "embed"
	"iter"
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// The embedded lists (scanner/rules/lists) are meant to be read and
// updated by operators; each file says its format.
var (
	//go:embed lists/brands.txt
	brandsList string
	//go:embed lists/shorteners.txt
	shortenersList string
	//go:embed lists/freehosting.txt
	freeHostingList string
	//go:embed lists/abusedtlds.txt
	abusedTLDsList string
	//go:embed lists/clicktrackers.txt
	clickTrackersList string
)

type brand struct {
	name    string
	aliases []string // folded, space-separated words, a space either side (as matched)
	domains map[string]bool
	// members are the domains of a federation's members, each its own
	// registrable domain in one pattern ("sparkasse-*.de": hundreds of
	// savings banks, sparkasse-koelnbonn.de among them).
	members []memberPattern
	// suffixes are listed domains that are public suffixes themselves:
	// a government's (gov.br: receita.fazenda.gov.br is registered below
	// it) or a brand's own top-level domain (dhl: express.dhl), where
	// only the brand registers. Every domain below one is the brand's.
	suffixes []string
}

// memberPattern is a registrable domain with a "*" for one or more
// letters, digits or hyphens of its first label.
type memberPattern struct{ prefix, suffix string }

func parseMemberPattern(s string) (memberPattern, bool) {
	prefix, suffix, ok := strings.Cut(s, "*")
	label, _, _ := strings.Cut(suffix, ".")
	// At least four fixed characters in the label: "*.de" or "a*.de"
	// would give a brand a country.
	if !ok || strings.ContainsAny(prefix, ".*") || strings.Contains(suffix, "*") || !strings.Contains(suffix, ".") ||
		len(strings.Trim(prefix+label, "-")) < 4 {
		return memberPattern{}, false
	}
	return memberPattern{prefix, suffix}, true
}

func (p memberPattern) matches(org string) bool {
	if len(org) <= len(p.prefix)+len(p.suffix) || !strings.HasPrefix(org, p.prefix) || !strings.HasSuffix(org, p.suffix) {
		return false
	}
	for _, c := range []byte(org[len(p.prefix) : len(org)-len(p.suffix)]) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// owns reports whether org, a registrable domain, is the brand's own.
func (b *brand) owns(org string) bool {
	if b.domains[org] {
		return true
	}
	for _, sfx := range b.suffixes {
		if len(org) > len(sfx) && org[len(org)-len(sfx)-1] == '.' && strings.HasSuffix(org, sfx) {
			return true
		}
	}
	for _, p := range b.members {
		if p.matches(org) {
			return true
		}
	}
	return false
}

// brandIndex answers "which brand owns this domain" and "does this name
// or domain pretend to be a brand".
type brandIndex struct {
	brands []*brand
	owner  map[string]*brand // registrable domain -> brand
	// federations are the brands with member patterns or public
	// suffixes of their own, few enough to try each after owner finds
	// nothing.
	federations []*brand
	// keys are the distinctive first labels of the brands' domains
	// ("paypal", "docusign"), what lookalikes imitate; byLen holds those
	// of 5 letters or more by length, for the misspelling test.
	keys  map[string]*brand
	byLen [maxKeyLen + 1][]brandKey
	// longest is the length of the longest listed domain (ownedBelow).
	longest int
}

// brandKey is a key with the classes of characters it holds (charClasses).
type brandKey struct {
	key     string
	classes uint64
}

const maxKeyLen = 63

// genericKeys are first labels of brand domains that are ordinary words:
// "office-supplies.com" imitates nobody, nor does "easy-tax.co.uk" HMRC
// (tax.service.gov.uk) or finanzen.net, two letters from "finances",
// the French tax office (finances.gouv.fr).
var genericKeys = map[string]bool{
	"live": true, "office": true, "outlook": true, "windows": true, "me": true, "msn": true, "bing": true,
	"meta": true, "fb": true, "db": true, "bb": true, "gov": true, "booking": true, "steam": true,
	"aws": true, "azure": true, "mabanque": true,
	"post": true, "visa": true, "zoom": true, "ledger": true, "caf": true, "ssa": true, "hermes": true, "norton": true,
	"tax": true, "finances": true,
}

var brands = parseBrands(brandsList)

func parseBrands(list string) *brandIndex {
	idx := &brandIndex{owner: map[string]*brand{}, keys: map[string]*brand{}}
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		names, domains, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		b := &brand{domains: map[string]bool{}}
		for _, a := range strings.Split(names, "|") {
			if f := fold(a, 0); f != "" {
				b.aliases = append(b.aliases, " "+f+" ")
			}
		}
		if len(b.aliases) == 0 {
			continue
		}
		b.name = strings.TrimSpace(strings.Split(names, "|")[0])
		for _, d := range strings.Fields(domains) {
			d = strings.ToLower(d)
			if strings.Contains(d, "*") {
				// A member's name is its own: the key comes from the
				// brand's domain ("sparkasse.de"), not from the pattern.
				if p, ok := parseMemberPattern(d); ok {
					b.members = append(b.members, p)
				}
				continue
			}
			b.domains[d] = true
			idx.owner[d] = b
			idx.longest = max(idx.longest, len(d))
			// ICANN's suffixes only: below a private one (github.io)
			// anyone registers, and an unknown name is its own
			// "suffix" by the list's default rule.
			if sfx, icann := publicsuffix.PublicSuffix(d); sfx == d && icann {
				b.suffixes = append(b.suffixes, d)
			}
			if k := firstLabel(d); len(k) >= 3 && !genericKeys[k] {
				idx.keys[k] = b
			}
		}
		idx.brands = append(idx.brands, b)
		if len(b.members) > 0 || len(b.suffixes) > 0 {
			idx.federations = append(idx.federations, b)
		}
	}
	for k := range idx.keys {
		if len(k) >= 5 && len(k) <= maxKeyLen {
			idx.byLen[len(k)] = append(idx.byLen[len(k)], brandKey{k, charClasses(k)})
		}
	}
	return idx
}

// claimedBy returns the brand a display name claims to be: the brand's
// name with nothing but service words around it ("PayPal", "Microsoft
// account team", "Suporte Itaú"). A name that says more ("Lockergnome
// Apple Tips", "Chase Miller") is someone writing about or named like a
// brand.
func (idx *brandIndex) claimedBy(displayName string) *brand {
	f := joinSpelledOut(fold(displayName, 200))
	if f == "" {
		return nil
	}
	padded := " " + f + " "
	for _, b := range idx.brands {
		for _, a := range b.aliases {
			i := strings.Index(padded, a)
			if i < 0 {
				continue
			}
			rest := padded[:i] + " " + padded[i+len(a)-1:]
			if onlyServiceWords(rest) {
				return b
			}
		}
	}
	return nil
}

// joinSpelledOut joins a run of three or more one-letter words of folded
// text into one word: "P a y P a l" and "P.a.y.P.a.l" read as the brand to
// the eye, and fold leaves them as letters apart. Two letters stay apart
// ("Pay Pal" is two words, "J R Smith" a name).
func joinSpelledOut(f string) string {
	if !strings.Contains(f, " ") || !hasSpelledOutRun(f) {
		return f
	}
	words := strings.Fields(f)
	out := make([]string, 0, len(words))
	for i := 0; i < len(words); {
		j := i
		for j < len(words) && len(words[j]) == 1 {
			j++
		}
		if j-i >= 3 {
			out = append(out, strings.Join(words[i:j], ""))
			i = j
			continue
		}
		out = append(out, words[i])
		i++
	}
	return strings.Join(out, " ")
}

// hasSpelledOutRun reports whether folded text has three one-letter words
// in a row, so that most names cost joinSpelledOut no allocation.
func hasSpelledOutRun(f string) bool {
	run := 0
	for _, w := range strings.Fields(f) {
		if len(w) != 1 {
			run = 0
			continue
		}
		if run++; run == 3 {
			return true
		}
	}
	return false
}

func onlyServiceWords(s string) bool {
	for _, w := range strings.Fields(s) {
		if !serviceWords[w] {
			return false
		}
	}
	return true
}

// serviceWords are what brands (and those posing as them) put around
// their name in From: departments, teams, "no reply", in the languages of
// the phrase lists.
var serviceWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`the team support service services security account accounts customer customers
		care help desk center centre notification notifications alert alerts billing payments payment online
		info information mail no reply noreply do not official services update updates verification id
		department admin administrator system message messages web access express delivery shipping
		tracking parcel package premium business pro plus store inc ltd llc corp sa gmbh spa srl
		de do da dos das del la el le les des du di of for and e y et und und von der die das il lo
		equipe suporte atendimento servico servicos seguranca conta clientes cliente central aviso avisos
		equipo soporte atencion servicio seguridad cuenta notificacion
		equipe assistance securite compte client clients notification
		kundenservice kundendienst sicherheit konto benachrichtigung team
		assistenza sicurezza conto clienti notifica servizio
		paket pakete expresso encomendas colis paquete paquetes pacco envios gouv gov`) {
		m[w] = true
	}
	return m
}()

// lookalike reports whether host imitates a brand's domain without being
// one: a brand name as a label of someone else's domain
// (paypal.com.secure-id.ru, dhl-express-parcel.com, microsoftonline-verify.net),
// a small misspelling (paypa1.com, arnazon.com, docusing.com) or an
// internationalised name whose letters only look Latin (xn--pypal-4ve.com).
func (idx *brandIndex) lookalike(host string) (b *brand, why string) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return idx.lookalikeUnder(host, orgDomain(host))
}

// lookalikeUnder is lookalike for a host already lower-case without a
// final dot, and its orgDomain: a caller that needs org too spares a
// second search of the public suffix list.
func (idx *brandIndex) lookalikeUnder(host, org string) (b *brand, why string) {
	if org == "" || idx.owner[org] != nil || idx.federationMember(org) {
		return nil, ""
	}
	// A brand's name among the labels left of someone else's domain: a
	// whole label (paypal.com.secure-id.ru) or a word of a hyphenated one
	// (ing-verificatie.nl.rt83.xyz). A short name counts only first in its
	// label, where phishing puts it: "sign-ups" and "back-ups" are words.
	rest := host
	for range strings.Count(host, ".") - strings.Count(org, ".") {
		l, tail, _ := strings.Cut(rest, ".")
		if b := idx.keys[l]; b != nil && len(l) >= 4 {
			return b, "brand label in " + host
		}
		if strings.Contains(l, "-") {
			for i, tok := range strings.Split(l, "-") {
				if b := idx.keys[tok]; b != nil && (i == 0 || len(tok) >= 4) {
					return b, "brand name in " + host
				}
			}
		}
		rest = tail
	}
	first := firstLabel(org)
	if strings.HasPrefix(first, "xn--") {
		if u, err := idna.ToUnicode(first); err == nil {
			if b := idx.keys[skeleton(u)]; b != nil {
				return b, "look-alike letters in " + org
			}
		}
	}
	if sk := skeleton(first); sk != first {
		if b := idx.keys[sk]; b != nil {
			return b, "digits for letters in " + org
		}
	}
	hyphen := strings.Contains(first, "-")
	for rest, more := first, true; more; {
		var tok string
		tok, rest, more = strings.Cut(rest, "-")
		if b := idx.keys[tok]; b != nil && hyphen {
			return b, "brand name in " + org
		}
		if b := idx.brandWithFiller(tok); b != nil {
			return b, "brand name in " + org
		}
		if !hyphen {
			continue
		}
		// A disguised name among words (paypa1-secure). Not a misspelt
		// one: among words, "apply" and "finance" are words, not Apple
		// and Binance.
		if sk := skeleton(tok); sk != tok {
			if b := idx.keys[sk]; b != nil {
				return b, "digits for letters in " + org
			}
		}
	}
	// A brand's own name on a top-level domain the list does not give it
	// (binance.us) is that brand, not a misspelling of another brand's
	// key within two letters.
	if idx.keys[first] != nil {
		return nil, ""
	}
	if b := idx.misspelt(first); b != nil {
		return b, "misspelt brand in " + org
	}
	return nil, ""
}

// federationMember reports whether org is a member's domain of a
// federated brand, or registered below a brand's public suffix.
func (idx *brandIndex) federationMember(org string) bool {
	for _, b := range idx.federations {
		if b.owns(org) {
			return true
		}
	}
	return false
}

// misspelt is the brand whose key word is within one letter of (two for
// keys of eight or more), but not, a word of five letters or more, nor
// the key grown by a letter (extended).
func (idx *brandIndex) misspelt(word string) *brand {
	if len(word) < 5 {
		return nil
	}
	classes := charClasses(word)
	for n := max(5, len(word)-2); n <= min(maxKeyLen, len(word)+2); n++ {
		for _, k := range idx.byLen[n] {
			limit := 1
			if len(k.key) >= 8 {
				limit = 2
			}
			if classDistance(classes, k.classes) > limit {
				continue // editDistance would be over limit too
			}
			if extended(word, k.key) {
				continue
			}
			if d := editDistance(word, k.key, limit); d > 0 && d <= limit {
				return idx.keys[k.key]
			}
		}
	}
	return nil
}

// extended reports a five-letter key with one letter added at its end:
// that makes another word more often than a typo of the brand (posteo.de,
// a German mail provider, from Poste Italiane's "poste"; poster, apples,
// chased), and typosquatting changes or drops a letter of so short a name
// (app1e, appie, chse) rather than growing it.
func extended(word, key string) bool {
	return len(key) == 5 && len(word) == 6 && strings.HasPrefix(word, key)
}

// fillers are the words phishing glues to a brand name in one label
// (paypalsecure, securepaypal, myaccountmicrosoft).
var fillers = []string{"secure", "security", "login", "signin", "verify", "verification", "account", "accounts",
	"support", "service", "services", "update", "online", "help", "info", "mail", "web", "app", "my", "id",
	"center", "centre", "team", "billing", "pay", "payment", "auth", "portal", "official", "customer", "client",
	"tracking", "track", "delivery", "parcel", "express", "cliente", "clientes", "conta", "cuenta", "compte", "konto"}

func (idx *brandIndex) brandWithFiller(tok string) *brand {
	for _, f := range fillers {
		if rest, ok := strings.CutPrefix(tok, f); ok && len(rest) >= 4 && idx.keys[rest] != nil {
			return idx.keys[rest]
		}
		if rest, ok := strings.CutSuffix(tok, f); ok && len(rest) >= 4 && idx.keys[rest] != nil {
			return idx.keys[rest]
		}
	}
	return nil
}

// skeleton undoes the substitutions that make a name look like another:
// digits for letters, "rn" for "m", "vv" for "w", Cyrillic and Greek
// letters that look Latin.
func skeleton(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, isConfusable) && !strings.Contains(s, "rn") && !strings.Contains(s, "vv") {
		return s // nothing to undo: no new string
	}
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

// confusable maps characters that pass for Latin letters to those letters.
var confusable = map[rune]rune{
	'0': 'o', '1': 'l', '3': 'e', '4': 'a', '5': 's', '7': 't', '$': 's',
	// Cyrillic
	'а': 'a', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x', 'і': 'i', 'ј': 'j', 'ѕ': 's', 'һ': 'h',
	'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w', 'к': 'k', 'м': 'm', 'т': 't', 'в': 'b', 'н': 'h', 'ո': 'n', 'ӏ': 'l', 'Ӏ': 'l',
	'А': 'A', 'В': 'B', 'Е': 'E', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P', 'С': 'C', 'Т': 'T', 'Х': 'X',
	'І': 'I', 'Ј': 'J', 'Ѕ': 'S',
	// Greek
	'α': 'a', 'ο': 'o', 'ρ': 'p', 'ν': 'v', 'ι': 'i', 'κ': 'k', 'τ': 't', 'υ': 'u', 'ε': 'e',
	'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N', 'Ο': 'O',
	'Ρ': 'P', 'Τ': 'T', 'Υ': 'Y', 'Χ': 'X',
}

func isConfusable(r rune) bool {
	_, ok := confusable[r]
	return ok
}

// mixedScript reports whether a Latin word has letters swapped for
// Cyrillic or Greek ones that look the same ("PаyPal" with a Cyrillic
// "а"), which no language does. Other mixes are mojibake ("bisonпїЅone",
// UTF-8 read as Windows-1251), not disguise. Nor is a Russian case ending
// glued to a Latin name ("iPhoneом", "SMSку"): two or more Cyrillic
// letters after all the Latin ones; a single one ("Googlе") is a swap.
func mixedScript(word string) bool {
	latin, swapped := 0, 0
	// ending: the swapped letters so far are all Cyrillic and no Latin
	// letter followed them.
	ending := true
	for _, r := range word {
		switch {
		case r < utf8.RuneSelf && unicode.IsLetter(r), r >= utf8.RuneSelf && unicode.In(r, unicode.Latin):
			latin++
			if swapped > 0 {
				ending = false
			}
		case unicode.In(r, unicode.Cyrillic, unicode.Greek):
			if _, ok := confusable[r]; !ok {
				return false
			}
			swapped++
			if latin == 0 || !unicode.Is(unicode.Cyrillic, r) {
				ending = false
			}
		}
	}
	return latin >= 2 && swapped > 0 && !(ending && swapped >= 2)
}

// charClasses is the set of classes of the bytes of s: one class per
// lower-case letter, digit and '-', one for every other byte.
func charClasses(s string) uint64 {
	var set uint64
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z':
			set |= 1 << (c - 'a')
		case c >= '0' && c <= '9':
			set |= 1 << (26 + c - '0')
		case c == '-':
			set |= 1 << 36
		default:
			set |= 1 << 63
		}
	}
	return set
}

// classDistance is a lower bound of the edit distance of two strings with
// these charClasses: every class one of them has and the other lacks
// takes at least one edit (an insertion, deletion or substitution makes
// or removes one character), so skipping the dynamic programme when it is
// over the limit changes no answer.
func classDistance(a, b uint64) int {
	return max(bits.OnesCount64(a&^b), bits.OnesCount64(b&^a))
}

// editDistance is the Levenshtein distance of a and b, or limit+1 when it
// exceeds limit (the caller only cares about small distances).
func editDistance(a, b string, limit int) int {
	if absInt(len(a)-len(b)) > limit {
		return limit + 1
	}
	if len(b) >= 64 {
		return limit + 1 // no brand key is that long
	}
	var rowA, rowB [64]int
	prev, cur := rowA[:len(b)+1], rowB[:len(b)+1]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			best = min(best, cur[j])
		}
		if best > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// orgDomain is the registrable domain of host (eTLD+1), or host itself
// when it has none (a bare name, an IP literal).
func orgDomain(host string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if d, err := publicsuffix.EffectiveTLDPlusOne(host); err == nil {
		if len(host) > len(d) && brands.owner[d] == nil {
			if own := brands.ownedBelow(host, d); own != "" {
				return own
			}
		}
		return d
	}
	return host
}

// ownedBelow returns the listed brand domain that host is, or is under,
// below org, or "". Some countries register companies at a second level
// the public suffix list does not name (amazon.com.be under com.be): its
// "registrable domain" is then the registry's, and the brand's own
// domain is the organisation. Only suffixes no longer than the longest
// listed domain are looked up, so a host of a million labels costs one
// pass over it.
func (idx *brandIndex) ownedBelow(host, org string) string {
	for rest := host; len(rest) > len(org); {
		if len(rest) <= idx.longest && idx.owner[rest] != nil {
			return rest
		}
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	return ""
}

func firstLabel(domain string) string {
	l, _, _ := strings.Cut(domain, ".")
	return l
}

// hostList is a set of registrable domains, and of longer hosts for
// entries below a registrable domain (sites.google.com).
type hostList struct {
	names map[string]bool
	// longest is the length of the longest name: a suffix of a host
	// longer than that cannot be listed, and is not hashed.
	longest int
}

func parseHostList(list string) hostList {
	h := hostList{names: map[string]bool{}}
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		line := strings.ToLower(strings.TrimSpace(sc.Text()))
		if line != "" && line[0] != '#' {
			h.names[line] = true
			h.longest = max(h.longest, len(line))
		}
	}
	return h
}

// has reports whether host is listed, or is under a listed name.
func (h hostList) has(host string) bool {
	for name := range h.candidates(host) {
		if h.names[name] {
			return true
		}
	}
	return false
}

// candidates are host, lower-case without a final dot, and its parent
// domains of two labels or more, those no longer than the longest
// listed name. A sender's host can be a megabyte of labels ("a.a.a..."):
// hashing every suffix of it read the host once per label, 10 s for one
// link.
func (h hostList) candidates(host string) iter.Seq[string] {
	return func(yield func(string) bool) {
		host = strings.TrimSuffix(strings.ToLower(host), ".")
		if len(host) > h.longest {
			from := len(host) - h.longest - 1
			i := strings.IndexByte(host[from:], '.')
			if i < 0 {
				return
			}
			host = host[from+i+1:]
			if !strings.Contains(host, ".") {
				return
			}
		}
		for {
			if !yield(host) {
				return
			}
			_, rest, ok := strings.Cut(host, ".")
			if !ok || !strings.Contains(rest, ".") {
				return
			}
			host = rest
		}
	}
}

var (
	shorteners  = parseHostList(shortenersList)
	freeHosting = parseHostList(freeHostingList)
	abusedTLDs  = parseHostList(abusedTLDsList)
	// clickTrackers are mail services' click-tracking hosts.
	clickTrackers = parseHostList(clickTrackersList)
)

// abusedTLD reports whether host lies under one of lists/abusedtlds.txt.
func abusedTLD(host string) bool {
	host = strings.TrimSuffix(host, ".")
	return abusedTLDs.names[strings.ToLower(host[strings.LastIndexByte(host, '.')+1:])]
}
