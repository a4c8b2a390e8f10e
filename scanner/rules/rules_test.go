package rules

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/scanner"
)

func msg(s string) *scanner.Message {
	return scanner.Parse([]byte(strings.ReplaceAll(s, "\n", "\r\n")))
}

const okHeaders = "From: Alice <alice@example.org>\nTo: bob@example.net\nDate: Mon, 9 Sep 2002 17:20:53 +0000\nMessage-ID: <1@example.org>\nSubject: lunch\n"

func run(t *testing.T, env *scanner.Envelope, m *scanner.Message, overrides map[string]float64) map[string]float64 {
	t.Helper()
	r := New(overrides)
	r.now = func() time.Time { return time.Date(2002, 9, 10, 0, 0, 0, 0, time.UTC) }
	res, err := r.Check(context.Background(), env, m)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range res.Symbols {
		got[s.Name] = s.Score
	}
	return got
}

func TestRules(t *testing.T) {
	tests := []struct {
		name string
		env  scanner.Envelope
		raw  string
		want []string // exactly these symbols
	}{
		{"clean personal mail", scanner.Envelope{}, okHeaders + "\nSee you at noon.\n", nil},
		{"missing headers", scanner.Envelope{}, "Subject: x\n\nhello\n", []string{MissingFrom, MissingDate, MissingMessageID}},
		{"impossible timezone", scanner.Envelope{}, strings.Replace(okHeaders, "+0000", "-1600", 1) + "\nhi\n", []string{DateBadTimezone}},
		{"garbage date", scanner.Envelope{}, strings.Replace(okHeaders, "Mon, 9 Sep 2002 17:20:53 +0000", "yesterday", 1) + "\nhi\n", []string{DateInvalid}},
		{"date far in the future", scanner.Envelope{}, strings.Replace(okHeaders, "2002", "2003", 1) + "\nhi\n", []string{DateFuture}},
		{"malformed message-id", scanner.Envelope{}, strings.Replace(okHeaders, "<1@example.org>", "12345", 1) + "\nhi\n", []string{MessageIDMalformed}},
		{"bulk mailer", scanner.Envelope{}, okHeaders + "X-Mailer: QuickSender 1.05\n\nhi\n", []string{MailerBulk}},
		{"display name shows another address", scanner.Envelope{}, strings.Replace(okHeaders, "Alice <", "\"service@paypal.com\" <", 1) + "\nhi\n", []string{FromDisplaySpoof}},
		{"display name shows the same address", scanner.Envelope{}, strings.Replace(okHeaders, "Alice <", "\"alice@example.org\" <", 1) + "\nhi\n", nil},
		{"reply to a freemail elsewhere", scanner.Envelope{}, okHeaders + "Reply-To: <letmego@bk.ru>\n\nhi\n", []string{ReplyToFreemail}},
		{"a platform's no-reply mail for one of its users", scanner.Envelope{}, strings.Replace(okHeaders, "alice@example.org", "drive-shares-dm-noreply@example.org", 1) + "Reply-To: Tom <tom.becker@gmail.com>\n\nhi\n", nil},
		{"a platform's notification for one of its users", scanner.Envelope{}, strings.Replace(okHeaders, "alice@example.org", "notifications@example.org", 1) + "Reply-To: Carla <carla@gmail.com>\n\nhi\n", nil},
		{"a person's mailbox replying to webmail", scanner.Envelope{}, strings.Replace(okHeaders, "alice@example.org", "noreen.ply@example.org", 1) + "Reply-To: <noreen@gmail.com>\n\nhi\n", []string{ReplyToFreemail}},
		{"raw UTF-8 subject (RFC 6532)", scanner.Envelope{}, strings.Replace(okHeaders, "lunch", "Mittagessen für zwei", 1) + "\nhi\n", nil},
		{"replacement characters in From", scanner.Envelope{}, strings.Replace(okHeaders, "Alice", "\uFFFD\uFFFD", 1) + "\nhi\n", []string{HeaderRaw8bit}},
		{"raw 8-bit subject", scanner.Envelope{}, strings.Replace(okHeaders, "lunch", "l\xfcnch", 1) + "\nhi\n", []string{HeaderRaw8bit}},
		{"empty Cc", scanner.Envelope{}, okHeaders + "Cc: \n\nhi\n", []string{HeaderEmptyAddr}},
		{"second Content-Type", scanner.Envelope{}, okHeaders + "Content-Type: text/plain\nContent-Type: text/html\n\nhi\n", []string{HeaderRepeated}},
		{"second From", scanner.Envelope{}, okHeaders + "From: PayPal <service@paypal.com>\n\nhi\n", []string{HeaderRepeated}},
		{"second Subject, other case", scanner.Envelope{}, okHeaders + "SUBJECT: other\n\nhi\n", []string{HeaderRepeated}},
		{"Received and Reply-To twice", scanner.Envelope{}, okHeaders + "Received: from a\nReceived: from b\nReply-To: a@example.org\nReply-To: b@example.org\n\nhi\n", nil},
		{"urgent", scanner.Envelope{}, okHeaders + "X-Priority: 1 (Highest)\n\nhi\n", []string{PriorityHigh}},
		{"normal priority", scanner.Envelope{}, okHeaders + "X-Priority: 3\nX-MSMail-Priority: Normal\n\nhi\n", nil},
		{"urgent to Outlook", scanner.Envelope{}, okHeaders + "X-MSMail-Priority: High\n\nhi\n", []string{PriorityHigh}},
		{"undisclosed recipients", scanner.Envelope{}, strings.Replace(okHeaders, "bob@example.net", "undisclosed-recipients:;", 1) + "\nhi\n", []string{ToUndisclosed}},
		{"a harvested list left in To and Cc", scanner.Envelope{}, strings.Replace(okHeaders, "bob@example.net", recipients(6, 0), 1) + "Cc: " + recipients(2, 6) + "\nhi\n", []string{ToManyDomains}},
		{"seven organisations in To", scanner.Envelope{}, strings.Replace(okHeaders, "bob@example.net", recipients(7, 0), 1) + "\nhi\n", nil},
		{"many people at one organisation's hosts", scanner.Envelope{}, strings.Replace(okHeaders, "bob@example.net", "a@x.example.co.uk, b@y.example.co.uk, c@z.example.co.uk, d@example.co.uk, e@w.example.co.uk, f@v.example.co.uk, g@u.example.co.uk, h@t.example.co.uk, i@s.example.co.uk", 1) + "\nhi\n", nil},
		{"one address repeated", scanner.Envelope{}, strings.Replace(okHeaders, "bob@example.net", strings.Repeat("\"bob@example.net\" <bob@example.net>, ", 9)+"bob@EXAMPLE.net.", 1) + "\nhi\n", nil},
		{"multipart without MIME-Version", scanner.Envelope{}, okHeaders + "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nhi\n--b--\n", []string{MIMEMissingVersion}},
		{"shouting subject", scanner.Envelope{}, strings.Replace(okHeaders, "lunch", "MAKE MONEY FAST NOW", 1) + "\nhi\n", []string{SubjectAllCaps}},
		// The text read stops at max_text_bytes (1 MiB), which may fall
		// inside a character: the cut left a part of one at the end, and
		// a long Japanese or Russian message, its charset declared, read
		// as 8-bit text without one.
		{"Japanese text past max_text_bytes", scanner.Envelope{}, okHeaders + "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n" + strings.Repeat("会議の資料です。\n", 50000), nil},
		{"windows-1251 text past max_text_bytes", scanner.Envelope{}, okHeaders + "MIME-Version: 1.0\nContent-Type: text/plain; charset=windows-1251\n\nxy" + strings.Repeat("\xd0\xe0\xe1\xee\xf2\xe0 ", 250000), nil},
		// The parser stops at max_depth (MIME_TOO_COMPLEX, which tags):
		// the text below it was not read, which is no empty body.
		{"text past the nesting limit", scanner.Envelope{}, okHeaders + "MIME-Version: 1.0\n" + nestedMultipart(12, "See you at noon."), nil},
		{"hash-buster subject", scanner.Envelope{}, strings.Replace(okHeaders, "lunch", "Lose weight now              26792", 1) + "\nhi\n", []string{SubjectHashBuster}},
		{"undeclared 8-bit body", scanner.Envelope{}, okHeaders + "Content-Type: text/plain; charset=us-ascii\n\n\xe0\xb8\xa1\xff\xfe\n", []string{TextUndeclared8bit}},
		{"shouting body", scanner.Envelope{}, okHeaders + "\n" + strings.Repeat("BUY THIS NOW AND GET RICH ", 12) + "\n", []string{TextUppercase}},
		{"HTML sent as plain text", scanner.Envelope{}, okHeaders + "\n<html><body>hi</body></html>\n", []string{TextHTMLAsPlain}},
		{"empty body", scanner.Envelope{}, okHeaders + "\n\n", []string{BodyEmpty}},
		{"hidden text", scanner.Envelope{}, okHeaders + "Content-Type: text/html\n\n<p>" + strings.Repeat("visible ", 50) + "</p><div style=\"display:none\">" + strings.Repeat("poison ", 25) + "</div>\n", []string{HTMLHiddenText}},
		// A mobile-only menu: hidden inline for the desktop, shown by its
		// class in an @media rule.
		{"mobile menu shown by a media query", scanner.Envelope{}, okHeaders + "Content-Type: text/html\n\n<html><head><style>@media only screen and (max-width:480px){ .mob { display:block !important } }</style></head><body><div class=\"nav mob\" style=\"display:none;max-height:0;overflow:hidden\">" + strings.Repeat("Jackets Boots ", 15) + "</div><p>" + strings.Repeat("visible ", 50) + "</p></body></html>\n", nil},
		// The same words under a class no rule shows, or one a rule hides.
		{"hidden under a class no rule shows", scanner.Envelope{}, okHeaders + "Content-Type: text/html\n\n<html><head><style>.mob{display:none} .hdr{color:red}</style></head><body><div class=\"mob hdr\" style=\"display:none\">" + strings.Repeat("poison words ", 15) + "</div><p>" + strings.Repeat("visible ", 50) + "</p></body></html>\n", []string{HTMLHiddenText}},
		// A preheader: a line of words, then padding that keeps the body
		// out of the inbox preview.
		{"preheader padding", scanner.Envelope{}, okHeaders + "Content-Type: text/html; charset=utf-8\n\n<div style=\"display:none\">Free bag of apples with every box" + strings.Repeat("&#847;&zwnj;&nbsp;", 60) + "</div><p>" + strings.Repeat("visible ", 50) + "</p>\n", nil},
		{"image only", scanner.Envelope{}, okHeaders + "Content-Type: text/html\n\n<a href=\"http://shop.example.com/\"><img src=\"http://shop.example.com/offer.gif\"></a>\n", []string{HTMLImageOnly, ImageSingleLink}},
		// A shop's shipping notice: its logo, declared small, above two
		// lines and a tracking link. The words are in the text.
		{"logo above a short notice", scanner.Envelope{}, okHeaders + "Content-Type: text/html\n\n<img src=\"https://cdn.shop.example/logo.png\" width=\"120\" alt=\"Shop\"><p>Your order 1234 ships tomorrow.</p><a href=\"https://shop.example/track\">Track it</a><img src=\"https://t.shop.example/o.gif\" style=\"width:1px;height:1px\">\n", nil},
		// The same notice drawn as a banner: declared wide and tall, the
		// words are in the picture.
		{"banner above a short notice", scanner.Envelope{}, okHeaders + "Content-Type: text/html\n\n<img src=\"https://cdn.shop.example/offer.png\" width=\"600\" height=\"400\"><p>Your order 1234 ships tomorrow.</p><a href=\"https://shop.example/track\">Track it</a>\n", []string{HTMLImageOnly, ImageSingleLink}},
		{"a shop's sale as one picture, linking the shop", scanner.Envelope{}, strings.Replace(okHeaders, "alice@example.org", "hello@shop.example", 1) + "Content-Type: text/html\n\n<a href=\"https://click.shop.example/c/1\"><img src=\"https://img.shop.example/sale.jpg\" width=\"600\" height=\"800\"></a><a href=\"https://shop.example/\">Shop now</a>\n", nil},
		{"image sized in percent", scanner.Envelope{}, okHeaders + "Content-Type: text/html\n\n<img src=\"https://cdn.shop.example/offer.png\" width=\"100%\"><a href=\"https://shop.example/\">Shop</a>\n", []string{HTMLImageOnly, ImageSingleLink}},
		// A phone's photo with a line: nothing to click, nothing sold.
		{"photo with a line", scanner.Envelope{}, okHeaders + "MIME-Version: 1.0\nContent-Type: multipart/related; boundary=r\n\n--r\nContent-Type: text/html\n\n<html><body>Here it is!<br><img src=\"cid:IMG_1234@apple\"></body></html>\n--r\nContent-Type: image/jpeg\nContent-ID: <IMG_1234@apple>\nContent-Transfer-Encoding: base64\n\n/9j/4AAQ\n--r--\n", nil},
		{"script and form", scanner.Envelope{}, okHeaders + "Content-Type: text/html\n\n<p>" + strings.Repeat("text ", 60) + "</p><form action=\"http://x.example.com/\"></form><script>x()</script>\n", []string{HTMLScript, HTMLForm, FormForeignPost}},
		{"form posting to a look-alike", scanner.Envelope{}, okHeaders + "Content-Type: text/html\n\n<p>" + strings.Repeat("text ", 60) + "</p><form action=\"https://login-microsoftonline.verify-acct.com/keep\"><input type=password></form>\n", []string{HTMLForm, FormForeignPost, URLLookalike}},
		{"form posting to free hosting", scanner.Envelope{}, okHeaders + "Content-Type: text/html\n\n<p>" + strings.Repeat("text ", 60) + "</p><form action=\"https://m365-login.pages.dev/\"><input type=password></form>\n", []string{HTMLForm, FormForeignPost, URLFreeHosting}},
		{"comment flood", scanner.Envelope{}, okHeaders + "Content-Type: text/html\n\n<p>V<!--" + strings.Repeat("zq", 400) + "-->iagra " + strings.Repeat("text ", 40) + "</p>\n", []string{HTMLCommentFlood}},
		{"link tricks", scanner.Envelope{}, okHeaders + "Content-Type: text/html\n\n<p>" + strings.Repeat("text ", 60) + "</p><a href=\"http://10.1.2.3/x\">a</a><a href=\"http://www.bank.com@evil.example/\">b</a><a href=\"http://%65vil.example/\">c</a><a href=\"http://evil.example/\">http://www.bank.com/</a>\n", []string{URLIPHost, URLUserInfo, URLEncodedHost, URLTextMismatch}},
		{"anchor text naming its own domain", scanner.Envelope{}, okHeaders + "Content-Type: text/html\n\n<p>" + strings.Repeat("text ", 60) + "</p><a href=\"http://www.example.com/a\">http://example.com/</a>\n", nil},
		{"executable by its Content-Type name, the disposition saying .pdf", scanner.Envelope{}, okHeaders + "Content-Type: multipart/mixed; boundary=b\nMIME-Version: 1.0\n\n--b\n\nsee file\n--b\nContent-Type: application/octet-stream; name=\"invoice.pdf.exe\"\nContent-Disposition: attachment; filename=\"invoice.pdf\"\n\nMZ\n--b--\n", []string{AttachExecutable, AttachDoubleExt}},
		{"executable attachment with a double extension", scanner.Envelope{}, okHeaders + "Content-Type: multipart/mixed; boundary=b\nMIME-Version: 1.0\n\n--b\n\nsee file\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"invoice.pdf.exe\"\n\nMZ\n--b--\n", []string{AttachExecutable, AttachDoubleExt}},
		{"script saved without the trailing dot that hides it", scanner.Envelope{}, okHeaders + "Content-Type: multipart/mixed; boundary=b\nMIME-Version: 1.0\n\n--b\n\nsee file\n--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"invoice.js . .\"\n\nvar x\n--b--\n", []string{AttachExecutable}},
		{"script behind an NTFS stream name", scanner.Envelope{}, okHeaders + "Content-Type: multipart/mixed; boundary=b\nMIME-Version: 1.0\n\n--b\n\nsee file\n--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"invoice.pdf.js::$DATA\"\n\nvar x\n--b--\n", []string{AttachExecutable, AttachDoubleExt}},
		// Mail clients save a name with a colon, which Windows allows in
		// none, with the colon replaced: "RE: Rechnung.js" runs as a
		// script. Read as a stream name only, it was a file "re".
		{"script named after a reply's subject", scanner.Envelope{}, okHeaders + "Content-Type: multipart/mixed; boundary=b\nMIME-Version: 1.0\n\n--b\n\nsee file\n--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"RE: Rechnung.js\"\n\nvar x\n--b--\n", []string{AttachExecutable}},
		{"script named up to a NUL", scanner.Envelope{}, okHeaders + "Content-Type: multipart/mixed; boundary=b\nMIME-Version: 1.0\n\n--b\n\nsee file\n--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename*=utf-8''invoice.js%00.txt\n\nvar x\n--b--\n", []string{AttachExecutable}},
		// "--b--x" is no close delimiter: mail readers show the parts after it.
		{"script after a line that starts like the close delimiter", scanner.Envelope{}, okHeaders + "Content-Type: multipart/mixed; boundary=b\nMIME-Version: 1.0\n\n--b\n\nsee file\n--b--x\n--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"invoice.js\"\n\nvar x\n--b--\n", []string{AttachExecutable}},
		{"HELO bare IP not the client's", scanner.Envelope{HELO: "10.0.0.1", ClientIP: netip.MustParseAddr("192.0.2.7")}, okHeaders + "\nhi\n", []string{HELOBareIP, HELOIPMismatch}},
		{"HELO address literal matches", scanner.Envelope{HELO: "[192.0.2.7]", ClientIP: netip.MustParseAddr("192.0.2.7")}, okHeaders + "\nhi\n", nil},
		{"HELO literal mismatch", scanner.Envelope{HELO: "[10.0.0.1]", ClientIP: netip.MustParseAddr("192.0.2.7")}, okHeaders + "\nhi\n", []string{HELOIPMismatch}},
		{"HELO not a FQDN", scanner.Envelope{HELO: "dd_it7"}, okHeaders + "\nhi\n", []string{HELONotFQDN}},
		{"HELO IPv6 literal matches", scanner.Envelope{HELO: "[IPv6:2001:db8::7]", ClientIP: netip.MustParseAddr("2001:db8::7")}, okHeaders + "\nhi\n", nil},
		{"HELO IPv6 literal of the client's IPv4 address", scanner.Envelope{HELO: "[IPv6:::ffff:192.0.2.7]", ClientIP: netip.MustParseAddr("192.0.2.7")}, okHeaders + "\nhi\n", nil},
		{"HELO IPv6 literal mismatch", scanner.Envelope{HELO: "[IPv6:2001:db8::8]", ClientIP: netip.MustParseAddr("2001:db8::7")}, okHeaders + "\nhi\n", []string{HELOIPMismatch}},
		// Brackets around what is no address escaped every HELO rule.
		{"HELO bracketed name", scanner.Envelope{HELO: "[dd_it7]", ClientIP: netip.MustParseAddr("192.0.2.7")}, okHeaders + "\nhi\n", []string{HELONotFQDN}},
		{"HELO IPv6 literal of nine groups", scanner.Envelope{HELO: "[IPv6:1:2:3:4:5:6:7:8:9]", ClientIP: netip.MustParseAddr("2001:db8::7")}, okHeaders + "\nhi\n", []string{HELONotFQDN}},
		// RFC 5321 4.1.3: an IPv6 literal carries the tag, an IPv4 one
		// does not; Postfix's reject_invalid_helo_hostname refuses both
		// the other way round, and a zone names an interface of the client.
		{"HELO IPv6 literal without its tag", scanner.Envelope{HELO: "[2001:db8::7]", ClientIP: netip.MustParseAddr("2001:db8::7")}, okHeaders + "\nhi\n", []string{HELONotFQDN}},
		{"HELO IPv4 literal with the IPv6 tag", scanner.Envelope{HELO: "[IPv6:192.0.2.7]", ClientIP: netip.MustParseAddr("192.0.2.7")}, okHeaders + "\nhi\n", []string{HELONotFQDN}},
		{"HELO IPv6 literal with a zone", scanner.Envelope{HELO: "[IPv6:2001:db8::7%eth0]", ClientIP: netip.MustParseAddr("2001:db8::7")}, okHeaders + "\nhi\n", []string{HELONotFQDN}},
		{"HELO IPv6 literal, tag in lower case", scanner.Envelope{HELO: "[ipv6:2001:DB8::7]", ClientIP: netip.MustParseAddr("2001:db8::7")}, okHeaders + "\nhi\n", nil},
		{"HELO empty literal", scanner.Envelope{HELO: "[]", ClientIP: netip.MustParseAddr("192.0.2.7")}, okHeaders + "\nhi\n", []string{HELONotFQDN}},
		{"HELO dynamic", scanner.Envelope{HELO: "adsl-67-121-10-5.dsl.example.net"}, okHeaders + "\nhi\n", []string{HELODynamic}},
		{"HELO proper", scanner.Envelope{HELO: "mail.example.org"}, okHeaders + "\nhi\n", nil},
		{"HELO dynamic pool name", scanner.Envelope{HELO: "pool-71-105-3-9.nycmny.fios.example.net"}, okHeaders + "\nhi\n", []string{HELODynamic}},
		{"HELO dynamic customer number", scanner.Envelope{HELO: "cust123.isp.example.net"}, okHeaders + "\nhi\n", []string{HELODynamic}},
		{"HELO dynamic label", scanner.Envelope{HELO: "host7.dynamic.isp.example.net"}, okHeaders + "\nhi\n", []string{HELODynamic}},
		{"HELO a server named client", scanner.Envelope{HELO: "client.example.com"}, okHeaders + "\nhi\n", nil},
		{"HELO a company named pool", scanner.Envelope{HELO: "mail.pool-corp.example"}, okHeaders + "\nhi\n", nil},
		{"HELO a company named cable", scanner.Envelope{HELO: "smtp.cable-tv.example"}, okHeaders + "\nhi\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, &tt.env, msg(tt.raw), nil)
			if len(got) != len(tt.want) {
				t.Errorf("symbols = %v, want exactly %v", got, tt.want)
			}
			for _, name := range tt.want {
				if got[name] != DefaultWeights()[name] {
					t.Errorf("%s = %v, want default weight %v (all: %v)", name, got[name], DefaultWeights()[name], got)
				}
			}
		})
	}
}

func TestWeightsOverrideAndDisable(t *testing.T) {
	m := msg("Subject: x\n\nhello\n")
	got := run(t, &scanner.Envelope{}, m, map[string]float64{MissingFrom: 3.5, MissingDate: 0})
	if got[MissingFrom] != 3.5 {
		t.Errorf("MISSING_FROM = %v, want the override 3.5", got[MissingFrom])
	}
	if _, ok := got[MissingDate]; ok {
		t.Errorf("MISSING_DATE fired with weight 0: %v", got)
	}
}

func TestNoRuleDecidesAlone(t *testing.T) {
	for name, w := range DefaultWeights() {
		if w >= scanner.DefaultTagScore && name != AttachExecutable {
			t.Errorf("%s weighs %v, at or above the default tag score %v", name, w, scanner.DefaultTagScore)
		}
	}
}

func TestMayBeDynamicPassesOverPlainNames(t *testing.T) {
	for _, tt := range []struct {
		h    string
		want bool
	}{
		{"mail.example.com", false},
		{"smtp.pool-corp.example", false},
		{"mx.bigcorp.example", false},
		{"mx1.example.com", true},
		{"adsl.example.net", true},
		{"host.dynamic.example", true},
		{"broadband.example", true},
	} {
		if got := mayBeDynamic(tt.h); got != tt.want {
			t.Errorf("mayBeDynamic(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

// The header rules read the fields of plain mail without allocating: a
// field named out of its canonical form cost a new key per message.
// recipients is a To or Cc value of n people, each at an organisation of
// its own, numbered from first.
func recipients(n, first int) string {
	var list []string
	for i := first; i < first+n; i++ {
		list = append(list, fmt.Sprintf("Person %d <p%d@mail.org%d.example>", i, i, i))
	}
	return strings.Join(list, ", ")
}

func TestVisibleRecipientOrgs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields [][]string
		want   int
	}{
		{"none", nil, 0},
		{"group syntax, no address", [][]string{{"undisclosed-recipients:;"}}, 0},
		{"subdomains of one organisation", [][]string{{"a@mx.example.com, b@example.com", "c@EXAMPLE.COM."}}, 1},
		{"a public suffix keeps organisations apart", [][]string{{"a@one.co.uk, b@two.co.uk, c@three.co.uk"}}, 3},
		{"split over To fields and Cc", [][]string{{"a@a.example", "b@b.example"}, {"c@c.example"}}, 3},
		{"bare names and literals are no domains", [][]string{{"a@localhost, b@[192.0.2.1], c@, @"}}, 0},
		{"counting stops at the threshold", [][]string{{recipients(50, 0)}}, manyRecipientOrgs},
		// Past maxRecipientAts the rest of a hostile header goes unread.
		{"only the first addresses are read", [][]string{{strings.Repeat("x@same.example ", maxRecipientAts) + recipients(8, 0)}}, 1},
	} {
		if got := visibleRecipientOrgs(tc.fields...); got != tc.want {
			t.Errorf("%s: %d organisations, want %d", tc.name, got, tc.want)
		}
	}
}

// FuzzVisibleRecipientOrgs checks that any header text is counted without
// a panic, within the threshold, and no higher than its "@" count.
func FuzzVisibleRecipientOrgs(f *testing.F) {
	f.Add("a@b.example, c@d.example", "e@f.co.uk.")
	f.Add(recipients(9, 0), "")
	f.Add("@@@..@-.-@a.b", "x@\xff.example")
	f.Fuzz(func(t *testing.T, to, cc string) {
		n := visibleRecipientOrgs([]string{to}, []string{cc})
		if n < 0 || n > manyRecipientOrgs || n > strings.Count(to, "@")+strings.Count(cc, "@") {
			t.Fatalf("%d organisations in To %q, Cc %q", n, to, cc)
		}
	})
}

func TestHeaderRulesDoNotAllocate(t *testing.T) {
	r := New(nil)
	m := scanner.Parse([]byte(okHeaders + "X-Priority: 3\nX-MSMail-Priority: Normal\n\nhi\n"))
	f := findings{w: r.weights}
	if n := testing.AllocsPerRun(100, func() { r.headers(&f, m) }); n != 0 {
		t.Errorf("headers allocated %.0f times a message", n)
	}
}

// TestTextMismatchSparesTheSendersOwnSite: anchor text showing one domain
// over a link to another is the phisher's disguise, but a newsletter
// printing its own address over its mail provider's click tracker shows
// the reader exactly where they are going.
func TestTextMismatchSparesTheSendersOwnSite(t *testing.T) {
	for _, tc := range []struct {
		name, from, shown, link string
		want                    bool
	}{
		{"the sender's site through a tracker", "news@greenvalleyfarm.co.uk", "www.greenvalleyfarm.co.uk", "https://greenvalleyfarm.us21.list-manage.com/track/click?u=1", false},
		{"from a subdomain of the shown site", "news@email.shop.example", "https://shop.example/", "https://click.esp.example/c/1", false},
		{"a bank shown by someone else", "alerts@mailer.example", "https://www.bank.com/", "https://evil.example/login", true},
		{"the same domain", "news@shop.example", "www.shop.example", "https://www.shop.example/sale", false},
		{"another site through the newsletter's tracker", "news@bookshop.example", "www.theguardian.com/cities", "https://u4412873.ct.sendgrid.net/ls/click?upn=u001.abc", false},
		{"another site through a tracker's subdomain", "news@bookshop.example", "https://lisboa.pt/", "https://bookshop.us21.list-manage.com/track/click?u=1", false},
		{"a brand through a tracker", "alerts@mailer.example", "www.paypal.com", "https://u4412873.ct.sendgrid.net/ls/click?upn=u001.abc", true},
		{"another site through a host that only looks like one", "news@bookshop.example", "www.theguardian.com", "https://ct.sendgrid.net.evil.example/c", true},
	} {
		raw := "From: " + tc.from + "\nDate: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <t.1@example.org>\nSubject: news\n" +
			"MIME-Version: 1.0\nContent-Type: text/html\n\n<p>" + strings.Repeat("text ", 60) + "</p><a href=\"" + tc.link + "\">" + tc.shown + "</a>\n"
		got := run(t, nil, msg(raw), nil)
		if _, fired := got[URLTextMismatch]; fired != tc.want {
			t.Errorf("%s: %s fired %v, want %v (%v)", tc.name, URLTextMismatch, fired, tc.want, got)
		}
	}
}

// parseAddress reads To and Reply-To for several rules. net/mail's
// ParseAddress builds a quoted string a rune at a time: a 900 KB To of
// one quoted display name allocated 30 MB a read, 72 MB a message. A
// real address stays far below scanner.MaxAddressBytes; a longer value is
// no address to the rules.
func TestParseAddressAllocatesBelowItsSize(t *testing.T) {
	v := `"` + strings.Repeat(",", 900<<10) + `" <a@example.com>`
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	parseAddress(v)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(len(v)) {
		t.Errorf("reading a %d KB address allocated %d KB, want less than its size", len(v)>>10, got>>10)
	}
	if a, ok := parseAddress(`"Ann, Bob" <a@example.com>`); !ok || a != "a@example.com" {
		t.Errorf("got %q, %v; want a@example.com", a, ok)
	}
}

// nestedMultipart is a header's Content-Type and body: depth multiparts,
// one in another, around a text part holding text.
func nestedMultipart(depth int, text string) string {
	body := "--b" + strconv.Itoa(depth) + "\nContent-Type: text/plain\n\n" + text + "\n--b" + strconv.Itoa(depth) + "--\n"
	for i := depth - 1; i >= 0; i-- {
		body = "--b" + strconv.Itoa(i) + "\nContent-Type: multipart/mixed; boundary=b" + strconv.Itoa(i+1) + "\n\n" + body + "--b" + strconv.Itoa(i) + "--\n"
	}
	return "Content-Type: multipart/mixed; boundary=b0\n\n" + body
}
