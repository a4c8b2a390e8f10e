package preview

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestPreviewHeadersCannotRunBackwards: the panel shows a held message's
// headers and attachment names for a person to decide on its release; a
// bidirectional override made "invoice\u202etxt.mcod", a macro document,
// read "invoicedocm.txt" there, and a control character could break the
// line.
func TestPreviewHeadersCannotRunBackwards(t *testing.T) {
	msg := "From: =?UTF-8?Q?Bank_=E2=80=AEknaB?= <a@b.example>\r\n" +
		"To: \u202emoc.elpmaxe-knab <bob@c.example>\r\n" +
		"Subject: =?UTF-8?Q?Invoice_=E2=80=AEfdp.exe?=\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=BB\r\n\r\n" +
		"--BB\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--BB\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename*=UTF-8''invoice%E2%80%AEtxt.mcod\r\n\r\nAAAA\r\n" +
		"--BB\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename*=UTF-8''a%0D%0Ab.txt\r\n\r\nAAAA\r\n" +
		"--BB--\r\n"
	p := Of([]byte(msg))
	tests := []struct{ field, got, want string }{
		{"From", p.From, "Bank  knaB <a@b.example>"},
		{"Subject", p.Subject, "Invoice  fdp.exe"},
		{"To", p.To, " moc.elpmaxe-knab <bob@c.example>"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s %q, want %q", tt.field, tt.got, tt.want)
		}
	}
	if want := []string{"invoice txt.mcod", "a  b.txt"}; !slices.Equal(p.Attachments, want) {
		t.Errorf("Attachments %q, want %q", p.Attachments, want)
	}
}

// TestPreviewShowsDisplayNamesAsMailClientsDo: the From and To a person
// reads to decide on a release were shown as written, so an encoded
// display name read "=?utf-8?b?UGF5UGFsIFN1cHBvcnQ=?=" where the
// recipient's mail client, once the message is released, shows "PayPal
// Support": the name a phish borrows was hidden from the one who judges
// it. Their RFC 2047 words are decoded, as the Subject's are, and what
// they decode to is clipped as the Subject is.
func TestPreviewShowsDisplayNamesAsMailClientsDo(t *testing.T) {
	msg := "From: =?utf-8?b?UGF5UGFsIFN1cHBvcnQ=?= <service@paypal.example.net>\r\n" +
		"To: =?iso-8859-1?q?J=F6rg?= <j@c.example>, =?utf-8?q?a=0D=0AX-Evil:_1?= <b@c.example>\r\n" +
		"Subject: hi\r\n\r\nhello\r\n"
	p := Of([]byte(msg))
	tests := []struct{ field, got, want string }{
		{"From", p.From, "PayPal Support <service@paypal.example.net>"},
		{"To", p.To, "Jörg <j@c.example>, a  X-Evil: 1 <b@c.example>"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s %q, want %q", tt.field, tt.got, tt.want)
		}
	}
}

// TestPreviewShowsEveryNameOfAnAttachment: a part may name itself twice,
// "invoice.pdf" in its Content-Disposition and "invoice.html" in its
// Content-Type, and mail clients differ in which they save it under. The
// antivirus and the rules judge every name; the preview, which a person
// reads to decide on a release, showed the first only, so the page said
// "invoice.pdf" for what the customer's client would open as a web page.
func TestPreviewShowsEveryNameOfAnAttachment(t *testing.T) {
	msg := "From: a@b.example\r\nSubject: invoice\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=BB\r\n\r\n" +
		"--BB\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--BB\r\nContent-Type: text/html; name=\"invoice.html\"\r\n" +
		"Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n\r\n<p>x</p>\r\n" +
		"--BB\r\nContent-Type: application/pdf\r\n" +
		"Content-Disposition: attachment; filename=\"terms.pdf\"\r\n\r\nAAAA\r\n" +
		"--BB\r\nContent-Type: application/octet-stream\r\n" +
		strings.Repeat("Content-Disposition: attachment; filename=\"a.txt\"\r\n", 3) +
		"Content-Disposition: attachment; filename=\"a.js\"\r\n" +
		"Content-Disposition: attachment; filename=\"a.vbs\"\r\n" +
		"Content-Disposition: attachment; filename=\"a.hta\"\r\n" +
		"Content-Disposition: attachment; filename=\"a.wsf\"\r\n" +
		"Content-Disposition: attachment; filename=\"a.cmd\"\r\n\r\nAAAA\r\n" +
		"--BB--\r\n"
	p := Of([]byte(msg))
	// The same name given again is shown once; past a few, a count.
	want := []string{"invoice.pdf or invoice.html", "terms.pdf", "a.txt or a.js or a.vbs or a.hta (and 2 more names)"}
	if !slices.Equal(p.Attachments, want) {
		t.Errorf("Attachments %q, want %q", p.Attachments, want)
	}
}

// TestPreviewOfAPartOfManyNames: a part may give tens of thousands of
// names (32 in each of a thousand header fields); the preview shows a few
// and counts the rest.
func TestPreviewOfAPartOfManyNames(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\n")
	for i := range 999 {
		b.WriteString("Content-Disposition: attachment")
		for j := range 32 {
			fmt.Fprintf(&b, "; filename=n%d.txt", i*32+j)
		}
		b.WriteString("\r\n")
	}
	b.WriteString("\r\nAAAA\r\n--BB--\r\n")
	p := Of([]byte(b.String()))
	want := []string{"n0.txt or n1.txt or n2.txt or n3.txt (and 31964 more names)"}
	if !slices.Equal(p.Attachments, want) {
		t.Errorf("Attachments %q, want %q", p.Attachments, want)
	}
}

// TestPreviewShowsWhatMailClientsShowOfHTML: a message with a text part
// and an HTML part as alternatives is read by mail clients in its HTML
// (RFC 2046 5.1.4: the last alternative is the preferred one). The
// preview showed the text part alone, so a sender wrote a harmless text
// for the person deciding on the release, and the phish the recipient
// reads went in the HTML. The HTML's visible text is shown too, as text,
// when it says something the text part does not; never its hidden text.
func TestPreviewShowsWhatMailClientsShowOfHTML(t *testing.T) {
	alt := func(plain, html string) string {
		return "From: a@b.example\r\nSubject: notes\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/alternative; boundary=BB\r\n\r\n" +
			"--BB\r\nContent-Type: text/plain\r\n\r\n" + plain + "\r\n" +
			"--BB\r\nContent-Type: text/html\r\n\r\n" + html + "\r\n--BB--\r\n"
	}
	tests := []struct {
		name, msg, text, html string
	}{
		{"alternatives that differ", alt("Minutes of Thursday's meeting.",
			`<p>Your mailbox is full. <a href="https://evil.example/">Verify your password</a></p><div style="display:none">minutes</div>`),
			"Minutes of Thursday's meeting.", "Your mailbox is full. Verify your password"},
		// An honest message's alternatives say the same; it is shown once.
		{"alternatives that agree", alt("Minutes of\r\nThursday.", "<p>Minutes of <b>Thursday</b>.</p>"), "Minutes of\r\nThursday.", ""},
		{"HTML alone", "Subject: x\r\nContent-Type: text/html\r\n\r\n<p>Only <i>HTML</i></p>\r\n", "Only HTML", ""},
		{"text alone", "Subject: x\r\n\r\nplain words\r\n", "plain words", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Of([]byte(tt.msg))
			// The HTML's text is spaced as the scanner extracts it
			// (a tag may leave two blanks): its words are compared.
			words := func(s string) string { return strings.Join(strings.Fields(s), " ") }
			if words(p.Text) != words(tt.text) || words(p.HTMLText) != tt.html {
				t.Errorf("Text %q, HTMLText %q; want %q, %q", p.Text, p.HTMLText, tt.text, tt.html)
			}
		})
	}
}

// TestPreviewComparesTheWholeTexts: the text part and the HTML's text were
// compared as the preview cuts them (maxPreviewText), so alternatives
// that agreed for their first 64 KiB and then parted (a long newsletter,
// or a filler mail clients show as nothing, then the phish) counted as
// saying the same: the person deciding on the release was shown the text
// part alone, and the recipient's client the HTML's phish past it. The
// HTML's text is shown from where it parts from the text part when that
// is past what a whole one would show.
func TestPreviewComparesTheWholeTexts(t *testing.T) {
	alt := func(plain, html string) string {
		return "From: a@b.example\r\nSubject: notes\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/alternative; boundary=BB\r\n\r\n" +
			"--BB\r\nContent-Type: text/plain\r\n\r\n" + plain + "\r\n" +
			"--BB\r\nContent-Type: text/html\r\n\r\n" + html + "\r\n--BB--\r\n"
	}
	filler := strings.Repeat("Quarterly figures, region by region. ", 2000) // 74 KB
	tests := []struct {
		name, msg string
		// want is in the HTML's text shown, "" for none shown.
		want string
	}{
		{"parting past the cut", alt(filler+"See you on Thursday.", "<p>"+filler+"</p><p>Verify your password at evil.example</p>"), "Verify your password at evil.example"},
		{"parting early", alt("See you on Thursday. "+filler, "<p>Verify your password. "+filler+"</p>"), "Verify your password."},
		{"the same words throughout", alt(filler+"See you on Thursday.", "<p>"+filler+"</p><p>See you on <b>Thursday</b>.</p>"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Of([]byte(tt.msg))
			switch {
			case tt.want == "" && p.HTMLText != "":
				t.Errorf("HTMLText of %d bytes shown for alternatives that say the same", len(p.HTMLText))
			case tt.want != "" && !strings.Contains(p.HTMLText, tt.want):
				t.Errorf("HTMLText (%d bytes) lacks %q: what the recipient reads is not shown", len(p.HTMLText), tt.want)
			}
			if len(p.HTMLText) > maxPreviewText+len("… ") {
				t.Errorf("HTMLText of %d bytes, want at most about %d", len(p.HTMLText), maxPreviewText)
			}
		})
	}
}

// TestPreviewFromShowsALabels: the quarantined message's page shows the
// envelope sender with its domain's A-label (3678bd1), and right below it
// the From field, the one the recipient's mail client shows, as written:
// "PayPal <service@аррӏе.example>", Cyrillic letters that read exactly
// as apple.example to whoever decides on the release. Its addresses'
// domains in another script are followed by their A-labels too.
func TestPreviewFromShowsALabels(t *testing.T) {
	pad := func(n int) string { return `"` + strings.Repeat(" ", n) + `"` }
	tail := func(s string) string { return s[max(0, len(s)-50):] }
	const lookalike = "\u0430\u0440\u0440\u04cf\u0435.example"
	tests := []struct{ name, from, want string }{
		{"in angle brackets", "PayPal <service@" + lookalike + ">", "PayPal <service@" + lookalike + "> (xn--80ak6aa92e.example)"},
		{"bare", "service@" + lookalike, "service@" + lookalike + " (xn--80ak6aa92e.example)"},
		{"two, one ASCII", "a@b.example, Shop <info@bücher.example>", "a@b.example, Shop <info@bücher.example> (xn--bcher-kva.example)"},
		{"ASCII", "PayPal <service@paypal.example>", "PayPal <service@paypal.example>"},
		// A display name of blanks (a page shows them as one) that
		// puts the address just short of the field's cut (998 bytes):
		// labelled, then cut, the address was shown whole and its
		// A-label cut away, in part or all.
		{"at the cut, label cut away", pad(967) + " <service@" + lookalike + ">", pad(967) + " <service@" + lookalike + "> (xn--80ak6aa92e.example)"},
		{"at the cut, label cut short", pad(955) + " <service@" + lookalike + ">", pad(955) + " <service@" + lookalike + "> (xn--80ak6aa92e.example)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Of([]byte("From: " + tt.from + "\r\nTo: " + tt.from + "\r\nSubject: x\r\n\r\nhello\r\n"))
			if p.From != tt.want || p.To != tt.want {
				t.Errorf("From ends %q, To ends %q; want %q", tail(p.From), tail(p.To), tail(tt.want))
			}
		})
	}
}

// TestPreviewSaysTheHTMLWasNotReadWhole: the scanner reads max_text_bytes
// (1 MiB) of HTML source and keeps 256 KiB of its visible text; mail
// clients show the HTML whole. A sender who put a phish past either
// bound (1 MiB of empty tags first, or a filler the client shows as
// nothing) had a preview of the harmless text part alone, or of the
// filler, and nothing to say that the HTML went on: the person deciding
// on the release read that it said nothing else. The preview cannot show
// what was not read, so it says it was not.
func TestPreviewSaysTheHTMLWasNotReadWhole(t *testing.T) {
	alt := func(plain, html string) string {
		return "From: a@b.example\r\nSubject: notes\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/alternative; boundary=BB\r\n\r\n" +
			"--BB\r\nContent-Type: text/plain\r\n\r\n" + plain + "\r\n" +
			"--BB\r\nContent-Type: text/html\r\n\r\n" + html + "\r\n--BB--\r\n"
	}
	phish := "<p>Verify your password at evil.example</p>"
	// Words a mail client shows as nothing: zero-width spaces.
	invisible := strings.Repeat("\u200b\u200b\u200b ", 70000) // 700 KB of source, 700 KB of text
	tests := []struct {
		name, msg string
		cut       bool
	}{
		{"empty tags past the source read", alt("Minutes of Thursday.", strings.Repeat("<b></b>", 200000)+phish), true},
		{"invisible text past the text kept", alt(invisible+"Minutes of Thursday.", "<p>"+invisible+"</p>"+phish), true},
		{"HTML alone, past the source read", "Subject: x\r\nContent-Type: text/html\r\n\r\n" + strings.Repeat("<i></i>", 200000) + phish + "\r\n", true},
		{"a short HTML part", alt("Minutes of Thursday.", phish), false},
		{"text alone, long", "Subject: x\r\n\r\n" + strings.Repeat("plain words ", 200000) + "\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Of([]byte(tt.msg))
			if p.HTMLCut != tt.cut {
				t.Errorf("HTMLCut = %v, want %v (HTMLText %d bytes: %.60q)", p.HTMLCut, tt.cut, len(p.HTMLText), p.HTMLText)
			}
		})
	}
}
