// Package rules holds mxgrid's transparent heuristic checks: each rule
// looks for one named sign of spam (a forged or missing header, a HELO that
// lies, a disguised link, hidden HTML text, an executable attachment) and
// emits a symbol with a weight from the config.
//
// Rules use the delivery path only where it has a meaning that holds on
// any server (a HELO that is a bare IP, a Date in a timezone that does not
// exist); they never reward or punish a particular list, host or mailbox,
// which is what would overfit a corpus.
//
// No single rule reaches the default tag score: a rule adds evidence to the
// statistical model's, it does not decide on its own. Exceptions are
// executable attachments, which are never wanted in mail.
package rules

import (
	"context"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mxgrid/mxgrid/scanner"
)

// Symbol names. The default weight of each is in DefaultWeights.
const (
	MissingFrom        = "MISSING_FROM"
	MissingDate        = "MISSING_DATE"
	MissingMessageID   = "MISSING_MID"
	DateInvalid        = "DATE_INVALID"
	DateBadTimezone    = "DATE_BAD_TZ"
	DateFuture         = "DATE_IN_FUTURE"
	MessageIDMalformed = "MID_MALFORMED"
	MailerBulk         = "MAILER_BULK"
	FromDisplaySpoof   = "FROM_DISPLAY_SPOOF"
	ReplyToFreemail    = "REPLYTO_FREEMAIL_DIFF"
	HeaderRaw8bit      = "HEADER_8BIT"
	HeaderEmptyAddr    = "HEADER_EMPTY_ADDR"
	PriorityHigh       = "PRIORITY_HIGH"
	ToUndisclosed      = "TO_UNDISCLOSED"
	ToManyDomains      = "TO_MANY_DOMAINS"
	MIMEMissingVersion = "MIME_NO_VERSION"
	HeaderRepeated     = "HEADER_REPEATED"
	SubjectAllCaps     = "SUBJ_ALL_CAPS"
	SubjectHashBuster  = "SUBJ_HASHBUSTER"
	TextUndeclared8bit = "TEXT_UNDECLARED_8BIT"
	TextUppercase      = "TEXT_UPPERCASE"
	TextHTMLAsPlain    = "TEXT_HTML_AS_PLAIN"
	BodyEmpty          = "BODY_EMPTY"
	HTMLHiddenText     = "HTML_HIDDEN_TEXT"
	HTMLImageOnly      = "HTML_IMAGE_ONLY"
	HTMLScript         = "HTML_SCRIPT"
	HTMLForm           = "HTML_FORM"
	HTMLCommentFlood   = "HTML_COMMENT_FLOOD"
	URLIPHost          = "URL_IP_HOST"
	URLUserInfo        = "URL_USERINFO"
	URLEncodedHost     = "URL_ENCODED_HOST"
	URLTextMismatch    = "URL_TEXT_MISMATCH"
	AttachExecutable   = "ATTACH_EXECUTABLE"
	AttachDoubleExt    = "ATTACH_DOUBLE_EXT"
	HELOBareIP         = "HELO_BARE_IP"
	HELOIPMismatch     = "HELO_IP_MISMATCH"
	HELONotFQDN        = "HELO_NOT_FQDN"
	HELODynamic        = "HELO_DYNAMIC"
)

// DefaultWeights are the weights used when the config does not override
// them. They were set by meaning first (how rarely would a legitimate
// sender do this?) and then checked against routing-blind cross-validation
// on the public corpus, where no rule may add false positives on ham.
func DefaultWeights() map[string]float64 {
	w := coreWeights()
	for _, g := range groups {
		for name, v := range g.weights {
			w[name] = v
		}
	}
	return w
}

// group is a family of rules kept in its own file with its own weights.
type group struct {
	weights map[string]float64
	run     func(f *findings, env *scanner.Envelope, m *scanner.Message)
}

// groups run after the core rules below, in this order.
var groups = []group{
	{identityWeights, identity},
	{linkWeights, linkRisk},
	{attachWeights, attachRisk},
	{textWeights, textSigns},
}

func coreWeights() map[string]float64 {
	return map[string]float64{
		MissingFrom:        2.0,
		MissingDate:        1.5,
		MissingMessageID:   0.5,
		DateInvalid:        1.5,
		DateBadTimezone:    2.0,
		DateFuture:         1.0,
		MessageIDMalformed: 1.5,
		HeaderRepeated:     2.0,
		MailerBulk:         2.5,
		FromDisplaySpoof:   2.0,
		ReplyToFreemail:    1.0,
		HeaderRaw8bit:      1.5,
		HeaderEmptyAddr:    1.0,
		PriorityHigh:       1.0,
		ToUndisclosed:      0.5,
		ToManyDomains:      1.0,
		MIMEMissingVersion: 1.0,
		SubjectAllCaps:     1.0,
		SubjectHashBuster:  2.0,
		TextUndeclared8bit: 1.0,
		TextUppercase:      1.0,
		TextHTMLAsPlain:    0.5,
		BodyEmpty:          1.0,
		HTMLHiddenText:     0.5,
		HTMLImageOnly:      2.0,
		HTMLScript:         0.5,
		HTMLForm:           0.3,
		HTMLCommentFlood:   1.5,
		URLIPHost:          2.0,
		URLUserInfo:        2.0,
		URLEncodedHost:     2.0,
		URLTextMismatch:    1.0,
		AttachExecutable:   6.0,
		AttachDoubleExt:    4.0,
		HELOBareIP:         1.5,
		HELOIPMismatch:     2.0,
		HELONotFQDN:        1.0,
		HELODynamic:        1.0,
	}
}

// Rules is the scanner.Check running every rule. It is stateless and safe
// for concurrent use.
type Rules struct {
	weights map[string]float64
	now     func() time.Time
}

var _ scanner.Check = (*Rules)(nil)

// New returns the rules check with the default weights overridden by
// overrides (other symbol names are ignored). A weight of 0 disables a rule.
func New(overrides map[string]float64) *Rules {
	w := DefaultWeights()
	for k := range w {
		if v, ok := overrides[k]; ok {
			w[k] = v
		}
	}
	return &Rules{weights: w, now: time.Now}
}

// Name implements scanner.Check.
func (r *Rules) Name() string { return "rules" }

// Check implements scanner.Check. Every rule is a cheap in-memory test, so
// ctx is not consulted.
func (r *Rules) Check(_ context.Context, env *scanner.Envelope, m *scanner.Message) (scanner.Result, error) {
	f := findings{w: r.weights}
	r.headers(&f, m)
	subject(&f, m)
	body(&f, m)
	links(&f, m)
	attachments(&f, m)
	if env != nil {
		helo(&f, env)
	}
	for _, g := range groups {
		g.run(&f, env, m)
	}
	// slices, not sort.SliceStable, whose reflection allocates a swapper.
	slices.SortStableFunc(f.syms, func(a, b scanner.Symbol) int {
		switch {
		case a.Score > b.Score:
			return -1
		case b.Score > a.Score:
			return 1
		}
		return 0
	})
	return scanner.Result{Symbols: f.syms}, nil
}

type findings struct {
	w    map[string]float64
	syms []scanner.Symbol
	// The From domain's organisation and its government suffix, which
	// five rules ask for: each is a public-suffix lookup, ~170 ns and an
	// allocation (publicsuffix tries the name as an IP address first).
	fromOrg, fromGov memo
}

// memo keeps a pure function's last answer.
type memo struct {
	in, out string
	ok      bool
}

func (m *memo) get(in string, fn func(string) string) string {
	if !m.ok || m.in != in {
		m.in, m.out, m.ok = in, fn(in), true
	}
	return m.out
}

// hasAny reports whether one of the named rules has fired; a rule whose
// weight is 0 never fires, so it counts as absent here too.
func (f *findings) hasAny(names ...string) bool {
	for _, s := range f.syms {
		if slices.Contains(names, s.Name) {
			return true
		}
	}
	return false
}

func (f *findings) hit(name, detail string) {
	w := f.w[name]
	if w == 0 {
		return
	}
	for _, s := range f.syms {
		if s.Name == name {
			return
		}
	}
	if len(detail) > 120 {
		detail = detail[:120]
	}
	f.syms = append(f.syms, scanner.Symbol{Name: name, Score: w, Detail: detail})
}

// onceOnlyFields may appear at most once (RFC 5322 §3.6, RFC 2045 §3).
// Given twice, readers disagree on which counts: the scanner reads the
// first Content-Type or From, a mail client may show the last, so a second
// one hides the message's real shape or sender from one of them. Writers
// of legitimate mail do not repeat them; Reply-To, Cc and the threading
// fields are left out, as list software is known to add them again.
var onceOnlyFields = [...]string{"From", "Sender", "To", "Subject", "Date", "Message-Id",
	"Mime-Version", "Content-Type", "Content-Transfer-Encoding"}

func (r *Rules) headers(f *findings, m *scanner.Message) {
	h := &m.Header
	if strings.TrimSpace(h.Get("From")) == "" {
		f.hit(MissingFrom, "")
	}
	if d := strings.TrimSpace(h.Get("Date")); d == "" {
		f.hit(MissingDate, "")
	} else {
		checkDate(f, d, h.Get("Received"), r.now)
	}
	mid := strings.TrimSpace(h.Get("Message-Id"))
	switch {
	case mid == "":
		f.hit(MissingMessageID, "")
	case !strings.HasPrefix(mid, "<") || !strings.Contains(mid, "@") || !strings.HasSuffix(mid, ">"):
		f.hit(MessageIDMalformed, mid)
	}
	for _, k := range onceOnlyFields {
		if h.Count(k) > 1 {
			f.hit(HeaderRepeated, k)
			break
		}
	}
	mailer := h.Get("X-Mailer")
	lm := strings.ToLower(mailer)
	for _, b := range bulkMailers {
		if strings.Contains(lm, b) {
			f.hit(MailerBulk, mailer)
			break
		}
	}
	fromDisplay(f, m)
	replyTo(f, m)
	for _, k := range [...]string{"Subject", "From", "To"} {
		if v := h.Get(k); !utf8.ValidString(v) || strings.ContainsRune(v, utf8.RuneError) {
			// Headers are ASCII with RFC 2047 encoded words, or UTF-8
			// under RFC 6532. Raw bytes in a legacy charset are neither:
			// real MUAs encode, bulk tools paste. U+FFFD is what such bytes
			// become once some hop has "repaired" them.
			f.hit(HeaderRaw8bit, k)
			break
		}
	}
	// RFC 5322 section 3.6.3: an address field holds at least one address
	// (only Bcc may be empty). Mass-mail templates leave "Cc:" blank.
	for _, k := range [...]string{"To", "Cc", "Reply-To"} {
		if h.Has(k) && strings.TrimSpace(h.Get(k)) == "" {
			f.hit(HeaderEmptyAddr, k)
			break
		}
	}
	// Marketing mail marks itself urgent to stand out; people rarely do.
	// X-MSMail-Priority is named in its canonical form, which Get would
	// otherwise build anew for every message.
	if p := strings.ToLower(h.Get("X-Priority")); strings.HasPrefix(strings.TrimSpace(p), "1") ||
		strings.EqualFold(strings.TrimSpace(h.Get("X-Msmail-Priority")), "high") {
		f.hit(PriorityHigh, "")
	}
	if strings.Contains(strings.ToLower(h.Get("To")), "undisclosed") {
		f.hit(ToUndisclosed, "")
	}
	// Values allocates; a list worth counting holds several addresses in
	// its first field, and RFC 5322 allows To and Cc once each.
	if strings.Count(h.Get("To"), "@")+strings.Count(h.Get("Cc"), "@") > 1 &&
		visibleRecipientOrgs(h.Values("To"), h.Values("Cc")) >= manyRecipientOrgs {
		f.hit(ToManyDomains, "")
	}
	ct := h.Get("Content-Type")
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "multipart/") && h.Get("Mime-Version") == "" {
		f.hit(MIMEMissingVersion, "")
	}
}

// manyRecipientOrgs is how many organisations a visible recipient list
// must span for TO_MANY_DOMAINS. People who write to that many unrelated
// organisations at once use Bcc or a mailing list; a list of strangers
// left in To or Cc is a harvested one. In the training corpus 43 of 500
// spam and none of 2,625 ham reach 8; 7 would take one ham.
const manyRecipientOrgs = 8

// maxRecipientAts bounds the addresses visibleRecipientOrgs looks at, so
// a header of thousands of addresses costs no more than a normal one.
const maxRecipientAts = 200

// visibleRecipientOrgs counts the organisational domains (eTLD+1) of the
// addresses in the To and Cc fields, up to manyRecipientOrgs. It reads
// whatever follows an "@" as a domain rather than parsing the lists:
// spamware's lists are often not valid RFC 5322, and an "@" in a quoted
// display name names a domain the sender chose to show just the same.
func visibleRecipientOrgs(fields ...[]string) int {
	var orgs [manyRecipientOrgs]string
	n, ats := 0, 0
	for _, values := range fields {
		for _, v := range values {
			for {
				i := strings.IndexByte(v, '@')
				if i < 0 || ats == maxRecipientAts {
					break
				}
				ats++
				v = v[i+1:]
				end := 0
				for end < len(v) && isDomainByte(v[end]) {
					end++
				}
				domain := strings.Trim(v[:end], ".-")
				v = v[end:]
				if !strings.Contains(domain, ".") {
					continue
				}
				org := orgDomain(domain)
				if !slices.Contains(orgs[:n], org) {
					orgs[n] = org
					if n++; n == len(orgs) {
						return n
					}
				}
			}
		}
	}
	return n
}

func isDomainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.'
}

// bulkMailers are X-Mailer values of mass-mailing tools sold for spamming.
var bulkMailers = []string{
	"quicksender", "mass mailer", "massmail", "group mail", "bulk mail", "bulkmail",
	"aristotle", "mailking", "gammadyne", "send-safe", "extractor pro", "stormpost",
	"dm mailer", "jixing", "atomic mail", "advanced mass sender", "emailer pro",
	"mach5 mailer", "floodgate", "superstar mailer", "easy mail pro",
}

var freemail = map[string]bool{
	"hotmail.com": true, "yahoo.com": true, "msn.com": true, "aol.com": true, "mail.ru": true,
	"bk.ru": true, "inbox.ru": true, "list.ru": true, "gmail.com": true, "outlook.com": true,
	"excite.com": true, "lycos.com": true, "mail.com": true, "usa.net": true, "netscape.net": true,
	"juno.com": true, "yandex.ru": true, "rediffmail.com": true, "163.com": true, "126.com": true,
	"sina.com": true, "yahoo.co.uk": true, "gmx.net": true, "gmx.de": true, "web.de": true,
	"libero.it": true, "tiscali.it": true, "email.com": true, "earthlink.net": true,
	// Webmail of today, where business email compromise keeps its
	// mailboxes: the global providers and their country domains, and the
	// big free providers of the languages the text rules read.
	"googlemail.com": true, "icloud.com": true, "me.com": true, "live.com": true, "ymail.com": true,
	"proton.me": true, "protonmail.com": true, "zoho.com": true, "aim.com": true, "yandex.com": true,
	"gmx.com": true, "gmx.at": true, "gmx.ch": true, "mail.de": true, "t-online.de": true,
	"yahoo.fr": true, "yahoo.es": true, "yahoo.it": true, "yahoo.de": true, "yahoo.com.br": true,
	"hotmail.fr": true, "hotmail.es": true, "hotmail.it": true, "hotmail.de": true, "hotmail.co.uk": true,
	"outlook.fr": true, "outlook.es": true, "outlook.it": true, "outlook.de": true, "outlook.com.br": true,
	"live.fr": true, "live.it": true, "live.co.uk": true, "laposte.net": true, "orange.fr": true,
	"free.fr": true, "sfr.fr": true, "virgilio.it": true, "alice.it": true, "uol.com.br": true,
	"bol.com.br": true, "terra.com.br": true, "sapo.pt": true, "wp.pl": true, "o2.pl": true, "onet.pl": true,
	// The largest free providers of the other languages the text rules
	// read (Chinese, Japanese, Russian) and of Korea.
	"qq.com": true, "foxmail.com": true, "sina.cn": true, "yeah.net": true, "139.com": true,
	"yahoo.co.jp": true, "naver.com": true, "hanmail.net": true, "daum.net": true,
	"rambler.ru": true, "ya.ru": true,
}

func checkDate(f *findings, d, received string, now func() time.Time) {
	t, off, err := parseDate(d)
	if err != nil {
		// net/mail rejects impossible zones ("-1600") the same way as
		// garbage; tell them apart, a bogus zone is a spamware signature.
		if badZone.MatchString(d) {
			f.hit(DateBadTimezone, d)
		} else {
			f.hit(DateInvalid, d)
		}
		return
	}
	if off < -12*3600 || off > 14*3600 {
		f.hit(DateBadTimezone, d)
		return
	}
	// The newest Received stamp is when our side (or the last hop) got the
	// message; a Date well after it was made up (bulk tools post-date mail
	// to stay on top of the inbox). Without Received, compare with the
	// clock: the SMTP session scans mail as it arrives. Old dates are not
	// flagged: archives, resent and delayed mail have them legitimately.
	ref := now()
	if i := strings.LastIndexByte(received, ';'); i >= 0 {
		if rt, _, err := parseDate(strings.TrimSpace(received[i+1:])); err == nil {
			ref = rt
		}
	}
	if t.After(ref.Add(24 * time.Hour)) {
		f.hit(DateFuture, d)
	}
}

var badZone = regexp.MustCompile(`[+-]([2-9]\d|1[5-9])\d\d\s*(\(.*\))?\s*$`)

// fromDisplay flags a display name that shows an address other than the
// one mail is really from ("support@bank.com" <x@elsewhere.ru>).
func fromDisplay(f *findings, m *scanner.Message) {
	if m.FromAddr == "" {
		return
	}
	name := m.ShownFromName()
	shown := addrInText.FindString(name)
	if shown == "" {
		return
	}
	if domainOf(strings.ToLower(shown)) != domainOf(m.FromAddr) {
		f.hit(FromDisplaySpoof, name)
	}
}

var addrInText = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)

func replyTo(f *findings, m *scanner.Message) {
	rt := m.Header.Get("Reply-To")
	if rt == "" || m.FromAddr == "" {
		return
	}
	a, ok := parseAddress(rt)
	if !ok {
		return
	}
	d := domainOf(strings.ToLower(a))
	if freemail[d] && d != domainOf(m.FromAddr) && !automatedSender(m.FromAddr) {
		f.hit(ReplyToFreemail, a)
	}
}

// automatedSender: addr's mailbox is one that takes no replies
// (no-reply@, donotreply@, notifications@). A platform writing for one
// of its users from such an address (a Google Drive share, a booking
// made through a scheduling service, a form's response) must send the
// replies to that user, whose mailbox is as often webmail as not; a
// fraudster's From is a mailbox, theirs or a stolen one, that answers.
func automatedSender(addr string) bool {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 {
		return false
	}
	local := strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.':
			return -1
		}
		return unicode.ToLower(r)
	}, addr[:i])
	return strings.Contains(local, "noreply") || strings.Contains(local, "donotreply") ||
		strings.HasPrefix(local, "notification")
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

func subject(f *findings, m *scanner.Message) {
	s := m.Subject
	letters, upper := 0, 0
	for _, r := range s {
		if r >= 'a' && r <= 'z' {
			letters++
		} else if r >= 'A' && r <= 'Z' {
			letters++
			upper++
		}
	}
	if letters >= 12 && upper == letters {
		f.hit(SubjectAllCaps, s)
	}
	// A subject padded with blanks and ending in a number or random letters
	// is varied per recipient to defeat checksum filters.
	if i := strings.Index(s, "     "); i > 0 {
		tail := strings.TrimSpace(s[i:])
		if tail != "" && len(tail) <= 12 && !strings.Contains(tail, " ") {
			f.hit(SubjectHashBuster, tail)
		}
	}
}

// readWhole reports whether the parser read all of m: it stops at a limit
// (MIME_TOO_COMPLEX) and at a header too large, and what it did not read
// is no finding of what m lacks.
func readWhole(m *scanner.Message) bool {
	if m.HeaderTooLarge {
		return false
	}
	for _, s := range m.Symbols {
		if s.Name == scanner.SymbolMIMETooComplex {
			return false
		}
	}
	return true
}

func body(f *findings, m *scanner.Message) {
	if ascii, _ := m.TextASCII(); !ascii && !utf8.ValidString(m.Text) {
		// Decoding gave invalid UTF-8: the part declared us-ascii (or no
		// charset) but carries 8-bit text, which no standard MUA sends.
		f.hit(TextUndeclared8bit, "")
	}
	// The plain and the HTML text are read as one, without joining them:
	// they can be megabytes.
	letters, upper := m.TextLetters()
	if letters >= 200 && upper*2 > letters {
		f.hit(TextUppercase, "")
	}
	if m.HTML.Parts == 0 && looksLikeHTML(m.Text) {
		f.hit(TextHTMLAsPlain, "")
	}
	// Nothing to read, look at or open: (HTML_IMAGE_ONLY covers pictures).
	// Not where the parser stopped reading (MIME_TOO_COMPLEX, a header past
	// its limit): a message nested past max_depth, its text at the bottom,
	// scored this point over the limit's, which alone tags, and was
	// refused (10.94).
	if isBlank(m.Text) && isBlank(m.HTML.Text) && !hasAttachment(m) && m.HTML.Images == 0 && len(m.URLs) == 0 && readWhole(m) {
		f.hit(BodyEmpty, "")
	}
	h := &m.HTML
	// Words a style rule shows on some screens (a mobile menu hidden
	// inline for the desktop) are read by someone.
	if hasFields(h.Hidden, 20+h.HiddenShownWords) {
		f.hit(HTMLHiddenText, "")
	}
	// The words are in the picture and the picture sells something, so
	// there is somewhere to click. A picture with a line and nothing to
	// click is a person sharing a photo ("Here it is!" from a phone). A
	// logo above a two-line shipping notice is no picture of words. A
	// shop's sale drawn as one picture, linking only the shop, is the
	// shop's own marketing, for the model to judge.
	if h.Images > h.Decorations && shortText(m, 200) && clickableElsewhere(f, m, false) {
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

// shortText: the message's text, plain and HTML, is under n bytes: what
// a picture's words leave when they are all in the picture.
func shortText(m *scanner.Message, n int) bool {
	return len(strings.TrimSpace(m.HTML.Text))+len(strings.TrimSpace(m.Text)) < n
}

// looksLikeHTML reports whether plain text holds "<html", "<body" or
// "<a href" in any case. Only ASCII letters fold to the letters of those
// (of the rest, only U+0130 and U+212A lower-case to ASCII, to "i" and
// "k"), so the text is not lower-cased whole for it.
func looksLikeHTML(s string) bool {
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			return false
		}
		s = s[i+1:]
		if hasPrefixFold(s, "html") || hasPrefixFold(s, "body") || hasPrefixFold(s, "a href") {
			return true
		}
	}
}

// hasPrefixFold reports whether s starts with the lower-case ASCII
// prefix in any case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// isBlank reports whether s is only white space.
func isBlank(s string) bool {
	return strings.TrimLeftFunc(s, unicode.IsSpace) == ""
}

// hasFields reports whether s has at least n words (as strings.Fields
// splits them, counting those with a letter or digit) without collecting
// them. The fields without one are the padding newsletters put after
// their hidden preheader ("&#847;&zwnj;&nbsp;" a hundred times) so the
// inbox preview shows nothing of the body: no word to read there.
func hasFields(s string, n int) bool {
	words := 0
	for len(s) > 0 && words < n {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if s == "" {
			break
		}
		field := s
		if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
			field, s = s[:i], s[i:]
		} else {
			s = ""
		}
		if strings.IndexFunc(field, isLetterOrDigit) >= 0 {
			words++
		}
	}
	return words >= n
}

func isLetterOrDigit(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func links(f *findings, m *scanner.Message) {
	from := ""
	if d := domainOf(m.FromAddr); d != "" {
		from = f.fromOrg.get(d, orgDomain)
	}
	for _, u := range m.URLs {
		u = unwrapped(u)
		if u.IP {
			f.hit(URLIPHost, u.Host)
		}
		if u.UserInfo {
			f.hit(URLUserInfo, u.Host)
		}
		if u.Encoded {
			f.hit(URLEncodedHost, u.Host)
		}
		if u.Text != "" && !u.Plain {
			// Anchor text that is itself a link to somewhere else: the
			// classic phishing disguise. Not when the text shows the
			// sender's own site: newsletters print their address and
			// link it through their mail provider's click tracker
			// ("www.shop.example" -> shop.us21.list-manage.com). Nor when
			// the link is such a tracker and the text another site
			// that is no listed brand's: a newsletter's "read more" at
			// www.theguardian.com goes through it like every other link
			// of the mail; phishers sending through a tracker show the
			// brand they imitate.
			for _, shown := range scanner.FindURLs(u.Text, 1) {
				if shown.Domain != u.Domain && shown.Domain != from &&
					(brands.owner[shown.Domain] != nil || !clickTrackers.has(u.Host)) {
					f.hit(URLTextMismatch, shown.Host+" -> "+u.Host)
				}
			}
		}
	}
}

var executable = map[string]bool{
	".exe": true, ".scr": true, ".pif": true, ".bat": true, ".com": true, ".cmd": true, ".vbs": true,
	".vbe": true, ".js": true, ".jse": true, ".wsf": true, ".wsh": true, ".hta": true, ".lnk": true,
	".cpl": true, ".msi": true, ".jar": true, ".ps1": true,
}

func attachments(f *findings, m *scanner.Message) {
	for _, p := range m.Parts {
		for _, shown := range p.Names() {
			// Read as the antivirus reads it, as Windows saves it:
			// "invoice.js." and "invoice.js::$DATA" are invoice.js.
			exts := scanner.Extensions(shown)
			if len(exts) == 0 || !executable["."+exts[0]] {
				continue
			}
			f.hit(AttachExecutable, shown)
			// "invoice.pdf.exe", "photo.jpg   .scr": a harmless extension
			// shown, a dangerous one used.
			if len(exts) == 2 && len(exts[1]) <= 4 {
				f.hit(AttachDoubleExt, shown)
			}
		}
	}
}

// hasLink: m has a link to click (image sources are not).
func hasLink(m *scanner.Message) bool {
	for _, u := range m.URLs {
		if !u.Image {
			return true
		}
	}
	return false
}

func hasAttachment(m *scanner.Message) bool {
	for _, p := range m.Parts {
		if p.IsAttachment() {
			return true
		}
	}
	return false
}

// helo judges the HELO/EHLO name against the connecting address. RFC 5321
// section 4.1.4 wants the client's FQDN or an address literal in brackets.
func helo(f *findings, env *scanner.Envelope) {
	h := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(env.HELO)), ".")
	if h == "" {
		return
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		lit, tagged := strings.CutPrefix(h[1:len(h)-1], "ipv6:")
		a, err := netip.ParseAddr(lit)
		switch {
		case err != nil || a.Is6() != tagged || a.Zone() != "":
			// Brackets around no address ("[x]", nine IPv6 groups)
			// make no literal: taken for one, they escaped every rule
			// here that the same text unbracketed meets. Nor does an
			// IPv6 address without the tag, an IPv4 one with it (RFC
			// 5321 4.1.3) or a zone, one of the client's interfaces.
			f.hit(HELONotFQDN, env.HELO)
		case env.ClientIP.IsValid() && a.Unmap() != env.ClientIP.Unmap():
			f.hit(HELOIPMismatch, env.HELO)
		}
		return
	}
	if a, err := netip.ParseAddr(h); err == nil {
		f.hit(HELOBareIP, env.HELO)
		if env.ClientIP.IsValid() && a.Unmap() != env.ClientIP.Unmap() {
			f.hit(HELOIPMismatch, env.HELO)
		}
		return
	}
	if !strings.Contains(h, ".") {
		f.hit(HELONotFQDN, env.HELO)
		return
	}
	if mayBeDynamic(h) && dynamicHost.MatchString(h) {
		f.hit(HELODynamic, env.HELO)
	}
}

// dynamicHost matches names ISPs give to dial-up, DSL and cable customers:
// the address spelled out in the name, or pool-type words. Words that also
// name real mail servers (client.example.com, mail.pool-corp.example,
// smtp.cable-tv.example) count only with a number after them, as in
// pool-71-105-3-9 or cust123.
var dynamicHost = regexp.MustCompile(`(^|[.-])(\d{1,3}[.-]){3}\d{1,3}[.-]|(^|[.-])(dsl|adsl|dynamic|dhcp|dialup|dial-up|broadband)[0-9.-]|(^|[.-])(dyn|ppp|pool|cable|client|cust)[.-]?\d`)

// mayBeDynamic is false for names dynamicHost cannot match, most mail
// servers' (mail.example.com), which the regexp's backtracker cost a
// microsecond each to refuse: every alternative needs a digit but the
// second, which needs one of its words ("adsl" holds "dsl", "dynamic"
// "dyn", "dial-up" "dial").
func mayBeDynamic(h string) bool {
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case '0' <= c && c <= '9':
			return true
		case c == 'd' || c == 'b':
			rest := h[i:]
			for _, w := range [...]string{"dsl", "dyn", "dhcp", "dial", "broadband"} {
				if strings.HasPrefix(rest, w) {
					return true
				}
			}
		}
	}
	return false
}
