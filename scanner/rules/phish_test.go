package rules

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/model"
)

const realworld = "../testdata/realworld"

// newSymbols are the spam signs of the identity, link, attachment and
// text groups: none of them may fire on the legitimate fixtures. Their
// evidence of ham (negative weights) may.
func newSymbols() map[string]bool {
	m := map[string]bool{}
	for _, g := range groups {
		for name, w := range g.weights {
			if w > 0 {
				m[name] = true
			}
		}
	}
	m[ToManyDomains] = true // a header rule, but as new as the groups
	// Core rules, but a newsletter's links through its mail service's
	// click tracker must not show the first, nor a shop's sale drawn as
	// one picture linking the shop the second.
	m[URLTextMismatch] = true
	m[HTMLImageOnly] = true
	return m
}

func scanFile(t *testing.T, path string) map[string]float64 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return run(t, &scanner.Envelope{}, scanner.Parse(raw), nil)
}

// TestPhishingFixtures: each hand-written phish (scanner/testdata/realworld,
// modelled on 2022-2026 campaigns in six languages) shows the signs it was
// written with.
func TestPhishingFixtures(t *testing.T) {
	tests := map[string][]string{
		"pt-itau-bloqueio":            {FromBrandClaim, FromLookalike, URLLookalike, URLFreeHosting, TextUrgency, TextCredentials, TextPhishAction},
		"pt-correios-taxa":            {FromBrandClaim, FromLookalike, URLShortener, TextCredentials, TextPhishAction},
		"pt-caixa-senha":              {FromBrandClaim, FromLookalike, URLIPHost, TextUrgency, TextPhishAction},
		"pt-receita-restituicao":      {FromBrandClaim, URLFreeHosting, TextCredentials},
		"pt-ctt-pt":                   {FromBrandClaim, FromLookalike, URLShortener, TextCredentials},
		"pt-microsoft-caixa":          {FromBrandClaim, FromLookalike, URLLookalike, URLFreeHosting, TextRecipient},
		"es-bbva-bloqueo":             {FromBrandClaim, FromLookalike, URLFreeHosting, TextPhishAction},
		"es-correos-paquete":          {FromBrandClaim, URLShortener, TextPhishAction},
		"es-agencia-tributaria":       {FromBrandClaim, FromLookalike, URLFreeHosting, TextCredentials},
		"es-netflix":                  {FromBrandClaim, FromLookalike, URLLookalike, TextUrgency},
		"en-m365-password":            {FromBrandClaim, FromLookalike, TextPhishAction},
		"en-m365-basestriker":         {FromBrandClaim, URLLookalike, TextUrgency, TextCredentials, TextPhishAction},
		"en-docusign":                 {FromBrandClaim, FromLookalike, URLFreeHosting},
		"en-paypal-limited":           {FromBrandClaim, FromLookalike, URLLookalike, TextPhishAction},
		"en-dhl-html-attach":          {FromBrandClaim, FromLookalike, AttachHTML},
		"en-wallet":                   {FromBrandClaim, FromLookalike, URLLookalike, URLFreeHosting},
		"en-apple-homoglyph":          {FromBrandClaim, FromLookalike, TextHomoglyph, URLFreeHosting},
		"en-wetransfer-zip":           {FromBrandClaim, AttachArchivePass},
		"fr-laposte-colis":            {FromBrandClaim, URLShortener, TextPhishAction},
		"fr-impots":                   {FromBrandClaim, FromLookalike, URLLookalike, URLFreeHosting},
		"fr-credit-agricole":          {FromBrandClaim, URLFreeHosting, TextPhishAction},
		"de-sparkasse":                {FromBrandClaim, FromLookalike, URLLookalike, URLFreeHosting, TextPhishAction},
		"de-dhl-zoll":                 {FromBrandClaim, FromLookalike, URLShortener, TextPhishAction},
		"de-microsoft-onenote":        {FromBrandClaim, AttachOneNote},
		"it-poste":                    {FromBrandClaim, FromLookalike, URLLookalike, URLFreeHosting, TextPhishAction},
		"it-intesa":                   {FromBrandClaim, URLShortener, TextPhishAction},
		"it-agenzia-entrate":          {FromBrandClaim, FromLookalike, URLFreeHosting, TextPhishAction},
		"es-dgt-multa":                {FromLookalike, URLLookalike},
		"it-inps":                     {FromBrandClaim, FromLookalike, URLLookalike, TextPhishAction},
		"fr-ameli":                    {FromBrandClaim, FromLookalike, URLLookalike, TextPhishAction},
		"nl-ing":                      {FromBrandClaim, FromLookalike, URLLookalike, TextUrgency},
		"pl-inpost":                   {FromBrandClaim, FromLookalike, URLLookalike, TextPhishAction},
		"en-callback-norton":          {FromBrandClaim, TextUrgency, TextCallback},
		"en-bec-giftcards":            {TextUrgency, TextCredentials, TextPhishAction},
		"pt-bec-cartoes":              {TextUrgency, TextCredentials, TextPhishAction},
		"de-bec-bankverbindung":       {ReplyToFreemail, TextUrgency, TextCredentials, TextPhishAction},
		"en-sextortion":               {TextExtortion},
		"en-voicemail-webapp":         {URLFreeHosting, TextLureLink},
		"es-factura-pagesdev":         {URLFreeHosting, TextLureLink},
		"pt-investimento":             {TextMoneyPromise},
		"es-loteria":                  {ReplyToFreemail, TextAdvanceFee},
		"fr-heritage":                 {TextAdvanceFee},
		"en-mailbox-quota":            {URLFreeHosting, TextUrgency, TextCredentials, TextPhishAction},
		"es-callback-renovacion":      {TextCallback},
		"pt-boleto":                   {URLFreeHosting, TextUrgency, TextLureLink},
		"de-paket-adresse":            {URLFreeHosting, TextUrgency, TextCredentials, TextPhishAction},
		"es-buzon-lleno":              {URLFreeHosting, TextUrgency, TextCredentials, TextPhishAction},
		"en-qr-mfa":                   {TextUrgency, TextCredentials, TextPhishAction},
		"en-pharmacy-no-prescription": {TextPharma},
		"es-farmacia-sin-receta":      {TextPharma},
		"ja-card-riyou":               {TextUrgency, TextCredentials, TextPhishAction},
		"zh-icbc-dongjie":             {FromAbusedTLD, URLAbusedTLD, TextUrgency, TextCredentials, TextPhishAction},
	}
	files, _ := filepath.Glob(filepath.Join(realworld, "phish", "*.eml"))
	if len(files) != len(tests) {
		t.Errorf("%d phishing fixtures, %d expectations: keep them in step", len(files), len(tests))
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			got := scanFile(t, filepath.Join(realworld, "phish", name+".eml"))
			for _, w := range want {
				if _, ok := got[w]; !ok {
					t.Errorf("%s missing; got %v", w, got)
				}
			}
		})
	}
}

// TestLegitimateMailFiresNoNewSymbol: the ham that resembles the phish (a
// genuine Microsoft account notification with an aligned DKIM signature,
// a bank's newsletter from its own domain, a personal message mentioning
// PayPal, a Portuguese invoice from a real business, a GitHub password
// reset, shipping notices, a mailing-list reply...) shows none of the
// identity, link, attachment or text signs.
func TestLegitimateMailFiresNoNewSymbol(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(realworld, "ham", "*.eml"))
	if len(files) < 10 {
		t.Fatalf("only %d ham fixtures", len(files))
	}
	fresh := newSymbols()
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".eml"), func(t *testing.T) {
			for name := range scanFile(t, f) {
				if fresh[name] {
					t.Errorf("%s fired on legitimate mail", name)
				}
			}
		})
	}
}

// TestFullHeaderLegitimateMail: legitimate mail of today as its senders
// write it (scanner/testdata/fullheaders: Received chains, DKIM and ARC
// fields, List-Unsubscribe, multipart/alternative in base64 or
// quoted-printable, inline images, calendar invitations, S/MIME, PGP/MIME,
// ISO-2022-JP and GB18030, from Gmail, Outlook, Apple Mail, ESPs, GitHub,
// GitLab, shops and banks) parses without a finding, shows none of the
// identity, link, attachment or text signs, and is not refused by the
// rules and the built-in model together, without the authentication
// that would vouch for most of it.
func TestFullHeaderLegitimateMail(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("../testdata/fullheaders", "ham", "*.eml"))
	if len(files) < 30 {
		t.Fatalf("only %d ham fixtures", len(files))
	}
	fresh := newSymbols()
	tagged := 0
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".eml"), func(t *testing.T) {
			m, score, syms := fullHeaderScore(t, f)
			if len(m.Symbols) > 0 {
				t.Errorf("parser findings %v", m.Symbols)
			}
			for name := range syms {
				if fresh[name] {
					t.Errorf("%s fired on legitimate mail", name)
				}
			}
			if score >= scanner.DefaultRejectScore {
				t.Errorf("score %.2f: refused", score)
			}
			if score >= scanner.DefaultTagScore {
				tagged++
				t.Logf("score %.2f: tagged %v", score, syms)
			}
		})
	}
	t.Logf("%d of %d tagged", tagged, len(files))
}

// fullHeaderScore scans the message in file with the rules and the
// built-in model, as a node without network checks would.
func fullHeaderScore(t *testing.T, file string) (*scanner.Message, float64, map[string]float64) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	md, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	m := scanner.Parse(raw)
	res, err := model.NewCheck(md, nil).Check(context.Background(), &scanner.Envelope{}, m)
	if err != nil {
		t.Fatal(err)
	}
	syms := run(t, &scanner.Envelope{}, m, nil)
	var score float64
	for _, s := range res.Symbols {
		score += s.Score
		syms[s.Name] = s.Score
	}
	for name, w := range syms {
		if name != model.SymbolSpam && name != model.SymbolHam {
			score += w
		}
	}
	return m, score, syms
}

// TestFullHeaderModernSpam: spam and phishing of today, hand-written
// after 2023-2026 campaigns with the headers their senders give them
// (scanner/testdata/fullheaders/spam: look-alike domains, an HTML
// attachment holding a login form, callback and gift-card fraud,
// sextortion, crypto giveaways, files shared from free hosts and abused
// top-level domains, a hijacked reply chain with an encrypted zip, a
// snowshoe sender with its own DKIM and one-click unsubscribe), is at
// least tagged by the rules and the built-in model, without the
// authentication checks. The known misses say why they are missed; one
// that becomes caught must leave the list.
func TestFullHeaderModernSpam(t *testing.T) {
	knownMisses := map[string]string{}
	files, _ := filepath.Glob(filepath.Join("../testdata/fullheaders", "spam", "*.eml"))
	if len(files) < 10 {
		t.Fatalf("only %d spam fixtures", len(files))
	}
	caught := 0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".eml")
		t.Run(name, func(t *testing.T) {
			_, score, syms := fullHeaderScore(t, f)
			why, known := knownMisses[name]
			switch {
			case score >= scanner.DefaultTagScore:
				caught++
				if known {
					t.Errorf("score %.2f: caught now, remove it from the known misses", score)
				}
			case !known:
				t.Errorf("score %.2f: neither tagged nor refused %v", score, syms)
			default:
				t.Logf("score %.2f: known miss, %s", score, why)
			}
		})
	}
	t.Logf("%d of %d caught", caught, len(files))
}

func TestLookalike(t *testing.T) {
	tests := []struct {
		host string
		want string // brand name, "" for none
	}{
		{"paypal.com", ""},
		{"www.paypal.com", ""},
		{"paypa1.com", "paypal"},
		{"paypal.com.account-review.co", "paypal"},
		{"paypal-secure.net", "paypal"},
		{"securepaypal.com", "paypal"},
		{"docusing.com", "docusign"},
		{"arnazon.com", "amazon"},
		{"amazon.com.mx", ""}, // a brand's own country site, not in the list: no claim either way
		// Below a second level the public suffix list does not know
		// (com.be): the brand's listed domain is its own, a label
		// below someone else's is not.
		{"amazon.com.be", ""},
		{"www.amazon.com.be", ""},
		{"amazon.login.com.be", "amazon"},
		{"amazon.com.be.verify-id.com", "amazon"},
		// Shops and business software phished since 2023.
		{"zalando.co.uk", ""},
		{"zalando-kundenkonto.com", "zalando"},
		{"ifood.com.br", ""},
		{"post.xero.com", ""},
		{"xero-billing-notice.com", "xero"},
		{"xerox.com", ""},
		{"acme.atlassian.net", ""},
		{"microsoft-365-storage.netlify.app", "microsoft"},
		{"xn--pypal-4ve.com", "paypal"}, // pаypal with a Cyrillic а
		{"xn--80ak6aa92e.com", "apple"}, // аррӏе, all Cyrillic, with a palochka for the l
		{"office-supplies.com", ""},
		{"live-music.org", ""},
		{"example.org", ""},
		{"dhl-express-delivery.org", "dhl"},
		{"apple.news.example.com", "apple"},
		{"ing-verificatie.nl.rt83.xyz", "ing bank"},    // a short name first in a hyphenated label
		{"kleinman-paypal-docs.example.net", "paypal"}, // a longer one anywhere in it
		{"sign-ups.example.org", ""},                   // a short name later in a label is a word
		{"customer-portal.eu.example.com", ""},         // words that are no brand
		{"ing.example.com", ""},                        // a whole label must be longer
		{"paypa1-secure.net", "paypal"},                // digits for letters among words
		{"finance-group-apply.com", ""},
		{"hermes.com", ""}, // not within two letters of a parcel service's key                // words near no brand's name
		{"pineapple.com", ""},
		{"sparkasse-koelnbonn.de", ""},           // a member of a federation, on its pattern
		{"www.berliner-sparkasse.de", ""},        // the pattern with the name last
		{"sparkasse-koelnbonn.com", "sparkasse"}, // the pattern names the country
		{"sparkasse-sicherheit.info", "sparkasse"},
		{"sparkasse-koelnbonn.de.example.ru", "sparkasse"}, // a member's name left of someone else's domain
		{"volksbank-mittelhessen.de", ""},
		{"volksbank-sicherheit.com", "volksbank"},
		{"meine-volksbank.de", ""},
		{"confirmation.tax.service.gov.uk", ""}, // HMRC's own, below a public suffix
		{"easy-tax.co.uk", ""},                  // an accountant: "tax" is a word, not HMRC
		{"hmrc-tax-refund.com", "hmrc"},
		{"finanzen.net", ""},      // a German finance portal, not a misspelt finances.gouv.fr
		{"home-finances.com", ""}, // nor a household budget's site
		{"impots-remboursement.com", "impots"},
		{"posteo.de", ""},    // a German mail provider, not Poste Italiane's "poste" misspelt
		{"poster.co.uk", ""}, // nor a print shop
		{"apples.com", ""},
		{"postte.it", "poste italiane"}, // a letter doubled inside is a typo
		{"appie.com", "apple"},
		{"paypall.com", "paypal"}, // longer names grown by a letter still are
		{"binance.us", ""},        // a brand's name on another TLD
		{"binance-us.com", "binance"},
		{"paypal-community.com", ""}, // PayPal's own forum
		{"www.paypal-communlty.com", "paypal"},
		{"mydhl.express.dhl", ""},      // below DHL's own top-level domain
		{"receita.fazenda.gov.br", ""}, // below the government's suffix
		{"", ""},
	}
	for _, tt := range tests {
		b, why := brands.lookalike(tt.host)
		got := ""
		if b != nil {
			got = b.name
		}
		if got != tt.want {
			t.Errorf("lookalike(%q) = %q (%s), want %q", tt.host, got, why, tt.want)
		}
	}
}

// TestFreeHostingHosts: pages anyone can publish, IPFS gateways among
// them, and not their makers' own sites.
func TestFreeHostingHosts(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"m365.pages.dev", true},
		{"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi.ipfs.dweb.link", true},
		{"m365.mypinata.cloud", true},
		{"gateway.pinata.cloud", true},
		{"www.pinata.cloud", false},
		{"bafybei.ipfs.4everland.link", true},
		{"www.4everland.org", false},
		{"invoices-2026.s3.amazonaws.com", true},
		{"s3.amazonaws.com", true},
		{"ec2-1-2-3-4.compute.amazonaws.com", false},
		{"dl.dropboxusercontent.com", true},
		{"www.dropbox.com", false},
		{"paypal.com", false},
	}
	for _, tt := range tests {
		if got := freeHosting.has(tt.host); got != tt.want {
			t.Errorf("freeHosting.has(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestBrandClaim(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{"PayPal", "paypal"},
		{"Microsoft account team", "microsoft"},
		{"Suporte Itaú", "itau"},
		{"Equipe Microsoft", "microsoft"},
		{"DHL Paket", "dhl"},
		{"Servicio de Atención BBVA", "bbva"},
		{"Lockergnome Apple Tips", ""},
		{"Chase Miller", ""},
		{"Tom Becker", ""},
		{"Assurance Maladie", "assurance maladie"},
		{"Ameli", ""},         // a first name: the brand needs its qualifier
		{"Visa Services", ""}, // a travel agency's name, not the card scheme
		{"InPost", "inpost"},
		{"Hermès", ""}, // the fashion house, not the parcel service
		{"Volksbank Kundenservice", "volksbank"},
		{"Volksbank Mittelhessen eG", ""}, // one bank of the federation, in its own name
		{"", ""},
	}
	for _, tt := range tests {
		got := ""
		if b := brands.claimedBy(tt.name); b != nil {
			got = b.name
		}
		if got != tt.want {
			t.Errorf("claimedBy(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestBrandClaimAsDisplayed: a From name claims the brand a mail client
// shows, whatever invisible or fullwidth characters spell it.
func TestBrandClaimAsDisplayed(t *testing.T) {
	tests := []struct {
		name  string
		claim bool
	}{
		{"PayPal", true},
		{"Pay\u200bPal", true},                         // zero-width space
		{"Pay\u200dPal", true},                         // zero-width joiner
		{"Pay\u00adPal", true},                         // soft hyphen
		{"\u2060PayPal\ufeff", true},                   // word joiner, BOM
		{"\uff30\uff41\uff59\uff30\uff41\uff4c", true}, // fullwidth
		{"\u200ePayPal Service\u200f", true},
		{"\u202elaPyaP", true},                   // drawn backwards: "PayPal"
		{"\u202ekrowten\u202c Microsoft", false}, // "network Microsoft" is no service word
		{"\u202eecivreS laPyaP\u202c", true},
		{"Pay Pal", false},
		{"P a y P a l", true}, // spelled out
		{"P.a.y.P.a.l Service", true},
		{"D H L", true},
		{"J R Smith", false},
		{"P a y P a l Fan Club", false},
		{"PayPal\u200b Fan Club", false},
		{"Tom Becker", false},
		{"=?utf-8?B?UGF5UGFs?=", true}, // an encoded word in quotes, decoded by every client
		{"=?utf-8?Q?PayPal?= Service", true},
		{"=?utf-8?B?VG9tIEJlY2tlcg==?=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := scanner.Parse([]byte("From: \"" + tt.name + "\" <service@account-review.co>\r\nSubject: hi\r\n\r\nhello\r\n"))
			if got := run(t, &scanner.Envelope{}, m, nil)[FromBrandClaim] > 0; got != tt.claim {
				t.Errorf("FROM_BRAND_CLAIM for %q (FromName %q) = %v, want %v", tt.name, m.FromName, got, tt.claim)
			}
		})
	}
}

func TestBrandOwnsItsDomains(t *testing.T) {
	byName := map[string]*brand{}
	for _, b := range brands.brands {
		byName[b.name] = b
	}
	tests := []struct {
		brand, org string
		want       bool
	}{
		{"sparkasse", "sparkasse.de", true},
		{"sparkasse", "sparkasse-hannover.de", true},
		{"volksbank", "volksbank-mittelhessen.de", true},
		{"volksbank", "vrbank-suedpfalz.de", true},
		{"volksbank", "volksbank-sicherheit.com", false},
		{"sparkasse", "berliner-sparkasse.de", true},
		{"sparkasse", "sparkasse-muensterland-ost.de", true},
		{"sparkasse", "sparkasse-hannover.com", false},
		{"sparkasse", "sparkasse-.de", false},
		{"sparkasse", "sparkasse-x_y.de", false},
		{"sparkasse", "xsparkasse-hannover.de", false},
		{"hmrc", "tax.service.gov.uk", true},
		{"hmrc", "other.service.gov.uk", false},
		{"paypal", "paypal-secure.com", false},
		{"paypal", "paypal.de", true}, // a global brand's country domains are its own
		{"amazon", "amazon.co.jp", true},
		{"amazon", "amazon.com.be", true},           // Belgium's store, opened in 2022
		{"paypal", "paypal.ws", false},              // a country the list does not name
		{"microsoft", "sharepointonline.com", true}, // SharePoint's sharing notices
		// A government's suffix: its agencies register below it.
		{"receita federal", "fazenda.gov.br", true},
		{"receita federal", "gov.br.example.com", false},
		{"receita federal", "xgov.br", false},
		// A brand's own top-level domain, where only the brand registers.
		{"dhl", "express.dhl", true},
		{"amazon", "signup.aws", true},
		{"dhl", "express.dhl.example.com", false},
		{"dhl", "expressdhl.com", false},
		// Genuine senders outside the brand's main domains.
		{"la poste", "notif-colissimo-laposte.info", true},
		{"american express", "americanexpress.de", true},
		{"dpd", "dpdlocal.co.uk", true},
		{"gls", "gls-pakete.de", true},
		{"microsoft", "microsoftstoreemail.com", true},
		{"dhl", "dhlparcel.nl", true},
		{"irs", "govdelivery.com", true}, // US agencies' bulletins go out through GovDelivery
		{"serasa", "serasaexperian.com.br", true},
		{"amazon", "amazon.co.za", true},
	}
	for _, tt := range tests {
		b := byName[tt.brand]
		if b == nil {
			t.Fatalf("no brand %q", tt.brand)
		}
		if got := b.owns(tt.org); got != tt.want {
			t.Errorf("%s owns %q = %v, want %v", tt.brand, tt.org, got, tt.want)
		}
	}
}

func TestParseMemberPattern(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"sparkasse-*.de", true},
		{"*-sparkasse.de", true},
		{"*.de", false},           // a country, not a federation
		{"ab*.de", false},         // too few fixed characters
		{"spark*asse*.de", false}, // one star
		{"sparkasse-*", false},    // no suffix
		{"x.sparkasse-*.de", false},
		{"sparkasse.*", false},
	} {
		if _, ok := parseMemberPattern(tt.in); ok != tt.ok {
			t.Errorf("parseMemberPattern(%q) ok = %v, want %v", tt.in, ok, tt.ok)
		}
	}
}

func FuzzMemberPattern(f *testing.F) {
	f.Add("sparkasse-*.de", "sparkasse-koelnbonn.de")
	f.Add("*-sparkasse.de", "berliner-sparkasse.de")
	f.Fuzz(func(t *testing.T, pattern, org string) {
		p, ok := parseMemberPattern(pattern)
		if !ok || !p.matches(org) {
			return
		}
		star := org[len(p.prefix) : len(org)-len(p.suffix)]
		if star == "" || strings.Contains(star, ".") || org != p.prefix+star+p.suffix {
			t.Fatalf("%q matches %q with %q for the star", pattern, org, star)
		}
	})
}

func TestDisguisedWords(t *testing.T) {
	tests := []struct {
		text      string
		zeroWidth int
		mixed     string
	}{
		{"Pay\u200bPal account", 1, ""},
		{"Ve\u200bri\u200bfy now", 2, ""},
		{"Your Аpple ID", 0, "Аpple"},
		{"PаyPal", 0, "PаyPal"},
		{"Привет, как дела", 0, ""},                  // Russian is not disguise
		{"bisonпїЅone", 0, ""},                       // mojibake is not disguise
		{"preheader \u200c\u00a0\u200c text", 0, ""}, // newsletter padding between words
		{"Καλημέρα", 0, ""},
		{"Купил iPhoneом и SMSку", 0, ""},    // Russian case endings on Latin names
		{"Your Googlе account", 0, "Googlе"}, // one Cyrillic letter at the end is a swap
		{"Micrоsoftом", 0, "Micrоsoftом"},    // a swap inside is one whatever follows
		{"Pay\u00adPal Kon\u00adto", 2, ""},  // soft hyphens in short words: nobody hyphenates them
		// A newsletter's hyphenation points in long compounds.
		{"Ihre Jahres\u00adverbrauchs\u00adabrechnung und Abschlags\u00adzahlung", 0, ""},
		{"Jahres\u00adver\u200bbrauchs\u00adabrechnung", 1, ""}, // other zero-width characters still count
	}
	for _, tt := range tests {
		zw, mixed := disguisedWords([]string{tt.text}, nil)
		if zw != tt.zeroWidth || mixed != tt.mixed {
			t.Errorf("disguisedWords(%q) = %d, %q; want %d, %q", tt.text, zw, mixed, tt.zeroWidth, tt.mixed)
		}
	}
}

func TestFoldAndPhrases(t *testing.T) {
	if got := fold("Última NOTIFICAÇÃO: sua conta será BLOQUEADA!", 0); got != "ultima notificacao sua conta sera bloqueada" {
		t.Errorf("fold = %q", got)
	}
	if got := fold("Straße d'impôt", 0); got != "strasse d impot" {
		t.Errorf("fold = %q", got)
	}
	for in, want := range map[string]string{
		"Confirm your ｐａｓｓｗｏｒｄ": "confirm your password",
		"ＶＥＲＩＦＹ ＡＣＣＯＵＮＴ，２４ｈ":    "verify account 24h",
	} {
		if got := fold(in, 0); got != want {
			t.Errorf("fold(%q) = %q, want %q", in, got, want)
		}
	}
	// Chinese and Japanese put no spaces between words: each character
	// is one, so a phrase is found inside a run of them.
	if got := fold("24時間以内にご確認ください", 0); got != "24 時 間 以 内 に ご 確 認 く だ さ い" {
		t.Errorf("fold = %q", got)
	}
	for _, tt := range []struct{ text, want string }{
		{"24時間以内にご本人確認をお願いいたします", ""}, // a deadline, found below
		{"系统检测到您的账户存在异常登录", "账 户 存 在 异 常"},
		{"Sua conta será bloqueada amanhã", "sua conta sera bloqueada"},
		{"Bitte bestätigen Sie Ihre Daten.", ""}, // a credential phrase, not urgency
		{"Ihr Konto wurde gesperrt", "ihr konto wurde gesperrt"},
		{"Ｉｈｒ Ｋｏｎｔｏ ｗｕｒｄｅ ｇｅｓｐｅｒｒｔ", "ihr konto wurde gesperrt"},
		{"the account will be suspended", ""},
		{"", ""},
	} {
		if got := urgency.find(fold(tt.text, 0)); got != tt.want {
			t.Errorf("urgency.find(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
	if got := deadlines.find(fold("24時間以内にご本人確認をお願いいたします", 0)); got != "24 時 間 以 内" {
		t.Errorf("deadlines.find = %q", got)
	}
}

// textSigns folds each message into a buffer the next one reuses: the
// phrases it reports stay as found after other messages are folded.
func TestTextSignsDetailOutlivesTheNextMessage(t *testing.T) {
	first := &scanner.Message{Text: "Sua conta será bloqueada amanhã"}
	var f findings
	f.w = textWeights
	textSigns(&f, &scanner.Envelope{}, first)
	// No longer than the first: folded into its buffer, not a grown one.
	next := &scanner.Message{Text: strings.Repeat("z", len(first.Text))}
	for range 4 {
		textSigns(&findings{w: textWeights}, &scanner.Envelope{}, next)
	}
	if len(f.syms) != 1 || f.syms[0].Name != TextUrgency || f.syms[0].Detail != "sua conta sera bloqueada" {
		t.Fatalf("first message's symbols %+v, want %s with detail %q", f.syms, TextUrgency, "sua conta sera bloqueada")
	}
}

func FuzzLookalike(f *testing.F) {
	for _, s := range []string{"paypal.com", "xn--pypal-4ve.com", "a.b.c.d.e", "..", "xn--", "paypal-.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if b, why := brands.lookalike(host); b != nil && brands.owner[orgDomain(host)] != nil {
			t.Fatalf("%q is the brand's own domain but was called a lookalike (%s)", host, why)
		}
	})
}

func FuzzFold(f *testing.F) {
	for _, s := range []string{"Última NOTIFICAÇÃO", "a\u0301b", "\xff\xfe", "  x  "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := fold(s, 0)
		if strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") || strings.Contains(got, "  ") {
			t.Fatalf("fold(%q) = %q: stray spaces", s, got)
		}
		urgency.find(got)
		credentials.find(got)
	})
}

func TestRepliesToFreemail(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         bool
	}{
		{"from a webmail mailbox", "From: Boss <boss.office@gmail.com>\n", true},
		{"from a company", "From: Boss <boss@acme.example>\n", false},
		{"Reply-To diverted to webmail", "From: AP <ap@acme.example>\nReply-To: acme.ap@gmx.de\n", true},
		{"webmail From, replies to a company", "From: Ana <ana@gmail.com>\nReply-To: Ana <ana@acme.example>\n", false},
		{"unparsable Reply-To: the reply goes to From", "From: Boss <boss@gmail.com>\nReply-To: <<<\n", true},
		{"domain case", "From: boss@GMAIL.COM\n", true},
		{"China's largest webmail", "From: 王总 <wang.zong.office@qq.com>\n", true},
		{"Korea's", "From: Kim <kim.ceo@naver.com>\n", true},
	} {
		m := msg(tc.header + "Subject: x\n\nhi\n")
		if got := repliesToFreemail(m); got != tc.want {
			t.Errorf("%s: repliesToFreemail = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestMentionsRecipient(t *testing.T) {
	for _, tc := range []struct {
		name, rcpt, subject, body string
		want                      bool
	}{
		{"address in the subject", "ana.silva@example.com", "ana.silva@example.com: your mailbox is full", "Hello,\n", true},
		{"address in the greeting", "ana.silva@example.com", "Notice", "Dear ana.silva@example.com,\n", true},
		{"user name in the greeting", "jdoe77@example.com", "Notice", "Hello jdoe77,\nyour account...\n", true},
		{"dotted local part as written", "ana.silva@example.com", "Notice", "Dear Ana.Silva,\n", true},
		{"local part closing a sentence", "ana_silva@example.com", "Notice", "Olá ana_silva.\n", true},
		{"the reader's name, not the address", "ana.silva@example.com", "Check-in is open", "Dear Ana Silva,\n", false},
		{"a longer name containing the local part", "ana.silva@example.com", "Notice", "Dear xana.silvax,\n", false},
		{"another domain's address", "ana.silva@example.com", "Notice", "Dear ana.silva@other.example,\n", false},
		{"a plain first name is no user name", "john@example.com", "Notice", "Dear John,\n", false},
		{"the address below the greeting", "ana.silva@example.com", "Notice", "Hi Ana,\nsent to ana.silva@example.com\n", false},
		{"no greeting", "jdoe77@example.com", "Notice", "jdoe77 wrote:\n", false},
	} {
		m := msg("From: a@sender.example\nTo: " + tc.rcpt + "\nSubject: " + tc.subject + "\n\n" + tc.body)
		if got := mentionsRecipient(m, tc.rcpt); got != tc.want {
			t.Errorf("%s: mentionsRecipient = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Google Calendar sends each attendee its own copy of an invitation,
// the attendee's address closing the subject.
func TestMentionsRecipientCalendarInvitee(t *testing.T) {
	const invitation = "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nReview\nThursday Dec 10, 2026\n" +
		"--b\nContent-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\nMETHOD:REQUEST\nBEGIN:VEVENT\nSUMMARY:Review\nEND:VEVENT\nEND:VCALENDAR\n--b--\n"
	const plain = "Content-Type: text/plain\n\nHello,\n"
	for _, tc := range []struct {
		name, subject, body string
		want                bool
	}{
		{"the invitation's own subject", "Invitation: Review @ Thu Dec 10, 2026 3pm - 3:30pm (CET) (Ana.Silva@example.com)", invitation, false},
		{"that subject without an invitation", "Invitation: Review @ Thu Dec 10, 2026 3pm - 3:30pm (CET) (ana.silva@example.com)", plain, true},
		{"an invitation addressing the reader elsewhere in the subject", "ana.silva@example.com: your mailbox is full", invitation, true},
	} {
		m := msg("From: a@sender.example\nTo: ana.silva@example.com\nSubject: " + tc.subject + "\nMIME-Version: 1.0\n" + tc.body)
		if got := mentionsRecipient(m, "ana.silva@example.com"); got != tc.want {
			t.Errorf("%s: mentionsRecipient = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func FuzzContainsAddressWord(f *testing.F) {
	f.Add("dear ana.silva,", "ana.silva")
	f.Add("xana.silva ana.silva", "ana.silva")
	f.Fuzz(func(t *testing.T, s, w string) {
		got := containsAddressWord(s, w)
		if got && !strings.Contains(s, w) {
			t.Fatalf("containsAddressWord(%q, %q) = true, but s does not contain w", s, w)
		}
		if w != "" && strings.Contains(" "+s+" ", " "+w+" ") && !got {
			t.Fatalf("containsAddressWord(%q, %q) = false for a space-separated word", s, w)
		}
	})
}

func TestEveryTextPhraseSetIsLoaded(t *testing.T) {
	if len(textPhrases.sets) != foundSets {
		t.Fatalf("%d text phrase sets, %d found* places", len(textPhrases.sets), foundSets)
	}
	for i, ps := range textPhrases.sets {
		if ps == nil || len(ps.phrases) == 0 {
			t.Errorf("text phrase set %d is missing or empty", i)
		}
	}
}

// TestCombinedSignsNeedEveryPart: the text rules that combine signs fire
// only on the whole combination, since each part alone turns up in honest
// mail: a shop tells a contest's winner to send a name and an address,
// a wallet warns about malware, a merchant's receipt says "if you did not
// make this purchase". What sets the fraud apart is the rest: where the
// answer goes, the extortionist's own words, a webmail "billing" desk, a
// picture of the QR code the text says to scan.
func TestCombinedSignsNeedEveryPart(t *testing.T) {
	const head = "Date: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <c.1@example.org>\n"
	const contest = head + "Subject: You have won our autumn photo contest!\n\n" +
		"Congratulations! You have won our autumn photo contest. Please reply with your full name and address so we can post the voucher.\n"
	const receipt = head + "Subject: Your order #1182\n\n" +
		"Thank you for your order of 49.99 EUR. If you did not make this purchase, contact us at +44 20 7946 0018.\n"
	const alice = "From: Alice <alice@example.org>\nTo: bob@example.net\n" + head + "Subject: hi\n\n"
	const mfa = head + "Subject: MFA expires today\nMIME-Version: 1.0\nContent-Type: multipart/related; boundary=b\n\n--b\nContent-Type: text/plain\n\n" +
		"Action required: your MFA expires today. To keep access, scan the QR code below with your phone and sign in to your account.\n"
	const qrPicture = "\n--b\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--b--\n"
	for _, tc := range []struct {
		symbol, name, raw string
		want              bool
	}{
		{TextAdvanceFee, "a contest from the shop's own domain", "From: Riverside Books <events@riversidebooks.example>\n" + contest, false},
		{TextAdvanceFee, "a contest from a webmail mailbox", "From: Riverside Books <riversidebooks.prizes@gmail.com>\n" + contest, true},
		{TextAdvanceFee, "a contest whose replies go to webmail", "From: Riverside Books <events@riversidebooks.example>\nReply-To: prize.desk@outlook.com\n" + contest, true},
		{TextExtortion, "a friend", alice + "Loved the video of you at the bitcoin meetup last night!\n", false},
		{TextExtortion, "a wallet's security advice", alice + "Malware that gains access to your device can steal your bitcoin. Keep your seed phrase offline.\n", false},
		{TextExtortion, "a threat without a payment", alice + "I recorded a video of you. Reply to me.\n", false},
		{TextExtortion, "the threat and the wallet", alice + "I recorded a video of you. Pay 1000 USD in BTC to the address below or everyone sees it.\n", true},
		{TextExtortion, "the threat in Portuguese", alice + "Gravei um vídeo seu pela webcam. Envie 500 USD em bitcoin para a carteira abaixo.\n", true},
		{TextExtortion, "the hacker in the first person", alice + "I've hacked your phone and installed spyware on your device. Send 1950 USD in Ethereum or your contacts get the files.\n", true},
		{TextExtortion, "a security newsletter", alice + "If someone hacked your phone they could empty your Ethereum wallet: check for spyware.\n", false},
		{TextExtortion, "the hacker in German", alice + "Ich habe Ihr Gerät gehackt. Zahlen Sie 1000 EUR in Bitcoin.\n", true},
		{TextPhishAction, "payroll diversion from webmail", "From: Ana Silva <ana.silva.home@gmail.com>\n" + head + "Subject: Direct deposit\n\nHi, I changed banks and would like to update my direct deposit before the next payroll. What do you need from me?\n", true},
		{TextPhishAction, "a wire transfer asked from webmail", "From: Robert Miller <robert.miller.ceo@gmail.com>\n" + head + "Subject: Quick request\n\nI need you to process a wire transfer for a vendor today. I'm in a meeting and can't take calls.\n", true},
		// The transfer asked with its urgency in the middle of the ask.
		{TextPhishAction, "an urgent wire transfer asked from webmail", "From: Robert Miller <robert.miller.ceo@gmail.com>\n" + head + "Subject: Quick request\n\nI need you to handle an urgent wire transfer for a vendor today. I'm in a meeting and can't take calls.\n", true},
		{TextPhishAction, "an urgent transfer asked from webmail, in Spanish", "From: Roberto Díaz <roberto.diaz.direccion@gmail.com>\n" + head + "Subject: Urgente\n\n¿Puedes realizar una transferencia urgente hoy? Estoy en una reunión y no puedo atender llamadas.\n", true},
		{TextPhishAction, "a friend's wire transfer done, from webmail", "From: Tom Becker <tom.becker77@gmail.com>\n" + head + "Subject: rent\n\nI made the wire transfer for the rent this morning; the urgent repair is booked for Thursday.\n", false},
		{TextPhishAction, "HR asking from its own domain", "From: Acme HR <hr@acme-corp.example>\n" + head + "Subject: Direct deposit\n\nIf you changed banks, please update your direct deposit in the HR portal before the next payroll.\n", false},
		{TextLeadGen, "an SEO pitch from webmail", "From: Rahul Sharma <rahul.seo.expert@gmail.com>\n" + head + "Subject: Re: Website ranking proposal\n\nI was checking your website and noticed it is not ranking on the first page of Google. Can I send you a free audit report?\n", true},
		{TextLeadGen, "an SEO pitch from an agency's domain", "From: Rank Agency <hello@rankagency.example>\n" + head + "Subject: Website ranking\n\nI was checking your website and noticed it is not ranking on the first page of Google. Can I send you a free audit report?\n", false},
		{TextLeadGen, "a colleague on search ranking, from the company", alice + "Our docs are not ranking on the first page of Google for the product name any more; can you look at the sitemap?\n", false},
		{TextLeadGen, "an attendee list for sale", "From: Emma Clark <emma@expo-data.example>\n" + head + "Subject: Web Summit 2025 attendees\n\nWould you be interested in acquiring the attendees list of Web Summit 2025? 70,000 verified contacts with emails.\n", true},
		{TextLeadGen, "customer databases for sale, in Russian", "From: Baza <info@baza.example>\n" + head + "Subject: Базы\n\nПредлагаем актуальные базы данных клиентов: компании, телефоны, e-mail.\n", true},
		{TextLeadGen, "an event's own attendee notice", "From: Web Summit <hello@websummit.example>\n" + head + "Subject: Your ticket\n\nYour ticket is attached. The attendee app opens on Monday: sign in with this address.\n", false},
		{TextCallback, "a receipt from the merchant's domain", "From: Shop <orders@shop.example>\n" + receipt, false},
		{TextCallback, "a receipt from a webmail mailbox", "From: Shop Billing <shop.billing.dept@gmail.com>\n" + receipt, true},
		{TextPhishAction, "a QR code to scan, in a picture", "From: IT Desk <it@corp.example>\n" + mfa + qrPicture, true},
		{TextPhishAction, "a QR code to scan, and no picture", "From: IT Desk <it@corp.example>\n" + mfa + "\n--b--\n", false},
		{TextPhishAction, "a picture, and no QR code to scan", "From: IT Desk <it@corp.example>\n" + strings.Replace(mfa, "scan the QR code below", "see the picture below", 1) + qrPicture, false},
	} {
		got := run(t, nil, msg(tc.raw), nil)
		if _, fired := got[tc.symbol]; fired != tc.want {
			t.Errorf("%s: %s fired %v, want %v (%v)", tc.name, tc.symbol, fired, tc.want, got)
		}
	}
}

// TestOffersNoHonestSellerMakes: the words of a job, a loan or a pharmacy
// are everyday mail; income from home, credit without a credit check and a
// prescription-only medicine without the prescription are offers no
// honest employer, lender or pharmacy makes.
func TestOffersNoHonestSellerMakes(t *testing.T) {
	const alice = "From: Alice <alice@example.org>\nTo: bob@example.net\nDate: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <o.1@example.org>\nSubject: hi\n\n"
	for _, tc := range []struct {
		symbol, name, raw string
		want              bool
	}{
		{TextMoneyPromise, "a remote job", alice + "We are hiring a backend engineer, fully remote: you can work from home anywhere in the EU.\n", false},
		{TextMoneyPromise, "income from home", alice + "Discover how thousands make money from home with just 250 USD.\n", true},
		{TextMoneyPromise, "a loan's terms", alice + "Your loan of 15,000 EUR was approved after the usual credit check.\n", false},
		{TextMoneyPromise, "credit without the check, in German", alice + "Ihr Kredit über 15.000 € wurde genehmigt, ohne Schufa und ohne Einkommensnachweis.\n", true},
		{TextPharma, "a pharmacy's reminder", alice + "Your repeat prescription for sildenafil is ready to collect. Bring your prescription card.\n", false},
		{TextPharma, "an over-the-counter offer", alice + "Hay fever season: antihistamines without a prescription, 20% off this week.\n", false},
		{TextPharma, "the medicine without the prescription", alice + "Buy Cialis and Tramadol online, no prescription required, discreet shipping.\n", true},
		{TextPharma, "the medicine without the prescription, in German", alice + "Viagra rezeptfrei? Jetzt ohne Rezept bestellen, Lieferung in 24 Stunden.\n", true},
	} {
		got := run(t, nil, msg(tc.raw), nil)
		if _, fired := got[tc.symbol]; fired != tc.want {
			t.Errorf("%s: %s fired %v, want %v (%v)", tc.name, tc.symbol, fired, tc.want, got)
		}
	}
}

// TestHostListLooksUpBoundedSuffixes: a link's host of a megabyte of
// labels ("a.a.a...bit.ly") is looked up by the suffixes that could be
// listed, not by every one of its half a million suffixes, a read of the
// host per label (10 s for one link). What is listed is still found.
func TestHostListLooksUpBoundedSuffixes(t *testing.T) {
	long := strings.Repeat("a.", 500_000)
	for _, tt := range []struct {
		list hostList
		host string
		want bool
	}{
		{shorteners, long + "bit.ly", true},
		{shorteners, long + "Bit.Ly.", true},
		{shorteners, long + "example.com", false},
		{freeHosting, long + "x.s3.amazonaws.com", true},
		{freeHosting, strings.Repeat("b", 1<<20) + ".com", false},
	} {
		if got := tt.list.has(tt.host); got != tt.want {
			t.Errorf("has(%.20q...%q) = %v, want %v", tt.host, tt.host[len(tt.host)-20:], got, tt.want)
		}
		read := 0
		for name := range tt.list.candidates(tt.host) {
			read += len(name)
		}
		if bound := tt.list.longest * tt.list.longest; read > bound {
			t.Errorf("%d bytes of host looked up, want at most %d", read, bound)
		}
	}
}

// TestPhishActionLinksLeaveTheSender: the words of a phish (a deadline and
// a sign-in) are those of a bank's fraud alert or an IT department's
// password notice; what tells them apart is where the link goes. Home, to
// the sender's own organisation, is no phish, unless home is an
// impostor's domain, which phishers send from and host on alike.
// TestBrandHomeIsHamEvidence: a listed brand's mail from its own domain
// that sends the reader nowhere else (links, forms, Reply-To) cannot
// phish the reader; it earns FROM_BRAND_HOME, whatever it says. A link
// away, an answer going elsewhere, webmail or a look-alike does not.
func TestBrandHomeIsHamEvidence(t *testing.T) {
	const body = "Date: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <p.1@example.org>\nSubject: Your order has shipped\n" +
		"MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n<p>Your order is on its way.</p>"
	for _, tc := range []struct {
		name, from, extra, link string
		want                    bool
	}{
		{"the brand linking home", "Amazon <shipment-tracking@amazon.co.uk>", "", "https://www.amazon.co.uk/gp/your-account/order-details", true},
		{"the brand with no link", "PayPal <service@paypal.de>", "", "", true},
		{"a public body linking home", "GOV.UK Notify <noreply@notifications.service.gov.uk>", "", "https://www.passport.service.gov.uk/track", true},
		{"the brand linking elsewhere", "Amazon <shipment-tracking@amazon.co.uk>", "", "https://amazon-track.example.net/", false},
		{"replies going elsewhere", "PayPal <service@paypal.de>", "Reply-To: paypal.billing@example.net\n", "", false},
		{"webmail at a brand's domain", "Ana <ana.silva@gmail.com>", "", "", false},
		{"a look-alike domain", "Amazon <shipment@amazon-co-uk.example>", "", "https://amazon-co-uk.example/", false},
		{"an unlisted company", "Shop <orders@shop.example>", "", "https://shop.example/", false},
		{"a callback lure from the brand's domain", "PayPal <service@paypal.com>", "", "", false},
		{"the brand linking its other domain", "WeTransfer <noreply@wetransfer.com>", "", "https://we.tl/t-AbCdEf", true},
		{"a file shared through the brand", "Google Drive <drive-shares-dm-noreply@google.com>", "", "https://docs.google.com/document/d/1Ab/edit", false},
	} {
		raw := "From: " + tc.from + "\n" + tc.extra + body
		switch {
		case strings.HasPrefix(tc.name, "a callback lure"):
			raw = strings.Replace(raw, "Your order is on its way.", "You sent 499.99 USD to Norton. If you did not authorize this payment, call +1 808 555 0199.", 1)
		case strings.HasPrefix(tc.name, "a file shared"):
			raw = strings.Replace(raw, "Your order is on its way.", "Maria shared a document with you.", 1)
		}
		if tc.link != "" {
			raw = strings.Replace(raw, "</p>", " <a href=\""+tc.link+"\">Track</a></p>", 1)
		}
		got := run(t, nil, msg(raw), nil)
		if _, fired := got[FromBrandHome]; fired != tc.want {
			t.Errorf("%s: %s fired %v, want %v (%v)", tc.name, FromBrandHome, fired, tc.want, got)
		}
	}
}

// TestFreeHostIsHomeToItsOwnSite: a site on a free host mailing its own
// users (an app's sign-in link from Firebase Auth's default sender) links
// home; a link to the same host from anyone else, or to another site on
// it, is still a page anyone could have put up.
func TestFreeHostIsHomeToItsOwnSite(t *testing.T) {
	const body = "Date: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <p.1@example.org>\nSubject: Reset your password\n" +
		"MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n<p>Follow this link to reset your password.</p>"
	for _, tc := range []struct {
		name, from, link string
		want             bool
	}{
		{"the app's own site", "noreply@acme-tasks.firebaseapp.com", "https://acme-tasks.firebaseapp.com/__/auth/action?mode=resetPassword", false},
		{"another app on the same host", "noreply@acme-tasks.firebaseapp.com", "https://acme-login.firebaseapp.com/", true},
		{"the host from a company", "IT <it@acme-corp.example>", "https://acme-tasks.firebaseapp.com/", true},
		{"a page below a listed host", "Sites <sites@example.org>", "https://sites.google.com/view/acme-login", true},
	} {
		raw := "From: " + tc.from + "\n" + strings.Replace(body, "</p>", " <a href=\""+tc.link+"\">Reset</a></p>", 1)
		got := run(t, nil, msg(raw), nil)
		if _, fired := got[URLFreeHosting]; fired != tc.want {
			t.Errorf("%s: %s fired %v, want %v (%v)", tc.name, URLFreeHosting, fired, tc.want, got)
		}
	}
}

func TestPhishActionLinksLeaveTheSender(t *testing.T) {
	const body = "Date: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <p.1@example.org>\nSubject: Security alert\n" +
		"MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n" +
		"<p>We noticed suspicious activity on your card. Please sign in to your account to review it.</p>"
	for _, tc := range []struct {
		name, from, link string
		want             bool
	}{
		{"the bank's own site", "Chase <alerts@chase.com>", "https://secure.chase.com/alerts", false},
		{"the company's own subdomain", "IT <servicedesk@acme-corp.example>", "https://passwordreset.acme-corp.example/", false},
		{"a page elsewhere", "Chase <alerts@chase.com>", "https://chase-review.example.net/login", true},
		{"the brand's other domain", "Microsoft <account-security-noreply@accountprotection.microsoft.com>", "https://account.live.com/activity", false},
		{"one link home, one elsewhere", "Chase <alerts@chase.com>", "https://secure.chase.com/\">x</a><a href=\"https://evil.example.net/", true},
		{"home is a look-alike", "PayPal <service@paypal-resolution.com>", "https://www.paypal-resolution.com/signin", true},
		{"home claims a brand", "PayPal <service@account-review.example>", "https://account-review.example/signin", true},
		{"no From domain", "Security", "https://secure.chase.com/alerts", true},
		// One government linking another of its sites is at home.
		{"GOV.UK Notify to a service", "GOV.UK <noreply@notifications.service.gov.uk>", "https://www.passport.service.gov.uk/track", false},
		{"a council to GOV.UK", "Council <tax@bristol.gov.uk>", "https://www.gov.uk/council-tax", false},
		{"a government to a company", "GOV.UK <noreply@notifications.service.gov.uk>", "https://passport-service.example.com/track", true},
		{"a company to a government site", "Chase <alerts@chase.com>", "https://www.gov.uk/", true},
	} {
		raw := "From: " + tc.from + "\n" + strings.Replace(body, "</p>", " <a href=\""+tc.link+"\">Review</a></p>", 1)
		got := run(t, nil, msg(raw), nil)
		if _, fired := got[TextPhishAction]; fired != tc.want {
			t.Errorf("%s: %s fired %v, want %v (%v)", tc.name, TextPhishAction, fired, tc.want, got)
		}
	}
}

// TestReceiptLineItemsAreNoPaymentRequest: an order confirmation lists its
// delivery fee, in every language; a parcel scam asks the reader to pay it.
func TestReceiptLineItemsAreNoPaymentRequest(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"Subtotal £14.90 Delivery Fee £1.99 Total £16.89", false},
		{"Subtotal de los productos: 29,99 € Gastos de envío: 0,00 €", false},
		{"Casque 349,99 € Frais de livraison offerts", false},
		{"Sneakers 89,95 € Spese di spedizione 0,00 €", false},
		{"Pizza R$ 49,90 Taxa de entrega R$ 5,99", false},
		{"Versandgebühr 4,95 €. Melden Sie sich an, um Ihre Bestellung zu sehen.", false},
		{"Inicie sesión para ver su pedido.", false},
		{"Your parcel is on hold. Pay the delivery fee of 1.99 EUR to release it.", true},
		{"Des frais de livraison de 2,49 EUR restent à régler. Régler les frais sous 48 heures.", true},
		{"Para recibir su paquete, pague los gastos de envío de 1,99 €.", true},
		{"O seu pacote está retido: pague a taxa de entrega.", true},
	} {
		raw := "From: Shop <orders@shop.example>\nDate: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <r.1@shop.example>\nSubject: Your order\n" +
			"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n" + tc.text + "\n"
		got := run(t, nil, msg(raw), nil)
		if _, fired := got[TextCredentials]; fired != tc.want {
			t.Errorf("%q: %s fired %v, want %v", tc.text, TextCredentials, fired, tc.want)
		}
	}
}

// TestSignInCountsWhenItLeadsAway: "sign in to your account" is in every
// service's genuine mail, linking the service's own site; it asks for
// credentials only when the sign-in page is somewhere else.
func TestSignInCountsWhenItLeadsAway(t *testing.T) {
	const body = "Date: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <s.1@example.org>\nSubject: Your statement\n" +
		"MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n" +
		"<p>Your October statement is ready. Sign in to your account to view it: <a href=\"LINK\">Statement</a></p>"
	for _, tc := range []struct {
		name, from, link string
		want             bool
	}{
		{"the service's own site", "AWS <aws-billing@amazon.com>", "https://console.aws.amazon.com/billing", false},
		{"a page elsewhere", "Billing <billing@amazon.com>", "https://billing-view.example.net/login", true},
		{"the impostor's own site", "Amazon <billing@amazon-billing.example>", "https://amazon-billing.example/login", true},
		{"no link at all", "AWS <aws-billing@amazon.com>", "", false},
	} {
		raw := "From: " + tc.from + "\n" + body
		if tc.link == "" {
			raw = strings.Replace(raw, "<a href=\"LINK\">Statement</a>", "the billing console", 1)
		}
		got := run(t, nil, msg(strings.Replace(raw, "LINK", tc.link, 1)), nil)
		if _, fired := got[TextCredentials]; fired != tc.want {
			t.Errorf("%s: %s fired %v, want %v (%v)", tc.name, TextCredentials, fired, tc.want, got)
		}
	}
}

// TestAbusedTLDs: a sender or a link under a top-level domain that is
// mostly spam counts; a name merely ending in those letters, or under a
// listed word used as a second-level label, does not.
func TestAbusedTLDs(t *testing.T) {
	for _, tc := range []struct {
		from, link string
		want       []string
		not        []string
	}{
		{"Parcel <info@parcel-update.top>", "https://track.parcel-update.top/p", []string{FromAbusedTLD, URLAbusedTLD}, nil},
		{"Shop <news@shop.example>", "https://promo-deals.sbs/x", []string{URLAbusedTLD}, []string{FromAbusedTLD}},
		{"Shop <news@shop.example>", "https://www.top.example/laptop", nil, []string{URLAbusedTLD, FromAbusedTLD}},
		{"Desktop <news@desktop.com>", "https://desktop.com/", nil, []string{URLAbusedTLD, FromAbusedTLD}},
		{"Shop <news@SHOP.CFD.>", "https://shop.example/", []string{FromAbusedTLD}, []string{URLAbusedTLD}},
	} {
		raw := "From: " + tc.from + "\nDate: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <a.1@example.org>\nSubject: news\n" +
			"MIME-Version: 1.0\nContent-Type: text/html\n\n<p>Our autumn news. <a href=\"" + tc.link + "\">Read more</a></p>\n"
		got := run(t, nil, msg(raw), nil)
		for _, s := range tc.want {
			if _, ok := got[s]; !ok {
				t.Errorf("%s / %s: %s missing (%v)", tc.from, tc.link, s, got)
			}
		}
		for _, s := range tc.not {
			if _, ok := got[s]; ok {
				t.Errorf("%s / %s: %s fired (%v)", tc.from, tc.link, s, got)
			}
		}
	}
	// A voicemail behind a link to one of them is a lure.
	raw := "From: Voice <vm@pbx.example>\nDate: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <a.2@example.org>\nSubject: New voicemail\n" +
		"MIME-Version: 1.0\nContent-Type: text/html\n\n<p>You have a new voicemail. <a href=\"https://vm-play.cyou/listen\">Play</a></p>\n"
	if _, ok := run(t, nil, msg(raw), nil)[TextLureLink]; !ok {
		t.Errorf("%s missing for a voicemail on an abused TLD", TextLureLink)
	}
}

// TestRecipientInFragment: a phishing kit's link carries the reader's
// address after the "#", plain or base64, to pre-fill its login page; an
// app routing in the fragment, an unsubscribe link's query and someone
// else's address are not that.
func TestRecipientInFragment(t *testing.T) {
	for _, tc := range []struct {
		link string
		want bool
	}{
		{"https://login.example.net/owa/#ana.silva@example.com", true},
		{"https://login.example.net/owa/#ANA.SILVA%40example.com", true},
		{"https://login.example.net/#YW5hLnNpbHZhQGV4YW1wbGUuY29t", true},    // base64
		{"https://login.example.net/#YW5hLnNpbHZhQGV4YW1wbGUuY29tCg", true},  // base64 of more than the address
		{"https://login.example.net/?e=YW5hLnNpbHZhQGV4YW1wbGUuY29t", false}, // a query reaches the server: trackers
		{"https://news.example.com/unsubscribe?email=ana.silva@example.com", false},
		{"https://app.example.com/#/invite?email=ana.silva@example.com", false},
		{"https://login.example.net/#tom@example.com", false},
		{"https://docs.example.com/guide#install", false},
	} {
		raw := "From: IT <it@corp.example>\nTo: Ana Silva <ana.silva@example.com>\nDate: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <f.1@example.org>\nSubject: Mailbox\n" +
			"MIME-Version: 1.0\nContent-Type: text/html\n\n<p>Your mailbox. <a href=\"" + tc.link + "\">Open</a></p>\n"
		got := run(t, nil, msg(raw), nil)
		if _, fired := got[URLRcptFragment]; fired != tc.want {
			t.Errorf("%s: %s fired %v, want %v", tc.link, URLRcptFragment, fired, tc.want)
		}
	}
	// The envelope's recipient, when there is one, is the reader.
	raw := "From: IT <it@corp.example>\nTo: list@corp.example\nDate: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <f.2@example.org>\nSubject: Mailbox\n" +
		"MIME-Version: 1.0\nContent-Type: text/html\n\n<p><a href=\"https://login.example.net/#bob@corp.example\">Open</a></p>\n"
	if _, ok := run(t, &scanner.Envelope{Rcpts: []string{"Bob@corp.example"}}, msg(raw), nil)[URLRcptFragment]; !ok {
		t.Errorf("%s missing for the envelope recipient", URLRcptFragment)
	}
}

// TestFromNameShowsRecipientDomain: a display name showing the reader's
// own domain, on mail from another organisation, dresses as the reader's
// IT department; the organisation's own mail and a vendor naming itself
// are not that.
func TestFromNameShowsRecipientDomain(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     bool
	}{
		{"acme-corp.com IT Helpdesk <it@mail-quota.example>", "ana.silva@acme-corp.com", true},
		{"\"Webmail ACME-CORP.COM\" <admin@server7.example>", "Ana <ana.silva@acme-corp.com>", true},
		{"acme-corp.com IT Helpdesk <it@acme-corp.com>", "ana.silva@acme-corp.com", false},      // their own IT
		{"acme-corp.com IT Helpdesk <it@mail.acme-corp.com>", "ana.silva@acme-corp.com", false}, // a subdomain of theirs
		{"Acme Corp Slack <feedback@slack.example>", "ana.silva@acme-corp.com", false},          // a name, not the domain
		{"myacme-corp.com Support <s@shop.example>", "ana.silva@acme-corp.com", false},          // another domain ending alike
		{"Tom Becker <tom@partner.example>", "ana.silva@acme-corp.com", false},
	} {
		raw := "From: " + tc.from + "\nTo: " + tc.to + "\nDate: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <n.1@example.org>\nSubject: Mailbox\n\nYour mailbox.\n"
		got := run(t, nil, msg(raw), nil)
		if _, fired := got[FromNameRcpt]; fired != tc.want {
			t.Errorf("%s to %s: %s fired %v, want %v", tc.from, tc.to, FromNameRcpt, fired, tc.want)
		}
	}
}

// TestDeadlinesAtHome: "within 24 hours", "action required" and
// "suspicious activity" are what a shop's order, a sign-up and a
// new-device alert say, linking the sender's own site; they count with a
// link elsewhere, a reply to webmail or no link at all.
func TestDeadlinesAtHome(t *testing.T) {
	const head = "Date: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <d.1@example.org>\nSubject: Your order\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n"
	for _, tc := range []struct {
		name, from, body string
		want             bool
	}{
		{"a shop linking its order page", "Kettle <orders@kettleandco.example>", `<p>It ships within 24 hours. <a href="https://kettleandco.example/orders/1">Track it</a></p>`, false},
		{"a new-device alert linking home", "Fleetwise <security@fleetwise.example>", `<p>Suspicious activity? <a href="https://app.fleetwise.example/security">Reset your password</a></p>`, false},
		{"a link elsewhere", "Fleetwise <security@fleetwise.example>", `<p>Suspicious activity? <a href="https://fleetwise-security.pages.dev/">Reset your password</a></p>`, true},
		{"no link at all", "Order Desk <billing@orderdesk.example>", `<p>The charge appears on your statement within 24 hours. Call +1 888 555 0147.</p>`, true},
		{"a reply to webmail", "Desk <desk@orderdesk.example>\nReply-To: desk.orders@gmail.com", `<p>Answer within 24 hours. <a href="https://orderdesk.example/">Our site</a></p>`, true},
	} {
		got := run(t, nil, msg("From: "+tc.from+"\n"+head+tc.body), nil)
		if _, u := got[TextUrgency]; u != tc.want {
			t.Errorf("%s: %s %v, want %v (%v)", tc.name, TextUrgency, u, tc.want, got)
		}
	}
}

// TestPaymentMethodUpdateAtHome: any subscription asks to update the
// payment method on file when a card nears its expiry date, linking its
// own billing page; the request counts as one for credentials only when
// the way to act on it leads elsewhere, as a request to sign in does.
func TestPaymentMethodUpdateAtHome(t *testing.T) {
	const head = "From: Notebooklane Billing <billing@notebooklane.example>\nDate: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <p.1@example.org>\nSubject: Your plan renews on 14 December\n" +
		"MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n"
	for _, tc := range []struct {
		name, body string
		want       bool
	}{
		{"its own billing page", `<p>To keep your workspace, update your payment method in <a href="https://app.notebooklane.example/settings/billing">Settings</a>.</p>`, false},
		{"a page elsewhere", `<p>To keep your workspace, update your payment method <a href="https://notebooklane-billing.pages.dev/">here</a>.</p>`, true},
		{"a form", `<form action="https://app.notebooklane.example/pay"><p>Update your billing details below.</p></form>`, true},
	} {
		got := run(t, nil, msg(head+tc.body), nil)
		if _, c := got[TextCredentials]; c != tc.want {
			t.Errorf("%s: %s %v, want %v (%v)", tc.name, TextCredentials, c, tc.want, got)
		}
	}
}

// TestLuresInDocuments: the charge and the number to call, or the threat
// and the wallet, printed in an attached PDF count as in the text; the
// same invoice from a business's own domain is a business's.
func TestLuresInDocuments(t *testing.T) {
	pdf := func(lines ...string) string {
		content := "BT /F1 12 Tf 72 720 Td"
		for _, l := range lines {
			content += " (" + l + ") Tj 0 -16 Td"
		}
		content += " ET"
		return base64.StdEncoding.EncodeToString([]byte("%PDF-1.7\n4 0 obj\n<< /Length 1 >>\nstream\n" + content + "\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"))
	}
	mail := func(from, data string) string {
		return "From: " + from + "\nTo: ana@example.com\nDate: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <d.1@example.org>\nSubject: Invoice attached\n" +
			"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nPlease find your invoice attached.\n" +
			"--b\nContent-Type: application/pdf; name=invoice.pdf\nContent-Disposition: attachment; filename=invoice.pdf\nContent-Transfer-Encoding: base64\n\n" + data + "\n--b--\n"
	}
	charge := pdf("Total Device Protection renewal", "Amount charged: USD 399.99", "If you did not authorize this payment call +1 808 555 0199")
	for _, tc := range []struct {
		name, raw, sym string
		want           bool
	}{
		{"a charge to call about, from webmail", mail("Accounts <accounts.team882@gmail.com>", charge), TextCallback, true},
		{"the same invoice from a business", mail("Billing <billing@northwind-logistics.com>", charge), TextCallback, false},
		{"an ordinary invoice from webmail", mail("Jo <jo.plumber@gmail.com>", pdf("Invoice 12", "Boiler service, 1 hour: EUR 80")), TextCallback, false},
		{"a threat and a wallet", mail("x@example.net", pdf("I recorded you through your camera", "Send 1450 USD in Bitcoin to 1F3kQx7LmN9pR2sT4vW6yZ8bC1dE3fG5hJ")), TextExtortion, true},
	} {
		if _, got := run(t, nil, msg(tc.raw), nil)[tc.sym]; got != tc.want {
			t.Errorf("%s: %s %v, want %v", tc.name, tc.sym, got, tc.want)
		}
	}
}

// TestJobScam: pay by the day with no experience, and the recruiter on
// a chat app, is a job scam; a friend's new job and a job board's
// listing are not.
func TestJobScam(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       bool
	}{
		{"daily salary on WhatsApp", "Flexible part-time position, no experience required. Daily salary: $300 - $800. Contact our recruiter on WhatsApp: +44 7700 900123.", true},
		{"paid daily on Telegram", "Work from your phone 60 minutes a day, paid daily. Write to our HR manager on Telegram.", true},
		{"a friend's new job", "I found a part-time job at the library! Text me on WhatsApp and I'll tell you all about it.", false},
		{"a job board's listing", "New jobs for you: Barista, part-time, no experience required. Apply on the company's page.", false},
	} {
		raw := okHeaders + "\n" + tc.text + "\n"
		if _, got := run(t, nil, msg(raw), nil)[TextJobScam]; got != tc.want {
			t.Errorf("%s: %s %v, want %v", tc.name, TextJobScam, got, tc.want)
		}
	}
}

// TestMiracleCure: a body transformed without effort, guaranteed, is
// supplement spam; a clinic writing about weight loss and a shop
// guaranteeing refunds are not.
func TestMiracleCure(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       bool
	}{
		{"belly fat without diet", "This 10-second morning ritual melts up to 20 lbs of stubborn belly fat in 3 weeks, without diet or exercise.", true},
		{"keto gummies, money back", "Keto Gummies: results in days. 100% natural with a 60-day money-back guarantee.", true},
		{"a clinic on weight loss", "Our dietitians run a weight loss group on Tuesdays: realistic goals, a balanced diet and exercise you enjoy.", false},
		{"a shop's guarantee", "Every kettle comes with a 30-day money-back guarantee and free returns.", false},
		{"news on blood sugar", "The study followed 2,000 adults to see how walking after meals affects blood sugar levels.", false},
	} {
		raw := okHeaders + "\n" + tc.text + "\n"
		if _, got := run(t, nil, msg(raw), nil)[TextMiracleCure]; got != tc.want {
			t.Errorf("%s: %s %v, want %v", tc.name, TextMiracleCure, got, tc.want)
		}
	}
}

// TestBrandAtHomeSetsItsOwnDeadlines: a listed brand writing from its own
// domain, its links and replies staying there, may warn and ask for
// payment: it sends the reader to itself. The same words with a link or a
// Reply-To elsewhere, or from the brand's webmail, still count.
func TestBrandAtHomeSetsItsOwnDeadlines(t *testing.T) {
	const body = "Date: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <b.1@example.org>\nSubject: Your storage is full\n" +
		"MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n" +
		"<p>Your storage is full. Please update your card details to keep your files: <a href=\"LINK\">Get more storage</a></p>"
	for _, tc := range []struct {
		name, head, link string
		want             bool
	}{
		{"Google from google.com, linking Google", "From: Google <no-reply@accounts.google.com>\n", "https://one.google.com/storage", false},
		{"a bank from its own domain", "From: Chase <no.reply.alerts@chase.com>\n", "https://secure.chase.com/pay", false},
		{"Google's name, a link elsewhere", "From: Google <no-reply@accounts.google.com>\n", "https://google-storage.example.net/pay", true},
		{"replies going elsewhere", "From: Google <no-reply@accounts.google.com>\nReply-To: billing@storage-help.example\n", "https://one.google.com/storage", true},
		{"from Google's webmail", "From: Google Storage <storage.team.help@gmail.com>\n", "https://one.google.com/storage", true},
		{"an unlisted sender's own domain", "From: Storage <billing@cloud-storage.example>\n", "https://cloud-storage.example/pay", true},
		{"a council linking GOV.UK", "From: Council <tax@bristol.gov.uk>\n", "https://www.gov.uk/pay-council-tax", false},
		{"a council linking a company", "From: Council <tax@bristol.gov.uk>\n", "https://council-pay.example.com/", true},
	} {
		got := run(t, nil, msg(tc.head+strings.Replace(body, "LINK", tc.link, 1)), nil)
		_, u := got[TextUrgency]
		_, c := got[TextCredentials]
		if u != tc.want || c != tc.want {
			t.Errorf("%s: %s %v, %s %v, want %v (%v)", tc.name, TextUrgency, u, TextCredentials, c, tc.want, got)
		}
	}
}
