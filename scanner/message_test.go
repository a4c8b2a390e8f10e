package scanner

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

func symbolNames(m *Message) []string {
	var out []string
	for _, s := range m.Symbols {
		out = append(out, s.Name)
	}
	return out
}

func TestParseDecodesTextParts(t *testing.T) {
	tests := []struct {
		name      string
		raw       []byte
		subject   string
		fromName  string
		fromAddr  string
		text      string // substring of Text
		htmlText  string // substring of HTML.Text
		structure string
	}{
		{
			name: "quoted-printable latin-1 with mbox From line and LF endings",
			raw: []byte("From someone@example.org  Thu Aug 22 13:17:22 2002\n" +
				"From: \"Jos\xe9\" <Jose@Example.ORG>\nSubject: =?iso-8859-1?q?F=FCr_Sie?=\n" +
				"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n" +
				"Gr=FC=DFe aus K=F6ln\n"),
			subject: "Für Sie", fromName: "Jos\xe9", fromAddr: "jose@example.org",
			text: "Grüße aus Köln", structure: "text/plain",
		},
		{
			name: "base64 windows-1251 HTML",
			raw: crlf("From: a@example.org\nSubject: hi\nContent-Type: text/html; charset=windows-1251\n" +
				"Content-Transfer-Encoding: base64\n\nPGI+z/Do4uXyPC9iPg==\n"),
			subject: "hi", fromAddr: "a@example.org", htmlText: "Привет", structure: "text/html",
		},
		{
			name:    "no Content-Type means text/plain",
			raw:     crlf("Subject: plain\n\nhello world\n"),
			subject: "plain", text: "hello world", structure: "text/plain",
		},
		{
			name: "multipart alternative and forwarded message",
			raw: crlf(`From: Bob <bob@example.com>
Subject: shapes
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain

plain version
--inner
Content-Type: text/html

<p>html version</p>
--inner--
--outer
Content-Type: message/rfc822

Subject: inner message

forwarded text
--outer--
`),
			subject: "shapes", fromName: "Bob", fromAddr: "bob@example.com", text: "forwarded text", htmlText: "html version",
			structure: "multipart/mixed(multipart/alternative(text/plain,text/html),message/rfc822(text/plain))",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse(tt.raw)
			if len(m.Symbols) != 0 {
				t.Errorf("symbols = %v, want none", m.Symbols)
			}
			if m.Subject != tt.subject || m.FromName != tt.fromName || m.FromAddr != tt.fromAddr {
				t.Errorf("subject/from = %q, %q, %q; want %q, %q, %q", m.Subject, m.FromName, m.FromAddr, tt.subject, tt.fromName, tt.fromAddr)
			}
			if !strings.Contains(m.Text, tt.text) {
				t.Errorf("Text = %q, want it to contain %q", m.Text, tt.text)
			}
			if !strings.Contains(m.HTML.Text, tt.htmlText) {
				t.Errorf("HTML.Text = %q, want it to contain %q", m.HTML.Text, tt.htmlText)
			}
			if m.Structure != tt.structure {
				t.Errorf("Structure = %q, want %q", m.Structure, tt.structure)
			}
		})
	}
}

func TestParseBodyOffset(t *testing.T) {
	for _, raw := range [][]byte{
		crlf("Subject: x\nX-Long: a\n b\n\nbody here\n"),
		[]byte("From x@y  Mon Jan  1 00:00:00 2002\nSubject: x\n\nbody here\n"),
	} {
		m := Parse(raw)
		if got := string(raw[m.BodyOffset:]); !strings.HasPrefix(got, "body here") {
			t.Errorf("body at offset %d = %q", m.BodyOffset, got)
		}
		if m.Header.Get("Subject") != "x" {
			t.Errorf("Subject header = %q", m.Header.Get("Subject"))
		}
	}
}

func TestParseHTMLShowsWhatItHides(t *testing.T) {
	raw := crlf(`From: shop@example.com
Subject: offer
Content-Type: text/html

<html><head><title>t</title><style>p{color:red}</style></head><body>
<p>Visible offer text</p>
<div style="display: none">hidden poison words</div>
<font color="#ffffff">white on white</font>
<table bgcolor="#000000"><tr><td><font color="white">white on black</font></td></tr></table>
<a href="http://evil.example.net/login">http://www.mybank.com/</a>
<a href="http://3232235777/x">numeric</a>
<a href="http://user@host.example.org:8080/p">userinfo</a>
<img src="http://img.example.co.uk/a.gif">
<form action="http://x.example/"></form><script>var x;</script>
<!-- a comment -->
</body></html>
`)
	m := Parse(raw)
	h := m.HTML
	if !strings.Contains(h.Text, "Visible offer text") || !strings.Contains(h.Text, "white on black") {
		t.Errorf("visible text = %q", h.Text)
	}
	for _, bad := range []string{"hidden poison", "white on white", "color:red", "var x"} {
		if strings.Contains(h.Text, bad) {
			t.Errorf("visible text %q contains %q", h.Text, bad)
		}
	}
	if !strings.Contains(h.Hidden, "hidden poison words") || !strings.Contains(h.Hidden, "white on white") {
		t.Errorf("hidden text = %q", h.Hidden)
	}
	if h.Images != 1 || h.Links != 3 || h.Forms != 1 || h.Scripts != 1 || h.CommentBytes == 0 {
		t.Errorf("counts = %+v", h)
	}
	want := []URL{
		{Host: "evil.example.net", Domain: "example.net", Text: "http://www.mybank.com/"},
		{Host: "3232235777", Domain: "3232235777", IP: true, Text: "numeric"},
		{Host: "host.example.org", Domain: "example.org", UserInfo: true, Text: "userinfo"},
		{Host: "img.example.co.uk", Domain: "example.co.uk", Image: true},
	}
	if len(m.URLs) != len(want) {
		t.Fatalf("URLs = %+v", m.URLs)
	}
	for i, w := range want {
		u := m.URLs[i]
		u.Raw = ""
		if u != w {
			t.Errorf("URL %d = %+v, want %+v", i, u, w)
		}
	}
}

// TestParseHTMLClassBackgrounds: white text on a band or a button that a
// <style> rule paints by class, as templates of today style them, is
// seen; white text whose class paints nothing, or paints white, or whose
// own style puts it back on white, is not.
func TestParseHTMLClassBackgrounds(t *testing.T) {
	raw := crlf(`From: shop@example.com
Subject: offer
Content-Type: text/html

<html><head><style>.band{background:#101418}.btn{background-color:#2b6e4f !important}
.plain{background:transparent}.paper{background:#ffffff}</style></head><body>
<table class="wrap band"><tr><td style="color:#ffffff">geminids on the thirteenth</td></tr></table>
<a class="btn" style="color:#fff" href="https://shop.example/o">view your order</a>
<div class="plain"><font color="white">transparent poison</font></div>
<div class="paper"><font color="white">paper poison</font></div>
<div class="band" style="background:#fff"><font color="white">overridden poison</font></div>
</body></html>
`)
	h := Parse(raw).HTML
	for _, seen := range []string{"geminids on the thirteenth", "view your order"} {
		if !strings.Contains(h.Text, seen) {
			t.Errorf("visible text %q lacks %q", h.Text, seen)
		}
	}
	for _, hidden := range []string{"transparent poison", "paper poison", "overridden poison"} {
		if !strings.Contains(h.Hidden, hidden) {
			t.Errorf("hidden text %q lacks %q", h.Hidden, hidden)
		}
	}
}

func TestFindURLs(t *testing.T) {
	text := "see http://Example.COM/a?b, or www.test.org. Also (https://[2001:db8::1]/x) and http://%65vil.example/ end"
	got := FindURLs(text, 10)
	want := []struct {
		host, domain string
		ip, encoded  bool
	}{
		{"example.com", "example.com", false, false},
		{"www.test.org", "test.org", false, false},
		{"2001:db8::1", "2001:db8::1", true, false},
		{"evil.example", "evil.example", false, true},
	}
	if len(got) != len(want) {
		t.Fatalf("FindURLs = %+v", got)
	}
	for i, w := range want {
		if got[i].Host != w.host || got[i].Domain != w.domain || got[i].IP != w.ip || got[i].Encoded != w.encoded || !got[i].Plain {
			t.Errorf("URL %d = %+v, want %+v", i, got[i], w)
		}
	}
}

// TestHTMLLinksAreReadAsBrowsersOpenThem: a link's host is the name a
// browser connects to, the one blocklists and the brand rules know.
func TestHTMLLinksAreReadAsBrowsersOpenThem(t *testing.T) {
	tests := []struct{ href, host, domain string }{
		{"http://p\u0430ypal.com/login", "xn--pypal-4ve.com", "xn--pypal-4ve.com"}, // Cyrillic а
		{"https://login.evil\u3002example.com/", "login.evil.example.com", "example.com"},
		{"http://\uff45\uff56\uff49\uff4c.com/", "evil.com", "evil.com"}, // fullwidth letters
		{"http://ev&#9;il.exa&#10;mple.com/", "evil.example.com", "example.com"},
		{"http://PLAIN.example.com./", "plain.example.com", "example.com"},
		{`http:\\evil.example.com\x`, "evil.example.com", "example.com"},
		{"https:/evil.example.com/", "evil.example.com", "example.com"},
		{"HTTP:///evil.example.com/", "evil.example.com", "example.com"},
		{"&#1;http://evil.example.com/", "evil.example.com", "example.com"},
		{"//evil.example.com/login", "evil.example.com", "example.com"},
		{` \\evil.example.com\login`, "evil.example.com", "example.com"},
		{`/\evil.example.com/`, "evil.example.com", "example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.href, func(t *testing.T) {
			m := Parse(crlf("From: a@example.org\nContent-Type: text/html; charset=utf-8\n\n<a href=\"" + tt.href + "\">here</a>\n"))
			if len(m.URLs) != 1 || m.URLs[0].Host != tt.host || m.URLs[0].Domain != tt.domain {
				t.Fatalf("URLs = %+v, want host %q, domain %q", m.URLs, tt.host, tt.domain)
			}
		})
	}
}

// TestRelativeLinksGoToTheBase: Outlook and Thunderbird open a relative
// link at the part's <base href>, so that is the host the rules judge.
func TestRelativeLinksGoToTheBase(t *testing.T) {
	tests := []struct {
		name, html string
		hosts      []string
	}{
		{"base", `<base href="https://evil.example.com/"><a href="keep">confirm</a>`, []string{"evil.example.com"}},
		{"path", `<head><base href="https://evil.example.com/a/"></head><a href="/keep?x=1">confirm</a>`, []string{"evil.example.com"}},
		{"protocol-relative base", `<base href="//evil.example.com/"><a href="keep">confirm</a>`, []string{"evil.example.com"}},
		{"first base counts", `<base href="https://evil.example.com/"><base href="https://other.example.org/"><a href="keep">x</a>`, []string{"evil.example.com"}},
		{"absolute link keeps its host", `<base href="https://evil.example.com/"><a href="https://shop.example.org/">x</a>`, []string{"shop.example.org"}},
		{"other schemes are no links", `<base href="https://evil.example.com/"><a href="mailto:a@example.org">x</a><a href="cid:logo">y</a>`, nil},
		{"no base", `<a href="keep">confirm</a>`, nil},
		// The document's base URL is its first base element's wherever
		// it stands: a link before it goes there too.
		{"base after the link", `<a href="keep">confirm</a><base href="https://evil.example.com/">`, []string{"evil.example.com"}},
		{"base in the body's end, an image before it", `<img src="/x.png"><p><a href="/keep">confirm</a></p><BASE HREF="https://evil.example.com/">`,
			[]string{"evil.example.com", "evil.example.com"}},
		{"a base in a comment is none", `<!-- <base href="https://evil.example.com/"> --><a href="keep">confirm</a>`, nil},
		{"a base in a script is none", `<script>document.write('<base href="https://evil.example.com/">')</script><a href="keep">x</a>`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if hosts := htmlLinkHosts(tt.html); !slices.Equal(hosts, tt.hosts) {
				t.Fatalf("hosts = %q, want %q", hosts, tt.hosts)
			}
		})
	}
}

// htmlLinkHosts parses html as a message's HTML body and returns its
// links' hosts in order.
func htmlLinkHosts(html string) []string {
	m := Parse(crlf("From: a@example.org\nContent-Type: text/html; charset=utf-8\n\n" + html + "\n"))
	var hosts []string
	for _, u := range m.URLs {
		hosts = append(hosts, u.Host)
	}
	return hosts
}

// TestSVGLinksAreLinks: a link inside inline SVG is clicked as any other,
// whether its target is in href or in xlink:href.
func TestSVGLinksAreLinks(t *testing.T) {
	tests := []struct {
		name, html string
		hosts      []string
	}{
		{"xlink:href", `<svg><a xlink:href="https://evil.example.com/"><text>Sign in</text></a></svg>`, []string{"evil.example.com"}},
		{"href", `<svg><a href="https://evil.example.com/"><text>Sign in</text></a></svg>`, []string{"evil.example.com"}},
		{"href wins", `<svg><a xlink:href="https://other.example.org/" href="https://evil.example.com/">x</a></svg>`, []string{"evil.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if hosts := htmlLinkHosts(tt.html); !slices.Equal(hosts, tt.hosts) {
				t.Fatalf("hosts = %q, want %q", hosts, tt.hosts)
			}
		})
	}
}

// TestBareLinksInHTMLTextAreLinks: a URL an HTML part shows as text,
// outside any link, is one for readers that make it clickable (Gmail,
// Outlook, Apple Mail), so for the link rules and the URL blocklists too.
// What a link's own text shows is the link's, and hidden text is no link.
func TestBareLinksInHTMLTextAreLinks(t *testing.T) {
	tests := []struct {
		name, html string
		hosts      []string
	}{
		{"bare in text", `<p>Confirm your account: https://evil.example.com/login</p>`, []string{"evil.example.com"}},
		{"www. and entities", `<p>Go to www&#46;evil.example.com now</p>`, []string{"www.evil.example.com"}},
		{"after an anchor", `<a href="https://shop.example.org/">shop</a> or http://192.0.2.7/claim`, []string{"shop.example.org", "192.0.2.7"}},
		{"the text of a link", `<a href="https://shop.example.org/">https://shop.example.org/</a>`, []string{"shop.example.org"}},
		{"the text of a mail link", `<a href="mailto:a@example.org">https://evil.example.com/</a>`, nil},
		{"hidden", `<div style="display:none">https://evil.example.com/</div>`, nil},
		{"in a style", `<style>a{background:url(https://evil.example.com/x.png)}</style>`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if hosts := htmlLinkHosts(tt.html); !slices.Equal(hosts, tt.hosts) {
				t.Fatalf("hosts = %q, want %q", hosts, tt.hosts)
			}
		})
	}
	// They are HTML links: the plain text's own, which the model reads,
	// stay those of Text alone.
	m := Parse(crlf("From: a@example.org\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n" +
		"see https://plain.example.org/\n--b\nContent-Type: text/html\n\n<p>see https://evil.example.com/</p>\n--b--\n"))
	if got := m.AppendPlainURLs(nil, m.Text, 200); len(got) != 1 || got[0].Host != "plain.example.org" {
		t.Errorf("plain links of Text = %+v, want plain.example.org alone", got)
	}
}

// TestOutlookConditionalLinksAreLinks: Outlook for Windows renders the
// markup of a conditional comment for it, which every other reader skips;
// its links are clicked by Outlook's readers.
func TestOutlookConditionalLinksAreLinks(t *testing.T) {
	tests := []struct {
		name, html string
		hosts      []string
	}{
		{"a VML button", `<!--[if mso]><v:roundrect href="https://evil.example.com/">Sign in</v:roundrect><![endif]-->`, []string{"evil.example.com"}},
		{"a link, in any case", `<!--[IF GTE MSO 9]><a href="https://evil.example.com/">Sign in</a><![endif]-->`, []string{"evil.example.com"}},
		{"for every reader but Outlook", `<!--[if !mso]><!--><a href="https://shop.example.org/">x</a><!--<![endif]-->`, []string{"shop.example.org"}},
		{"for Internet Explorer", `<!--[if IE]><a href="https://evil.example.com/">x</a><![endif]-->`, nil},
		{"a plain comment", `<!-- <a href="https://evil.example.com/">old</a> -->`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if hosts := htmlLinkHosts(tt.html); !slices.Equal(hosts, tt.hosts) {
				t.Fatalf("hosts = %q, want %q", hosts, tt.hosts)
			}
		})
	}
}

// TestNoscriptLinksAreLinks: mail readers run no script, so they show what
// a <noscript> holds, and its links are clicked; a script's are not.
func TestNoscriptLinksAreLinks(t *testing.T) {
	tests := []struct {
		name, html string
		hosts      []string
	}{
		{"in a noscript", `<noscript><a href="https://evil.example.com/">Sign in</a></noscript>`, []string{"evil.example.com"}},
		{"after a noscript", `<noscript>enable scripts</noscript><a href="https://shop.example.org/">x</a>`, []string{"shop.example.org"}},
		{"in a script", `<script>var a = '<a href="https://evil.example.com/">';</script>`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if hosts := htmlLinkHosts(tt.html); !slices.Equal(hosts, tt.hosts) {
				t.Fatalf("hosts = %q, want %q", hosts, tt.hosts)
			}
		})
	}
}

// TestOpenRedirectsLeadToTheirTarget: a link through a well-known open
// redirect is also a link to where it sends the reader.
func TestOpenRedirectsLeadToTheirTarget(t *testing.T) {
	tests := []struct {
		link  string
		hosts []string
	}{
		{"https://www.google.com/url?q=https://evil.example.com/keep&sa=D", []string{"www.google.com", "evil.example.com"}},
		{"https://www.google.co.uk/url?sa=t&url=https%3A%2F%2Fevil.example.com%2F", []string{"www.google.co.uk", "evil.example.com"}},
		{"https://www.youtube.com/redirect?event=x&q=http://evil.example.com/", []string{"www.youtube.com", "evil.example.com"}},
		{"https://l.facebook.com/l.php?u=https%3A%2F%2Fevil.example.com%2F&h=AT0", []string{"l.facebook.com", "evil.example.com"}},
		{"https://www.bing.com/ck/a?!&&p=0a&u=a1aHR0cHM6Ly9ldmlsLmV4YW1wbGUuY29tL2tlZXA&ntb=1", []string{"www.bing.com", "evil.example.com"}},
		{"https://www.google.com/search?q=https://evil.example.com/", []string{"www.google.com"}},
		{"https://www.google.com/url?q=/maps", []string{"www.google.com"}},
		{"https://google.evil.example/url?q=https://shop.example.org/", []string{"google.evil.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.link, func(t *testing.T) {
			for _, body := range []string{
				"Content-Type: text/html\n\n<a href=\"" + tt.link + "\">sign in</a>\n",
				"Content-Type: text/plain\n\nsign in: " + tt.link + "\n",
			} {
				m := Parse(crlf("From: a@example.org\n" + body))
				var hosts []string
				for _, u := range m.URLs {
					hosts = append(hosts, u.Host)
				}
				if !slices.Equal(hosts, tt.hosts) {
					t.Errorf("%s: hosts = %q, want %q", body[:24], hosts, tt.hosts)
				}
			}
		})
	}
}

// TestFormActions: where a form sends what is typed into it, its own
// action or the one its submit button names (formaction).
func TestFormActions(t *testing.T) {
	tests := []struct {
		html string
		want []string
	}{
		{`<form action="https://a.example/post"><input type=password></form>`, []string{"https://a.example/post"}},
		{`<form><button formaction="https://evil.example/k">Sign in</button></form>`, []string{"https://evil.example/k"}},
		{`<form><input type=submit formaction=" https://evil.example/k "></form>`, []string{"https://evil.example/k"}},
		{`<form><input action="https://x.example/"><a formaction="https://y.example/">z</a></form>`, nil},
	}
	for _, tt := range tests {
		m := Parse(crlf("From: a@example.org\nContent-Type: text/html\n\n" + tt.html + "\n"))
		if !slices.Equal(m.HTML.FormActions, tt.want) {
			t.Errorf("%s: FormActions = %q, want %q", tt.html, m.HTML.FormActions, tt.want)
		}
	}
}

// TestInlineMarkupDoesNotSplitWords: a browser shows a word broken by
// inline tags or comments whole, and that is the word the rules read.
func TestInlineMarkupDoesNotSplitWords(t *testing.T) {
	tests := []struct{ html, text string }{
		{`confirm your pass<span>word</span> now`, "confirm your password now"},
		{`con<b></b>firm your pass<!-- x -->word`, "confirm your password"},
		{`pass<span style="display:none">zz</span>word`, "password"},
		{`pass<script>x()</script>word`, "password"},
		{`<span>Your</span> <span>password</span>`, "Your password"},
		{"<span>Your</span>\n<span>password</span>", "Your password"},
		{`<p>Title</p>Text<br>more<div>block</div><h5>five</h5>six<li>item</li>`, "Title Text more block five six item"},
		{`Name<input name=n>Password<button>Go</button>`, "Name Password Go"},
	}
	for _, tt := range tests {
		m := Parse(crlf("From: a@example.org\nContent-Type: text/html\n\n" + tt.html + "\n"))
		if got := strings.Join(strings.Fields(m.HTML.Text), " "); got != tt.text {
			t.Errorf("%s: text %q, want %q", tt.html, got, tt.text)
		}
	}
}

// TestFindURLsInAnyCase: mail clients link a scheme in any case.
func TestFindURLsInAnyCase(t *testing.T) {
	tests := []struct {
		text  string
		hosts []string
	}{
		{"sign in: hTTps://evil.example.com/keep", []string{"evil.example.com"}},
		{"HtTp://evil.example.com/ and https://ok.example.org/", []string{"evil.example.com", "ok.example.org"}},
		{"xhTTps://evil.example.com/", nil}, // scheme xhttps
		{"ftp://files.example.com/ and ://nothing", nil},
		{"hTTps://", nil},
	}
	for _, tt := range tests {
		var hosts []string
		for _, u := range FindURLs(tt.text, 10) {
			hosts = append(hosts, u.Host)
		}
		if !slices.Equal(hosts, tt.hosts) {
			t.Errorf("FindURLs(%q) hosts = %q, want %q", tt.text, hosts, tt.hosts)
		}
	}
}

// TestPlainTextDoesNotStarveHTML: text/plain cannot use up the budget of
// the text/html alternative a reader shows; each has max_text_bytes.
func TestPlainTextDoesNotStarveHTML(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxTextBytes = 1000
	p := NewParser(nil).WithLimits(lim)
	for _, plain := range []string{strings.Repeat("ham ", 250), strings.Repeat("ham ", 5000)} {
		m := p.Parse(crlf("From: a@example.org\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n" +
			plain + "\n--b\nContent-Type: text/html\n\n<a href=\"https://phish.example.com/\">sign in</a>\n--b--\n"))
		if len(m.URLs) != 1 || m.URLs[0].Host != "phish.example.com" || m.HTML.Parts != 1 || m.HTML.Text != "sign in" {
			t.Errorf("after %d bytes of text/plain: URLs %+v, HTML %+v; want the HTML part read", len(plain), m.URLs, m.HTML)
		}
		if len(m.Text) != lim.MaxTextBytes {
			t.Errorf("after %d bytes of text/plain: %d bytes of it read, want %d", len(plain), len(m.Text), lim.MaxTextBytes)
		}
	}
}

// TestTextIsCutBetweenCharacters: the text read of a part stops at
// max_text_bytes, and a cut inside a character left the first bytes of
// one at the end of Message.Text, invalid UTF-8 that the rules read as
// 8-bit text without a declared charset (TEXT_UNDECLARED_8BIT) in long
// mail of any script but Latin, whatever charset it declared.
func TestTextIsCutBetweenCharacters(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxTextBytes = 1000
	p := NewParser(nil).WithLimits(lim)
	for _, tt := range []struct {
		name, head, body string
	}{
		// 1000 is no multiple of 3: the cut falls inside a character.
		{"UTF-8", "Content-Type: text/plain; charset=utf-8", strings.Repeat("会議", 400)},
		{"ISO-2022-JP", "Content-Type: text/plain; charset=iso-2022-jp", strings.Repeat("\x1b$B2q5D\x1b(B", 400)},
		{"windows-1251, one ASCII letter first", "Content-Type: text/plain; charset=windows-1251", "x" + strings.Repeat("\xd0\xe0\xe1\xee\xf2\xe0", 400)},
		{"UTF-16 in base64", "Content-Type: text/plain; charset=utf-16le\nContent-Transfer-Encoding: base64",
			base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x1a\x4f\xf0\x8b", 900)))},
		{"HTML", "Content-Type: text/html; charset=utf-8", "<p>" + strings.Repeat("会議", 400) + "</p>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := p.Parse(crlf("From: a@example.org\nMIME-Version: 1.0\n" + tt.head + "\n\n" + tt.body + "\n"))
			text := m.Text + m.HTML.Text
			if !utf8.ValidString(text) {
				t.Errorf("text read is not UTF-8, ends %q", text[max(0, len(text)-6):])
			}
			if len(text) < lim.MaxTextBytes-3*utf8.UTFMax {
				t.Errorf("%d bytes of text read, want about %d", len(text), lim.MaxTextBytes)
			}
		})
	}
}

// TestFindURLsIsLinear: candidates that are no URL do not count toward
// the limit, so each must not cost a search of the rest of the text; the
// whole text a message may have (max_text_bytes, 1 MiB) of them took 5 s
// of CPU, twice per message (the parser and the model), before.
func TestFindURLsIsLinear(t *testing.T) {
	for _, unit := range []string{"www. ", "http:// ", "Www.\n"} {
		text := strings.Repeat(unit, DefaultLimits().MaxTextBytes/len(unit))
		start := time.Now()
		if got := FindURLs(text+" https://found.example/", 10); len(got) != 1 || got[0].Host != "found.example" {
			t.Errorf("%q: FindURLs found %d URLs, want the one at the end", unit, len(got))
		}
		// Linear, this takes a few milliseconds; quadratic, seconds.
		if took := time.Since(start); took > time.Second {
			t.Errorf("%q: FindURLs over %d bytes took %v", unit, len(text), took)
		}
	}
}

// TestOverlongHostIsNoLink: a host longer than a name DNS carries (253
// bytes, in its ASCII form) is no site a reader's browser can reach, so
// it is no link; one that comes down to a name is (full-width letters,
// percent-encoded ones). Read as a link, its domain was asked of the
// public suffix list, whose error quoted it whole: a calendar part of
// "http://" and 19 MB of letters, where links are searched however big
// the part, cost 1.2 s of CPU.
func TestOverlongHostIsNoLink(t *testing.T) {
	for _, tt := range []struct {
		link, host string
	}{
		{"http://" + strings.Repeat("a.", 125) + "com/", strings.Repeat("a.", 125) + "com"},
		{"http://" + strings.Repeat("ａｂ.", 80) + "com/", strings.Repeat("ab.", 80) + "com"},
		{"http://" + strings.Repeat("%61b.", 80) + "com/", strings.Repeat("ab.", 80) + "com"},
		{"http://" + strings.Repeat("a.", 125) + "co.uk/", ""},
		{"http://" + strings.Repeat("a", 250) + ".com/", ""},
	} {
		u, ok := parseURL(tt.link)
		if tt.host == "" && ok {
			t.Errorf("%.40q...: a link to %.40q..., want none", tt.link, u.Host)
		} else if tt.host != "" && (!ok || u.Host != tt.host) {
			t.Errorf("%.40q...: a link to %.40q... (%v), want one to %.40q...", tt.link, u.Host, ok, tt.host)
		}
	}
	long := "http://" + strings.Repeat("a", 1<<20)
	FindURLs(long, 10) // once first, for what the tables' first use allocates
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := FindURLs(long, 10)
	runtime.ReadMemStats(&after)
	if len(got) != 0 {
		t.Errorf("a host of 1 MiB: %d links, want none", len(got))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<10 {
		t.Errorf("a host of 1 MiB: FindURLs allocated %d bytes, want at most 64 KiB", alloc)
	}
}

func TestParseAttachments(t *testing.T) {
	raw := crlf(`From: a@example.org
Subject: files
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain

see attached
--b
Content-Type: application/octet-stream; name="invoice.pdf.exe"
Content-Transfer-Encoding: base64

TVqQAAMAAAAEAAAA
--b
Content-Type: application/pdf
Content-Disposition: attachment; filename="report.pdf"

%PDF-1.4
--b--
`)
	m := Parse(raw)
	var atts []Part
	for _, p := range m.Parts {
		if p.IsAttachment() {
			atts = append(atts, p)
		}
	}
	if len(atts) != 2 {
		t.Fatalf("attachments = %+v", atts)
	}
	if atts[0].Filename != "invoice.pdf.exe" || atts[0].ContentType != "application/octet-stream" || atts[0].Size != 12 {
		t.Errorf("first attachment = %+v", atts[0])
	}
	if atts[1].Filename != "report.pdf" || atts[1].Disposition != "attachment" || atts[1].Size != len("%PDF-1.4") {
		t.Errorf("second attachment = %+v", atts[1])
	}
	if m.Text != "see attached" {
		t.Errorf("Text = %q", m.Text)
	}
}

// TestParseReadsParametersAsMailReadersDo: a Content-Type or
// Content-Disposition that mime.ParseMediaType refuses still names, for
// the recipient's mail reader, a file and a boundary; the scan reads them
// too (the first of a repeated parameter), and notes the breakage. So it
// does an RFC 2231 name in a charset mime.ParseMediaType silently drops.
func TestParseReadsParametersAsMailReadersDo(t *testing.T) {
	tests := []struct {
		name, partHeader   string
		wantType, wantDisp string
		wantFile           string
		broken             bool // MIME_BROKEN: a field mime.ParseMediaType refuses
	}{
		{"repeated filename", `Content-Type: application/octet-stream
Content-Disposition: attachment; filename="invoice.js"; filename="notes.txt"`, "application/octet-stream", "attachment", "invoice.js", true},
		// Ended at the blank, as Thunderbird and Python's email read it;
		// the whole value stays one of the part's AltNames.
		{"unquoted name with a space", `Content-Type: application/octet-stream
Content-Disposition: attachment; filename=my invoice.js`, "application/octet-stream", "attachment", "my", true},
		{"stray semicolon", `Content-Type: application/octet-stream
Content-Disposition: attachment; filename="invoice.hta";;`, "application/octet-stream", "attachment", "invoice.hta", true},
		{"repeated name in Content-Type", `Content-Type: Application/X-MSDownload; name="setup.exe"; name="x"`, "application/x-msdownload", "", "setup.exe", true},
		{"RFC 2047 base64 without its padding", `Content-Type: application/octet-stream
Content-Disposition: attachment; filename="=?utf-8?B?aW52b2ljZS5qcw?="`, "application/octet-stream", "attachment", "invoice.js", false},
		{"RFC 2047 in a charset nobody knows", `Content-Type: application/octet-stream
Content-Disposition: attachment; filename="=?x-unknown?Q?invoice=2Ejs?="`, "application/octet-stream", "attachment", "invoice.js", false},
		{"RFC 2231 with no charset", `Content-Type: application/octet-stream
Content-Disposition: attachment; filename*=''invoice.js`, "application/octet-stream", "attachment", "invoice.js", false},
		{"RFC 2231 with no charset, continued", `Content-Type: application/octet-stream; name*0*=''inv; name*1*=oice%2Ejs`, "application/octet-stream", "", "invoice.js", false},
		{"RFC 2231 in ISO-8859-1", `Content-Type: application/octet-stream
Content-Disposition: attachment; filename*=iso-8859-1''R%E9sum%E9.js`, "application/octet-stream", "attachment", "Résumé.js", false},
		{"RFC 2231 in Windows-1252, continued", `Content-Type: application/octet-stream; name*0*=windows-1252'en'set; name*1="up.e"; name*2*=x%65`, "application/octet-stream", "", "setup.exe", false},
		{"RFC 2231 continuation beside a repeat", `Content-Type: application/octet-stream
Content-Disposition: attachment; filename*0="inv"; filename*1="oice.js"; filename*0="x"`, "application/octet-stream", "attachment", "invoice.js", true},
		// Thunderbird's type is the first token, up to a ';', a ',' or a
		// blank; its parameters follow the first ';' or ','.
		{"comma before the first parameter", `Content-Type: application/octet-stream
Content-Disposition: attachment, filename="invoice.js"`, "application/octet-stream", "attachment", "invoice.js", true},
		{"comment after the type", `Content-Type: application/x-msdownload (exe); name="setup.exe"`, "application/x-msdownload", "", "setup.exe", true},
		{"text without a subtype is untyped text", `Content-Type: text; charset=us-ascii`, "text/plain", "", "", false},
		// And names a part that has no name parameter by these fields.
		{"name in Content-Name", `Content-Type: application/octet-stream
Content-Name: invoice.js`, "application/octet-stream", "", "invoice.js", false},
		{"name in X-Sun-Data-Name", `Content-Type: application/octet-stream
X-Sun-Data-Name: invoice.js`, "application/octet-stream", "", "invoice.js", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse(crlf("From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\n" + tt.partHeader + "\n\nalert(1)\n--b--\n"))
			if len(m.Parts) != 2 {
				t.Fatalf("parts = %+v", m.Parts)
			}
			p := m.Parts[1]
			if p.ContentType != tt.wantType || p.Disposition != tt.wantDisp || p.Filename != tt.wantFile {
				t.Errorf("part = %+v, want type %q, disposition %q, file %q", p, tt.wantType, tt.wantDisp, tt.wantFile)
			}
			if slices.Contains(symbolNames(m), SymbolMIMEBroken) != tt.broken {
				t.Errorf("symbols = %v, want %s: %v", symbolNames(m), SymbolMIMEBroken, tt.broken)
			}
		})
	}

	// A repeated boundary: the multipart is read with the first, as a
	// mail reader reads it, not as one opaque part.
	// So is one whose type a comment follows, or whose boundary follows
	// a comma.
	for _, ct := range []string{"multipart/mixed; boundary=b; boundary=c", "multipart/mixed (x); boundary=b", "multipart/mixed, boundary=b"} {
		m := Parse(crlf("From: a@example.org\nContent-Type: " + ct + "\n\n--b\nContent-Type: text/plain\n\nhidden text\n--b--\n"))
		if m.Structure != "multipart/mixed(text/plain)" || m.Text != "hidden text" {
			t.Errorf("%s: structure %q, text %q; want the multipart read with boundary b", ct, m.Structure, m.Text)
		}
	}
}

func TestParseBrokenMIMEBecomesSymbols(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"multipart without boundary", crlf("Content-Type: multipart/mixed\n\n--x\n\nhi\n--x--\n"), SymbolMIMEBroken},
		{"truncated multipart", crlf("Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nhi\n"), SymbolMIMEBroken},
		{"bad base64", crlf("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!not base64***\n"), SymbolMIMEBroken},
		{"unknown charset", crlf("Content-Type: text/plain; charset=x-klingon\n\nqapla\n"), SymbolUnknownCharset},
		{"unknown encoding", crlf("Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin\n"), SymbolUnknownEncoding},
		{"header without colon", []byte("Subject ok\r\nnot a header line\r\n\r\nbody"), SymbolHeaderBroken},
		{"nesting bomb", []byte(strings.Repeat("Content-Type: message/rfc822\r\n\r\n", 50) + "x"), SymbolMIMETooComplex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse(tt.raw)
			names := symbolNames(m)
			found := false
			for _, n := range names {
				found = found || n == tt.want
			}
			if !found {
				t.Fatalf("symbols = %v, want %s", names, tt.want)
			}
			for _, s := range m.Symbols {
				if s.Score <= 0 {
					t.Errorf("%s has weight %v, want a positive default", s.Name, s.Score)
				}
			}
		})
	}
}

func TestNewParserOverridesWeights(t *testing.T) {
	p := NewParser(map[string]float64{SymbolMIMEBroken: 4, "UNRELATED": 9})
	m := p.Parse(crlf("Content-Type: multipart/mixed\n\nx\n"))
	if len(m.Symbols) == 0 || m.Symbols[0].Name != SymbolMIMEBroken || m.Symbols[0].Score != 4 {
		t.Fatalf("symbols = %v, want MIME_BROKEN with weight 4", m.Symbols)
	}
}

// TestHTMLStackOverflowHidesNothing: whatever the nesting, the text after
// a closed non-rendered element is visible and its own content is not.
func TestHTMLStackOverflowHidesNothing(t *testing.T) {
	for _, tt := range []struct {
		name, html string
	}{
		{"style past the stack", strings.Repeat("<div>", 300) + "<style>secret</style>"},
		{"script past the stack", strings.Repeat("<b><i>", 200) + "<script>secret</script>"},
		{"self-closed script", "<script/>secret</script>"},
		{"svg nested past the stack", strings.Repeat("<svg>", 300) + "secret" + strings.Repeat("</svg>", 300)},
		{"head then body", "<head><title>secret</title></head>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse(crlf("Content-Type: text/html\n\n" + tt.html + "<p>after text</p>\n"))
			if !strings.Contains(m.HTML.Text, "after text") {
				t.Errorf("text after the element is hidden: %.100q", m.HTML.Text)
			}
			if strings.Contains(m.HTML.Text, "secret") {
				t.Errorf("content of a non-rendered element is shown: %.100q", m.HTML.Text)
			}
		})
	}
}

// isNumericHostReference is isNumericHost as first written, asking
// netip.ParseAddr about every host: the oracle of its pre-check.
func isNumericHostReference(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil || numericLabels(h)
}

func FuzzIsNumericHostMatchesReference(f *testing.F) {
	for _, h := range []string{"1.2.3.4", "::1", "fe80::1%eth0", "0x7f.1", "3232235777", "example.com", "1.2.3", "", ".", "1..2", "%", "1.2:3", "[::1]", "01.2.3.4"} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if got, want := isNumericHost(h), isNumericHostReference(h); got != want {
			t.Fatalf("isNumericHost(%q) = %v, reference %v", h, got, want)
		}
	})
}

// TestBufferedReaderIsTakenAsIs: the lent reader reads the message from the
// offset, and bufio.NewReader, which DKIM verification wraps its input in,
// takes it as it is instead of allocating a buffer of its own.
func TestBufferedReaderIsTakenAsIs(t *testing.T) {
	raw := crlf("Subject: hi\n\nbody\n")
	m := NewParser(nil).Parse(raw)
	for _, off := range []int64{0, int64(m.BodyOffset)} {
		r, release := m.BufferedReader(off)
		if bufio.NewReader(r) != r {
			t.Fatal("bufio.NewReader wrapped the lent reader again")
		}
		got, err := io.ReadAll(r)
		release()
		if err != nil || string(got) != string(raw[off:]) {
			t.Fatalf("from %d read %q (%v), want %q", off, got, err, raw[off:])
		}
	}
}

// TestEncodedWordsCostTheirSize: decoding a header's encoded words (RFC
// 2047) in a charset other than UTF-8 costs about their size. Each word
// took a charset reader's buffers and io.Copy's: 0.9 MB of windows-1252
// words in a Subject allocated 1.8 GB and 0.4 s of CPU per message.
func TestEncodedWordsCostTheirSize(t *testing.T) {
	tests := []struct{ name, word, want string }{
		{"windows-1252", "=?windows-1252?q?=E9?= ", "é"},
		{"ISO-2022-JP", "=?iso-2022-jp?b?GyRCJCIbKEI=?= ", "あ"},
		{"GB18030", "=?gb18030?b?xOM=?= ", "你"},
		{"UTF-7", "=?utf-7?q?+AOk-?= ", "é"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			words := 900_000 / len(tt.word)
			raw := crlf("Subject: " + strings.TrimSuffix(strings.Repeat(tt.word, words), " ") + "\nFrom: a@example.org\n\nbody\n")
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			m := Parse(raw)
			runtime.ReadMemStats(&after)
			if m.Subject != strings.Repeat(tt.want, words) {
				t.Fatalf("Subject %.40q..., want %d times %q", m.Subject, words, tt.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 40*uint64(len(raw)) {
				t.Errorf("parsing a %d KB header allocated %d MB, want under 40 times its size", len(raw)>>10, alloc>>20)
			}
		})
	}
}

// A short input, decoded at once, gives what the charset's streaming
// reader gives, or fails as it fails.
func FuzzCharsetReaderAtOnceMatchesStreaming(f *testing.F) {
	f.Add("windows-1252", []byte("caf\xe9 \x80"))
	f.Add("iso-2022-jp", []byte("\x1b$B$\"\x1b(B"))
	f.Add("utf-7", []byte("+AOk-+AOk"))
	f.Add("utf-16", []byte("\xff\xfea\x00b"))
	f.Add("gb18030", []byte("\xc4\xe3\x81"))
	f.Fuzz(func(t *testing.T, cs string, in []byte) {
		if len(in) > 4<<10 {
			return
		}
		read := func(r io.Reader) (string, error) {
			cr, err := charset.Reader(cs, r)
			if err != nil {
				return "", err
			}
			b, err := io.ReadAll(cr)
			return string(b), err
		}
		got, gotErr := read(bytes.NewReader(in))
		want, wantErr := read(struct{ io.Reader }{bytes.NewReader(in)}) // streamed
		if (gotErr != nil) != (wantErr != nil) || (gotErr == nil && got != want) {
			t.Fatalf("%s %q: at once %q (%v), streamed %q (%v)", cs, in, got, gotErr, want, wantErr)
		}
	})
}

// TestCalendarLinksAreMessageLinks: an invitation's links land in the
// calendar, so they count as the mail's, folded lines joined.
func TestCalendarLinksAreMessageLinks(t *testing.T) {
	const ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Payroll update\r\n" +
		"DESCRIPTION:Confirm your details at https://payroll-upd\r\n ate.example.net/login before Friday\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	tests := []struct {
		name, partHeader, body string
		want                   []string
	}{
		{"text/calendar, a folded link", "Content-Type: text/calendar; method=REQUEST", ics, []string{"payroll-update.example.net"}},
		{"an .ics sent as application/octet-stream", "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=invite.ics", ics, []string{"payroll-update.example.net"}},
		{"an invitation with no link", "Content-Type: text/calendar", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Lunch\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse([]byte("From: a@example.org\r\nSubject: Invitation\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
				"--b\r\nContent-Type: text/plain\r\n\r\nSee the invitation.\r\n--b\r\n" + tt.partHeader + "\r\n\r\n" + tt.body + "--b--\r\n"))
			var hosts []string
			for _, u := range m.URLs {
				if !u.InFile {
					t.Errorf("%s not marked as a file's link", u.Raw)
				}
				hosts = append(hosts, u.Host)
			}
			if !slices.Equal(hosts, tt.want) {
				t.Errorf("links %q, want %q", hosts, tt.want)
			}
		})
	}
}

// TestHTMLStrayEndTagsSearchNothing: an end tag whose element is not open
// is not matched against the open ones. 255 open elements and a
// megabyte of "</x>" had each read the whole stack (400 ms); the frames
// searched are now at most those the end tags close, and the elements
// are still closed as before.
func TestHTMLStrayEndTagsSearchNothing(t *testing.T) {
	const stray = 100_000
	for _, open := range []string{"<div>", "<xx>"} {
		src := strings.Repeat(open, 200) + strings.Repeat("</span></yy>", stray) +
			`<span style="display:none">hidden</span><yy>shown</yy>`
		var x htmlExtractor
		x.extract([]byte(src))
		if x.framesSearched > 1000 {
			t.Errorf("%s: %d open elements searched for %d stray end tags", open, x.framesSearched, 2*stray)
		}
		if !strings.Contains(x.info.Text, "shown") || strings.Contains(x.info.Text, "hidden") {
			t.Errorf("%s: text ...%q", open, x.info.Text[max(0, len(x.info.Text)-40):])
		}
	}
}

// TestTextLetters: the count the rules and the model share is
// ASCIILetters of the plain and the HTML text together, and TextASCII
// IsASCII of each, the same for every check asking at once.
func TestTextLetters(t *testing.T) {
	for _, plain := range []string{"HELLO there Ärger", "HELLO there"} {
		m := Parse(crlf("Subject: x\nContent-Type: multipart/alternative; boundary=b\n\n--b\n" +
			"Content-Type: text/plain; charset=utf-8\n\n" + plain + "\n--b\nContent-Type: text/html\n\n<p>SHOUT quietly</p>\n--b--\n"))
		l, u := ASCIILetters(m.Text)
		hl, hu := ASCIILetters(m.HTML.Text)
		if hl == 0 {
			t.Fatalf("no HTML text parsed: %q", m.HTML.Text)
		}
		type answer struct {
			letters, upper int
			ascii, html    bool
		}
		results := make(chan answer, 4)
		for i := range cap(results) {
			go func() {
				var a answer
				// Either may be asked first.
				if i%2 == 0 {
					a.letters, a.upper = m.TextLetters()
				}
				a.ascii, a.html = m.TextASCII()
				a.letters, a.upper = m.TextLetters()
				results <- a
			}()
		}
		for range cap(results) {
			if got, want := <-results, (answer{l + hl, u + hu, IsASCII(m.Text), IsASCII(m.HTML.Text)}); got != want {
				t.Errorf("%q: TextLetters, TextASCII = %v, want %v", plain, got, want)
			}
		}
	}
}

// A quoted display name keeps its RFC 2047 words in FromName, as net/mail
// reads it and the model was trained; ShownFromName decodes them, as
// every mail client does.
func TestShownFromName(t *testing.T) {
	for _, tt := range []struct{ from, name, shown string }{
		{`"=?gb18030?B?zfXA9g==?=" <wangli1988@qq.com>`, "=?gb18030?B?zfXA9g==?=", "王丽"},
		{`"=?utf-8?Q?Pay=50al?= Service" <s@evil.example>`, "=?utf-8?Q?Pay=50al?= Service", "PayPal Service"},
		{`=?utf-8?B?UGF5UGFs?= <s@evil.example>`, "PayPal", "PayPal"},
		{`"=?utf-8?B?UGF5UGFs?=" <service@evil.example> (x`, "=?utf-8?B?UGF5UGFs?=", "PayPal"}, // unparsable
		// An unquoted word decoding to a word's syntax is shown as
		// written: decoded once, never twice.
		{`=?utf-8?Q?=3D=3Futf-8=3FB=3FUGF5UGFs=3F=3D?= <s@evil.example>`, "=?utf-8?B?UGF5UGFs?=", "=?utf-8?B?UGF5UGFs?="},
		{`"Ana Silva" <ana@example.com>`, "Ana Silva", "Ana Silva"},
	} {
		m := Parse([]byte("From: " + tt.from + "\r\nSubject: hi\r\n\r\nhello\r\n"))
		if m.FromName != tt.name || m.ShownFromName() != tt.shown {
			t.Errorf("From: %s: FromName %q, ShownFromName %q; want %q, %q", tt.from, m.FromName, m.ShownFromName(), tt.name, tt.shown)
		}
	}
}

// Four rules read ShownFromName: a From of 900 KB of quoted RFC 2047
// words was decoded four times a message, 470 ms of the scan. It is
// decoded once.
func TestShownFromNameDecodedOnce(t *testing.T) {
	m := Parse([]byte("From: \"=?utf-8?B?UGF5UGFs?= =?utf-8?B?UGF5UGFs?=\" <s@evil.example>\r\nSubject: hi\r\n\r\nhello\r\n"))
	if got := m.ShownFromName(); got != "PayPalPayPal" {
		t.Fatalf("ShownFromName %q, want PayPalPayPal", got)
	}
	if n := testing.AllocsPerRun(10, func() { m.ShownFromName() }); n != 0 {
		t.Errorf("ShownFromName allocated %.0f times a call after the first: decoded again", n)
	}
}
