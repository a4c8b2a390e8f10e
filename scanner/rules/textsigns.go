package rules

import (
	"bytes"
	"cmp"
	_ "embed"
	"net/mail"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/net/publicsuffix"

	"github.com/mxgrid/mxgrid/scanner"
)

// Rules about what the text asks of the reader, and text written to fool
// the reader or the filter.
const (
	TextUrgency      = "TEXT_URGENCY"
	TextCredentials  = "TEXT_CREDENTIALS"
	TextPhishAction  = "TEXT_PHISH_ACTION"
	TextRecipient    = "TEXT_RCPT_ADDRESS"
	TextZeroWidth    = "TEXT_ZERO_WIDTH"
	TextHomoglyph    = "TEXT_HOMOGLYPH"
	TextExtortion    = "TEXT_EXTORTION"
	TextLureLink     = "TEXT_LURE_LINK"
	TextMoneyPromise = "TEXT_MONEY_PROMISE"
	TextAdvanceFee   = "TEXT_ADVANCE_FEE"
	TextCallback     = "TEXT_CALLBACK"
	TextPharma       = "TEXT_PHARMA"
	TextLeadGen      = "TEXT_LEAD_GEN"
	TextMiracleCure  = "TEXT_MIRACLE_CURE"
	TextJobScam      = "TEXT_JOB_SCAM"
	FromBrandHome    = "FROM_BRAND_HOME"
	QRCodeOnly       = "QR_CODE_ONLY"
	maxFoldedText    = 16 << 10 // phishing asks early; newsletters' footers add nothing
	maxScannedRunes  = 16 << 10
	minZeroWidthHits = 2
)

var textWeights = map[string]float64{
	TextUrgency:      1.0,
	TextCredentials:  1.0,
	TextPhishAction:  2.0,
	TextRecipient:    1.0,
	TextZeroWidth:    2.0,
	TextHomoglyph:    3.0,
	TextExtortion:    3.0,
	TextLureLink:     2.0,
	TextMoneyPromise: 1.0,
	TextAdvanceFee:   2.5,
	TextCallback:     2.0,
	TextPharma:       2.5,
	TextLeadGen:      2.0,
	TextMiracleCure:  1.5,
	TextJobScam:      2.0,
	FromBrandHome:    -1.0,
	QRCodeOnly:       2.0,
}

var (
	//go:embed lists/urgency.txt
	urgencyList string
	//go:embed lists/deadlines.txt
	deadlinesList string
	//go:embed lists/credentials.txt
	credentialsList string
	//go:embed lists/signin.txt
	signInList string
	//go:embed lists/extortion.txt
	extortionList string
	//go:embed lists/cryptopay.txt
	cryptoPayList string
	//go:embed lists/lures.txt
	luresList string
	//go:embed lists/promises.txt
	promisesList string
	//go:embed lists/windfall.txt
	windfallList string
	//go:embed lists/identity.txt
	identityList string
	//go:embed lists/callback.txt
	callbackList string
	//go:embed lists/qrscan.txt
	qrScanList string
	//go:embed lists/drugs.txt
	drugsList string
	//go:embed lists/noprescription.txt
	noPrescriptionList string
	//go:embed lists/leadgen.txt
	leadGenList string
	//go:embed lists/contactlists.txt
	contactListsList string
	//go:embed lists/bodyclaims.txt
	bodyClaimsList string
	//go:embed lists/effortless.txt
	effortlessList string
	//go:embed lists/joboffers.txt
	jobOffersList string
	//go:embed lists/messengers.txt
	messengersList string

	urgency     = parsePhrases(urgencyList)
	deadlines   = parsePhrases(deadlinesList)
	credentials = parsePhrases(credentialsList)
	signIn      = parsePhrases(signInList)
	extortion   = parsePhrases(extortionList)
	cryptoPay   = parsePhrases(cryptoPayList)
	lures       = parsePhrases(luresList)
	promises    = parsePhrases(promisesList)
	windfall    = parsePhrases(windfallList)
	identityAsk = parsePhrases(identityList)
	callback    = parsePhrases(callbackList)
	qrScan      = parsePhrases(qrScanList)
	drugs       = parsePhrases(drugsList)
	noRx        = parsePhrases(noPrescriptionList)
	leadGen     = parsePhrases(leadGenList)
	contactList = parsePhrases(contactListsList)
	bodyClaims  = parsePhrases(bodyClaimsList)
	effortless  = parsePhrases(effortlessList)
	jobOffers   = parsePhrases(jobOffersList)
	messengers  = parsePhrases(messengersList)

	// textPhrases are the sets textSigns looks for, in one pass, at the
	// places the found* constants name in its results.
	textPhrases = newPhraseSets((&[foundSets]*phraseSet{
		foundUrgency: urgency, foundDeadline: deadlines, foundCredentials: credentials, foundSignIn: signIn, foundExtortion: extortion, foundCryptoPay: cryptoPay,
		foundLure: lures, foundPromise: promises, foundWindfall: windfall, foundIdentityAsk: identityAsk,
		foundCallback: callback, foundQRScan: qrScan, foundDrug: drugs, foundNoRx: noRx,
		foundLeadGen: leadGen, foundContactList: contactList,
		foundBodyClaim: bodyClaims, foundEffortless: effortless,
		foundJobOffer: jobOffers, foundMessenger: messengers,
	})[:]...)
)

const (
	foundUrgency = iota
	foundDeadline
	foundCredentials
	foundSignIn
	foundExtortion
	foundCryptoPay
	foundLure
	foundPromise
	foundWindfall
	foundIdentityAsk
	foundCallback
	foundQRScan
	foundDrug
	foundNoRx
	foundLeadGen
	foundContactList
	foundBodyClaim
	foundEffortless
	foundJobOffer
	foundMessenger
	foundSets
)

// foldBuffers lend textSigns the buffer it folds a message's text into,
// kilobytes a message that were garbage as soon as it returned.
var foldBuffers = sync.Pool{New: func() any { return new([]byte) }}

func textSigns(f *findings, env *scanner.Envelope, m *scanner.Message) {
	buf := foldBuffers.Get().(*[]byte)
	*buf = appendFold((*buf)[:0], maxFoldedText, m.Subject, m.Text, m.HTML.Text)
	folded := unsafe.String(unsafe.SliceData(*buf), len(*buf))
	var found [foundSets]string
	textPhrases.find(folded, found[:])
	// The phrases found are slices of the buffer, which the next message
	// overwrites: findings keep copies.
	for i := range found {
		found[i] = strings.Clone(found[i])
	}
	foldBuffers.Put(buf)
	// The lures that travel as a document: a charge and the number to
	// call printed in an attached invoice, a threat in a PDF letter.
	inFile := documentPhrases(m)
	// Where the message sends the reader: links out of the sender's
	// organisation (any link, when the sender is an impostor: phishers
	// send from the look-alike domain they host on), a form, or a QR code
	// the text says to scan, a link in a picture to be opened on a phone.
	qrCode := found[foundQRScan] != "" && showsImage(m)
	impostor := f.hasAny(FromLookalike, FromBrandClaim)
	away := clickableElsewhere(f, m, impostor) || len(m.HTML.FormActions) > 0 || qrCode
	u, c := found[foundUrgency], found[foundCredentials]
	// "Within 24 hours", "action required", "suspicious activity": what
	// a shop's order, a sign-up and a new-device alert say too, sending
	// the reader to the sender's own site. Without a link to follow
	// they are a callback's or an impostor's deadline.
	if u == "" && !(hasLink(m) && !away && !repliesToFreemail(m)) {
		u = found[foundDeadline]
	}
	// "Sign in to your account" is what a bank's statement notice says
	// too, linking its own site; a sign-in page elsewhere is a phish's.
	if c == "" && away {
		c = found[foundSignIn]
	}
	// A listed brand writing from its own domain, every link and any
	// Reply-To staying there, sets its own deadlines and asks for its own
	// payments: Google's "your storage is full", a bank's "suspicious
	// activity", Netflix's "update your payment", DHL's customs fee.
	// Whatever it says, it sends the reader to the brand itself (a forged
	// brand From is DMARC's to catch). Public bodies likewise.
	if !away && brandHome(f, m) {
		u, c = "", ""
		// Evidence of ham, except where the text is a callback lure's
		// ("if you did not authorize this payment, call ...") or a
		// shared document's: a seller's note in a genuine PayPal invoice
		// and a file shared through SharePoint or Google Drive carry
		// other people's lures from the brand's own domain.
		if found[foundCallback] == "" && found[foundLure] == "" {
			f.hit(FromBrandHome, domainOf(m.FromAddr))
		}
	}
	if u != "" {
		f.hit(TextUrgency, u)
	}
	if c != "" {
		f.hit(TextCredentials, c)
	}
	// A threat to expose the reader and a wallet to pay: sextortion, sent
	// "from" the reader's own address or from anywhere.
	if threat, pay := cmp.Or(found[foundExtortion], inFile[foundExtortion]), cmp.Or(found[foundCryptoPay], inFile[foundCryptoPay]); threat != "" && pay != "" {
		f.hit(TextExtortion, threat+" / "+pay)
	}
	// A voicemail, shared file or invoice waiting behind a link that no
	// business would host its documents at. linkRisk ran before.
	if found[foundLure] != "" && f.hasAny(URLFreeHosting, URLShortener, URLIPHost, URLLookalike, URLAbusedTLD) {
		f.hit(TextLureLink, found[foundLure])
	}
	if found[foundPromise] != "" {
		f.hit(TextMoneyPromise, found[foundPromise])
	}
	// A windfall out of nowhere, a request for who the reader is, and the
	// answer going to a webmail mailbox: advance-fee fraud, whose fee
	// comes in the next message. A shop telling a contest's winner asks
	// for an address too, but to be answered at its own domain.
	if found[foundWindfall] != "" && found[foundIdentityAsk] != "" && repliesToFreemail(m) {
		f.hit(TextAdvanceFee, found[foundWindfall]+" / "+found[foundIdentityAsk])
	}
	// A charge the reader never made, "billed" from a webmail mailbox: the
	// number to call for the refund is the fraud (callback phishing).
	if charge := cmp.Or(found[foundCallback], inFile[foundCallback]); charge != "" && repliesToFreemail(m) {
		f.hit(TextCallback, charge)
	}
	// A prescription-only medicine sold without the prescription, which
	// no licensed pharmacy may offer: counterfeit-pill spam. Either alone
	// is everyday text (a pharmacy's reminder, an over-the-counter offer).
	if found[foundDrug] != "" && found[foundNoRx] != "" {
		f.hit(TextPharma, found[foundDrug]+" / "+found[foundNoRx])
	}
	// A body transformed and no effort to it: weight melted away, years
	// undone, a chronic illness reversed, by a ritual doctors are
	// speechless about, guaranteed (supplement spam, from snowshoe
	// domains that authenticate). A clinic's newsletter writes about
	// weight loss and a shop guarantees refunds, each without the other.
	if found[foundBodyClaim] != "" && found[foundEffortless] != "" {
		f.hit(TextMiracleCure, found[foundBodyClaim]+" / "+found[foundEffortless])
	}
	// Easy work paid by the day, and the recruiter to be written to on
	// WhatsApp or Telegram, where no mail filter follows: the task and
	// job scams that end in an "activation fee". Job boards write the
	// offer's words, and friends name their chat app, each without the
	// other.
	if found[foundJobOffer] != "" && found[foundMessenger] != "" {
		f.hit(TextJobScam, found[foundJobOffer]+" / "+found[foundMessenger])
	}
	// A cold pitch for search ranking, a website or leads from a webmail
	// mailbox (agencies pitch from their own domains), or other people's
	// contact details for sale from anyone: business-to-business spam.
	if found[foundLeadGen] != "" && repliesToFreemail(m) {
		f.hit(TextLeadGen, found[foundLeadGen])
	} else if found[foundContactList] != "" {
		f.hit(TextLeadGen, found[foundContactList])
	}
	// A deadline, a request for credentials or money, and somewhere to
	// act on it: the shape of a phish in any language. Business email
	// compromise asks for no click: the reader is to answer, and the
	// answer goes to a webmail mailbox the fraudster holds. Links to the
	// sender's own organisation do not count: a bank's fraud alert, a
	// password expiry notice or a "sign in to enable 2FA by Friday" uses
	// the same words and sends the reader home, where a phish sends them
	// to a page of its own (a spoofed From domain is DMARC's to catch).
	if u != "" && c != "" && (away || repliesToFreemail(m)) {
		f.hit(TextPhishAction, u+" / "+c)
	}
	// A QR code and next to no words: the lure and its link are in the
	// picture, out of reach of every text and link rule, to be opened on
	// a phone the mail gateway does not protect. Tickets, boarding passes
	// and app pairing mails show codes too, with what they are for
	// written beside them.
	if shortText(m, 200) && showsQRCode(m) {
		f.hit(QRCodeOnly, "")
	}
	if rcpt := recipientAddress(env, m); rcpt != "" && mentionsRecipient(m, rcpt) {
		f.hit(TextRecipient, "")
	}
	textASCII, htmlASCII := m.TextASCII()
	zw, mixed := disguisedWords([]string{m.Subject, m.ShownFromName(), m.Text, m.HTML.Text}, []bool{2: textASCII, 3: htmlASCII})
	if zw >= minZeroWidthHits {
		f.hit(TextZeroWidth, "")
	}
	if mixed != "" {
		f.hit(TextHomoglyph, mixed)
	}
}

// maxDocumentInflate bounds the PDF streams documentPhrases inflates for
// one message.
const maxDocumentInflate = 8 << 20

// documentPhrases finds textPhrases in the text of m's PDFs (what their
// pages show with standard encodings; see scanner.PDFText), up to
// maxFoldedText of it. Only the lures that travel as a document read
// them: a legitimate contract or statement says "within 24 hours" and
// "verify your identity" too, and its links are the PDF's, not the
// message's.
func documentPhrases(m *scanner.Message) (found [foundSets]string) {
	budget := maxDocumentInflate
	var text strings.Builder
	for i := range m.Leaves {
		l := &m.Leaves[i]
		if text.Len() < maxFoldedText && bytes.Contains(l.Data[:min(len(l.Data), 1024)], pdfMagic) {
			text.WriteString(scanner.PDFText(l.Data, maxFoldedText-text.Len(), &budget))
			text.WriteByte(' ')
		}
	}
	if text.Len() == 0 {
		return found
	}
	folded := string(appendFold(nil, maxFoldedText, text.String()))
	textPhrases.find(folded, found[:])
	return found
}

// repliesToFreemail: a reply to m goes to a free webmail provider, at
// its Reply-To or, without one it can parse, its From.
func repliesToFreemail(m *scanner.Message) bool {
	addr := m.FromAddr
	if rt := m.Header.Get("Reply-To"); rt != "" {
		if a, ok := parseAddress(rt); ok {
			addr = a
		}
	}
	return freemail[strings.ToLower(domainOf(addr))]
}

// showsImage: m carries a picture, as an image part or one its HTML
// loads.
func showsImage(m *scanner.Message) bool {
	for _, p := range m.Parts {
		if strings.HasPrefix(p.ContentType, "image/") {
			return true
		}
	}
	for _, u := range m.URLs {
		if u.Image {
			return true
		}
	}
	return false
}

// brandHome: m's From domain is one of a listed brand's own, not its
// webmail (gmail.com is Google's, but anyone's mailbox), or a public
// body's below a government suffix (a council's "final notice"), and a
// Reply-To, if any, is at the same organisation.
func brandHome(f *findings, m *scanner.Message) bool {
	d := domainOf(m.FromAddr)
	if d == "" {
		return false
	}
	org := f.fromOrg.get(d, orgDomain)
	if freemail[org] || brands.owner[org] == nil && !brands.federationMember(org) && f.fromGov.get(org, governmentSuffix) == "" {
		return false
	}
	if rt := m.Header.Get("Reply-To"); rt != "" {
		a, ok := parseAddress(rt)
		if !ok || orgDomain(domainOf(strings.ToLower(a))) != org {
			return false
		}
	}
	return true
}

// clickableElsewhere: m has a link to click that leaves the organisation
// (eTLD+1) of its From address; any link counts when From has no domain
// or when home counts too. A listed brand's other domains are its home
// too: WeTransfer's mail links we.tl, Amazon's amazon.com from
// amazon.co.uk.
func clickableElsewhere(f *findings, m *scanner.Message, home bool) bool {
	from := ""
	if d := domainOf(m.FromAddr); d != "" && !home {
		from = f.fromOrg.get(d, orgDomain)
	}
	gov := f.fromGov.get(from, governmentSuffix)
	fromBrand := brands.owner[from]
	for _, u := range m.URLs {
		if u.Image {
			continue
		}
		uu := unwrapped(u)
		d := uu.Domain
		switch {
		case from == "":
			return true
		case d == from, gov != "" && governmentSuffix(d) == gov:
		case fromBrand != nil && !uu.IP && fromBrand.owns(orgDomain(uu.Host)):
		default:
			return true
		}
	}
	return false
}

// governmentSuffix is the public suffix of org when registering below it
// is for a government's bodies only ("gov.uk", "service.gov.uk",
// "gouv.fr", "gov.br", "gob.es", "gv.at"), else "". One government
// linking another of its sites is at home: GOV.UK Notify's mail from
// notifications.service.gov.uk sends the reader to
// passport.service.gov.uk, each its own registrable domain.
func governmentSuffix(org string) string {
	sfx, _ := publicsuffix.PublicSuffix(org)
	if sfx == org {
		return ""
	}
	for label := range strings.SplitSeq(sfx, ".") {
		switch label {
		case "gov", "gouv", "gob", "govt", "gv":
			return sfx
		}
	}
	return ""
}

// recipientAddress is the envelope recipient when there is exactly one
// (the SMTP session), else the To address (offline scans).
func recipientAddress(env *scanner.Envelope, m *scanner.Message) string {
	if env != nil && len(env.Rcpts) == 1 {
		return strings.ToLower(env.Rcpts[0])
	}
	if to := m.Header.Get("To"); to != "" {
		if a, ok := parseAddress(to); ok {
			return strings.ToLower(a)
		}
	}
	return ""
}

// parseAddress is the address net/mail's ParseAddress reads in v, found
// without it in the shapes nearly all mail uses (scanner.SimpleAddress):
// it allocates about ten times an address, and a message's To and
// Reply-To are read by several rules. A value longer than any address
// (scanner.MaxAddressBytes) is none: a quoted display name costs net/mail
// 40 times its size.
func parseAddress(v string) (addr string, ok bool) {
	if _, addr, ok := scanner.SimpleAddress(v); ok {
		return addr, true
	}
	if len(v) > scanner.MaxAddressBytes {
		return "", false
	}
	a, err := mail.ParseAddress(v)
	if err != nil {
		return "", false
	}
	return a.Address, true
}

// mentionsRecipient: mail-merge phishing addresses the reader by mailbox
// in the subject or the greeting ("john.doe@example.com, your mailbox is
// full", "Dear jdoe77"). Replies quote the address ("... wrote:"), lists
// print it in their footers, and people greet names, not addresses, so
// only the subject and a greeting opening the text count, and a bare
// local part only when it looks like a user name (a digit, a dot or an
// underscore in it). The address is looked for as written, punctuation
// and all: folded, "ana.silva" is "ana silva", and a sender who knows the
// reader's name greets "Dear Ana Silva" at the commonest of company
// address formats.
func mentionsRecipient(m *scanner.Message, rcpt string) bool {
	local, _, ok := strings.Cut(rcpt, "@")
	if !ok || len(local) < 4 {
		return false
	}
	places := make([]string, 1, 3)
	places[0] = subjectBesidesInvitee(m, rcpt)
	// The greeting is folded on the stack, most often all of it.
	var folded [2 * greetingBytes]byte
	for _, t := range []string{m.Text, m.HTML.Text} {
		line := firstLine(t)
		line = line[:min(len(line), greetingBytes)]
		if greeting(appendFold(folded[:0], 0, line)) {
			places = append(places, line)
		}
	}
	userLike := strings.ContainsAny(local, "0123456789._")
	for _, p := range places {
		p = strings.ToLower(p)
		if containsAddressWord(p, rcpt) || (userLike && containsAddressWord(p, local)) {
			return true
		}
	}
	return false
}

// subjectBesidesInvitee is the subject without the invitee's address
// that a calendar invitation's subject ends with (Google Calendar's
// "Invitation: Review @ Thu Dec 10, 2026 3pm - 3:30pm (CET)
// (ana@example.com)", sent to each attendee): the calendar names whose
// copy it is, as a phish greeting the reader by mailbox does not.
func subjectBesidesInvitee(m *scanner.Message, rcpt string) string {
	s := m.Subject
	suffix := "(" + rcpt + ")"
	if len(s) < len(suffix) || !strings.EqualFold(s[len(s)-len(suffix):], suffix) {
		return s
	}
	for _, l := range m.Leaves {
		if l.Part.IsCalendar() {
			return s[:len(s)-len(suffix)]
		}
	}
	return s
}

// containsAddressWord reports whether s holds w with no letter, digit or
// other character of an address either side: "ana.silva" is in "dear
// ana.silva," and "ana.silva." but not in "xana.silva" or
// "ana.silva@other.example". A dot counts as an edge, since sentences end
// with one.
func containsAddressWord(s, w string) bool {
	for from := 0; from < len(s); {
		i := strings.Index(s[from:], w)
		if i < 0 {
			return false
		}
		start, end := from+i, from+i+len(w)
		if (start == 0 || !addressByte(s[start-1])) && (end == len(s) || !addressByte(s[end])) {
			return true
		}
		from = start + 1
	}
	return false
}

func addressByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= utf8.RuneSelf || strings.IndexByte("@_-+", c) >= 0
}

// greetingBytes is how much of the first line counts as the greeting.
const greetingBytes = 120

func firstLine(s string) string {
	s = strings.TrimLeft(s, " \t\r\n")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// greeting reports whether a folded line opens with a salutation.
func greeting(folded []byte) bool {
	w, _, _ := bytes.Cut(folded, []byte(" "))
	return greetings[string(w)]
}

var greetings = map[string]bool{
	"dear": true, "hello": true, "hi": true, "attention": true, "ola": true, "oi": true, "prezado": true,
	"prezada": true, "caro": true, "cara": true, "estimado": true, "estimada": true, "querido": true,
	"querida": true, "hola": true, "bonjour": true, "cher": true, "chere": true, "madame": true,
	"monsieur": true, "hallo": true, "liebe": true, "lieber": true, "sehr": true, "guten": true,
	"gentile": true, "salve": true, "ciao": true, "buongiorno": true, "buenos": true, "bom": true,
}

// disguisedWords counts zero-width characters inside Latin words
// ("Pay\u200bPal" reads as PayPal but matches no filter) and returns the
// first word mixing Latin with Cyrillic or Greek letters. A soft hyphen
// counts only in a word shorter than hyphenatedLetters: German and Dutch
// newsletters put "&shy;" into their long compounds
// ("Jahres&shy;verbrauchs&shy;abrechnung") so a phone can break them,
// while nobody hyphenates "Pay\u00adPal". ascii[i], where true, says
// texts[i] is ASCII, known without reading it again.
func disguisedWords(texts []string, ascii []bool) (zeroWidth int, mixed string) {
	runes := 0
	for k, t := range texts {
		if k < len(ascii) && ascii[k] || scanner.IsASCII(t) {
			// No zero-width character, no letter of another script.
			if runes += len(t); runes > maxScannedRunes {
				return zeroWidth, mixed
			}
			continue
		}
		start := -1
		// foreign: the word has a letter outside ASCII. Only such a word
		// can mix scripts, and ASCII, most of any text, skips the
		// unicode tables.
		prevLatin, foreign := false, false
		// letters and softHyphens of the word so far: the hyphens count
		// once the word's length is known.
		letters, softHyphens := 0, 0
		for i := 0; i < len(t); {
			if runes++; runes > maxScannedRunes {
				return zeroWidth, mixed
			}
			r, size := rune(t[i]), 1
			if r >= utf8.RuneSelf {
				r, size = utf8.DecodeRuneInString(t[i:])
			}
			at := i
			i += size
			switch {
			case r < utf8.RuneSelf && asciiLetter(byte(r)):
				if start < 0 {
					start = at
				}
				// The ASCII letters after it, read at once, change the
				// counts only: past the budget, nothing found differs.
				n := 1
				for i < len(t) && asciiLetter(t[i]) {
					i++
					n++
				}
				if runes += n - 1; runes > maxScannedRunes {
					return zeroWidth, mixed
				}
				prevLatin = true
				letters += n
				continue
			case r < utf8.RuneSelf:
			case isZeroWidth(r):
				if prevLatin && i < len(t) && startsLatinLetter(t[i:]) {
					if r == softHyphen {
						softHyphens++
					} else {
						zeroWidth++
					}
				}
				continue
			case unicode.IsLetter(r):
				if start < 0 {
					start = at
				}
				prevLatin = r < 0x250
				foreign = true
				letters++
				continue
			}
			if start >= 0 && foreign && mixed == "" && mixedScript(t[start:at]) {
				mixed = t[start:at]
			}
			if letters < hyphenatedLetters {
				zeroWidth += softHyphens
			}
			start, prevLatin, foreign = -1, false, false
			letters, softHyphens = 0, 0
		}
		if start >= 0 && foreign && mixed == "" && mixedScript(t[start:]) {
			mixed = t[start:]
		}
		if letters < hyphenatedLetters {
			zeroWidth += softHyphens
		}
	}
	return zeroWidth, mixed
}

// softHyphen is U+00AD, an invisible hyphenation point.
const softHyphen = '\u00ad'

// hyphenatedLetters is the length from which a word may carry soft
// hyphens: compounds that long overflow a phone's line.
const hyphenatedLetters = 12

func asciiLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func isZeroWidth(r rune) bool {
	switch r {
	case '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u034f':
		return true
	}
	return false
}

func startsLatinLetter(s string) bool {
	for _, r := range s {
		return unicode.IsLetter(r) && r < 0x250
	}
	return false
}
