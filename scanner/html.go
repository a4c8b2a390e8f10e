package scanner

import (
	"bytes"
	"encoding/base64"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// HTMLInfo is what the text/html parts of a message show and hide.
type HTMLInfo struct {
	Parts int // text/html parts seen
	Bytes int // HTML source bytes seen
	// Text is the visible text (entities decoded, tags, scripts and
	// styles removed), capped at maxHTMLText bytes.
	Text string
	// TextCut reports that Text is not all of it: the HTML source went
	// past max_text_bytes, or its visible text past maxHTMLText. Mail
	// clients show the rest.
	TextCut bool
	// Hidden is text a reader cannot see: display:none, visibility:hidden,
	// zero-size fonts, white on white. Spammers hide random words there to
	// poison statistical filters.
	Hidden string
	// HiddenShownWords counts the words of Hidden in elements a <style>
	// rule of the message displays by their class on some screens: a
	// mobile-only menu, hidden inline for the desktop.
	HiddenShownWords int
	Tags             int
	Images           int
	// Decorations are the images whose width or height attribute or
	// style makes them too small to carry a message's words: logos,
	// icons, spacers, tracking pixels.
	Decorations  int
	Links        int
	Forms        int
	Scripts      int
	CommentBytes int // bytes inside <!-- comments -->, another hiding place
	// FormActions are the targets forms post to (at most maxFormActions):
	// a form in mail that posts a password anywhere is phishing's tool.
	FormActions []string
	// DataLinks counts links whose target is a data: URI, a page carried
	// inside the link itself, out of reach of URL blocklists.
	DataLinks int
}

const maxFormActions = 10

// URL is one link found in the message.
type URL struct {
	Raw string
	// Host is the lower-case host without userinfo or port.
	Host string
	// Domain is the registrable domain (eTLD+1) of Host, or Host itself for
	// IP literals and names without a public suffix.
	Domain   string
	IP       bool // host is an IP literal (or a decimal/hex encoded address)
	UserInfo bool // "user@" before the host, a classic way to fake a host
	Encoded  bool // %-escapes in the host
	// Text is the anchor text of an HTML link, trimmed and capped.
	Text   string
	Image  bool // from <img src>
	Plain  bool // found in plain text rather than in HTML markup
	InFile bool // from an attached file: a PDF's link annotation, an invitation's link
}

const (
	maxHTMLText  = 256 << 10
	maxAnchorLen = 200
	maxStack     = 256
)

// htmlExtractor accumulates HTMLInfo and links over the HTML parts of one
// message, in one pass of the x/net/html tokenizer per part.
type htmlExtractor struct {
	info   HTMLInfo
	urls   []URL
	base   URL // the part's <base href>, where its relative links go
	text   strings.Builder
	hidden strings.Builder
	// shown are the classes <style> rules display and painted those they
	// give a background other than white (classRules), cssRead the style
	// text read for them.
	shown, painted map[string]bool
	cssRead        int
	// framesSearched counts the open elements end tags were matched
	// against, for the test that bounds it.
	framesSearched int
}

type htmlFrame struct {
	tag     atom.Atom
	name    string
	skip    bool // this element or an ancestor is never rendered (head, svg)
	hidden  bool // this element or an ancestor hides its content
	shown   bool // ... and a <style> rule shows it by class on some screens
	bgDark  bool // the nearest background is not white
	fgWhite bool // the nearest font colour is white
}

type openKey struct {
	tag  atom.Atom
	name string
}

var voidElements = map[atom.Atom]bool{
	atom.Area: true, atom.Base: true, atom.Br: true, atom.Col: true, atom.Embed: true, atom.Hr: true,
	atom.Img: true, atom.Input: true, atom.Link: true, atom.Meta: true, atom.Param: true,
	atom.Source: true, atom.Track: true, atom.Wbr: true,
}

// blockElements separate words; inline ones (b, span, font) may split a
// word in two, which spammers use to break up trigger words.
var blockElements = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Br: true, atom.Tr: true, atom.Td: true, atom.Th: true,
	atom.Li: true, atom.Table: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true,
	atom.Title: true, atom.Blockquote: true, atom.Hr: true, atom.Center: true, atom.Pre: true,
	atom.H5: true, atom.H6: true, atom.Ul: true, atom.Ol: true, atom.Dl: true, atom.Dt: true, atom.Dd: true,
	atom.Section: true, atom.Article: true, atom.Header: true, atom.Footer: true, atom.Nav: true, atom.Aside: true,
	atom.Main: true, atom.Address: true, atom.Form: true, atom.Fieldset: true, atom.Legend: true, atom.Caption: true,
	atom.Figure: true, atom.Figcaption: true, atom.Thead: true, atom.Tbody: true, atom.Tfoot: true,
	atom.Input: true, atom.Button: true, atom.Select: true, atom.Option: true, atom.Textarea: true,
}

func (x *htmlExtractor) extract(src []byte) {
	x.info.Parts++
	x.info.Bytes += len(src)
	x.base = documentBase(src)
	z := html.NewTokenizer(bytes.NewReader(src))
	// The element stack is bounded: past maxStack, elements are not pushed
	// and their content belongs to the deepest element kept. Whether text is
	// shown is a property of the frames (never a counter beside them), so an
	// element that could not be pushed cannot leave a state behind that its
	// end tag fails to undo: 300 <div> then <style>x</style> hide nothing.
	stack := []htmlFrame{{}}
	// open counts the elements of stack above its root by tag (and name,
	// for a tag atom does not know).
	open := map[openKey]int{}
	// rawSkip: the tokenizer returns the content of script, style and
	// noscript as one raw text token up to their end tag (it cannot nest),
	// and that text is never shown, whatever the stack's depth.
	rawSkip := false
	inStyle := false // the raw text is a <style>'s
	// noscript: the raw text is a <noscript>'s, which mail readers, which
	// run no script, show as markup: its links are clicked there.
	noscript := false
	anchor := -1 // index in x.urls of the open <a>, if any
	// glued: the text shown last ends inside a word, and the next text
	// continues it unless a block or white space comes first: a browser
	// shows "pass<b></b>word" and "pass<!-- -->word" as "password".
	glued := false
	var anchorText strings.Builder
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			x.finish()
			return
		case html.CommentToken:
			x.info.CommentBytes += len(z.Raw())
			if block, ok := outlookBlock(z.Text()); ok {
				x.addMarkupLinks(block)
			}
		case html.TextToken:
			if noscript {
				x.addMarkupLinks(z.Raw())
			}
			if rawSkip && inStyle {
				x.classRules(z.Text())
			}
			top := stack[len(stack)-1]
			if rawSkip || top.skip {
				continue
			}
			t := z.Text()
			if len(bytes.TrimSpace(t)) == 0 {
				glued = false
				continue
			}
			if top.hidden || (top.fgWhite && !top.bgDark) {
				appendCapped(&x.hidden, t, true)
				if top.hidden && top.shown {
					x.info.HiddenShownWords += words(t)
				}
			} else {
				if !appendCapped(&x.text, t, !glued || t[0] <= ' ') {
					x.info.TextCut = true
				}
				glued = t[len(t)-1] > ' '
				if anchor >= 0 && anchorText.Len() < maxAnchorLen {
					anchorText.Write(t)
				}
				if open[openKey{atom.A, ""}] == 0 {
					x.addTextURLs(t)
				}
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			rawSkip, noscript, inStyle = false, false, false
			x.info.Tags++
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			fr := stack[len(stack)-1]
			fr.tag, fr.name = a, ""
			if a == 0 {
				fr.name = string(name)
			}
			var href, src, style, color, bg, action, width, height, class string
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				switch string(k) {
				case "href":
					href = string(v)
				case "xlink:href":
					// SVG's link, followed as an href is, which wins
					// where both are given (SVG 2).
					if href == "" {
						href = string(v)
					}
				case "src":
					src = string(v)
				case "class":
					class = string(v)
				case "width":
					width = string(v)
				case "height":
					height = string(v)
				case "style":
					style = string(v)
				case "color":
					color = string(v)
				case "bgcolor":
					bg = string(v)
				case "action":
					if a == atom.Form {
						action = string(v)
					}
				case "formaction":
					// A submit button's overrides its form's action.
					if a == atom.Button || a == atom.Input {
						action = string(v)
					}
				}
			}
			if blockElements[a] {
				x.text.WriteByte(' ')
				glued = false
			}
			switch a {
			case atom.Script:
				x.info.Scripts++
			case atom.Form, atom.Button, atom.Input:
				if a == atom.Form {
					x.info.Forms++
				}
				if action = strings.TrimSpace(action); action != "" && len(x.info.FormActions) < maxFormActions {
					x.info.FormActions = append(x.info.FormActions, action)
				}
			case atom.Img:
				x.info.Images++
				if decoration(width, height, style) {
					x.info.Decorations++
				}
				if src != "" {
					x.addURL(src, true)
				}
			case atom.A, atom.Area:
				if h := strings.TrimSpace(href); len(h) >= 5 && strings.EqualFold(h[:5], "data:") {
					x.info.DataLinks++
				}
				if href != "" {
					x.info.Links++
					if x.addURL(href, false) && a == atom.A {
						anchor = len(x.urls) - 1
						anchorText.Reset()
					}
				}
			}
			wasHidden := fr.hidden
			// A class's background first: the element's own attributes
			// and style override it, as in a browser.
			if hasAny(x.painted, class) {
				fr.bgDark = true
			}
			applyStyle(&fr, style, color, bg)
			if fr.hidden && !wasHidden && hasAny(x.shown, class) {
				fr.shown = true
			}
			if a == atom.Script || a == atom.Style || a == atom.Noscript {
				// Even written <script/>: the tokenizer still reads what
				// follows as the element's raw text.
				rawSkip, noscript, inStyle = true, a == atom.Noscript, a == atom.Style
				continue
			}
			if tt == html.SelfClosingTagToken || voidElements[a] {
				continue
			}
			if a == atom.Head || a == atom.Svg {
				fr.skip = true
			}
			if len(stack) < maxStack {
				stack = append(stack, fr)
				open[openKey{fr.tag, fr.name}]++
			}
		case html.EndTagToken:
			rawSkip, noscript, inStyle = false, false, false
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if blockElements[a] {
				x.text.WriteByte(' ')
				glued = false
			}
			if a == atom.A && anchor >= 0 {
				x.urls[anchor].Text = strings.TrimSpace(anchorText.String())
				anchor = -1
			}
			// Pop to the matching open element; a stray end tag closes
			// nothing. Only an element that is open is searched for: a
			// stray end tag under 256 open ones read all of them, and a
			// megabyte of "</x>" took 400 ms.
			key := openKey{a, ""}
			if a == 0 {
				key.name = string(name)
			}
			if open[key] == 0 {
				continue
			}
			for i := len(stack) - 1; i > 0; i-- {
				x.framesSearched++
				if stack[i].tag == a && (a != 0 || stack[i].name == key.name) {
					for _, fr := range stack[i:] {
						open[openKey{fr.tag, fr.name}]--
					}
					stack = stack[:i]
					break
				}
			}
		}
	}
}

func (x *htmlExtractor) finish() {
	x.info.Text = x.text.String()
	x.info.Hidden = x.hidden.String()
}

// appendCapped appends t to b up to maxHTMLText and reports whether all
// of it went in.
func appendCapped(b *strings.Builder, t []byte, sep bool) bool {
	if b.Len() >= maxHTMLText {
		return false
	}
	if sep && b.Len() > 0 {
		b.WriteByte(' ')
	}
	whole := true
	if len(t) > maxHTMLText-b.Len() {
		t, whole = t[:maxHTMLText-b.Len()], false
	}
	b.Write(t)
	return whole
}

// Bounds on what classRules reads and keeps.
const (
	maxCSS          = 64 << 10
	maxShownClasses = 512
)

// classRules records the classes that the rules of a style sheet display
// (display: anything but none): mail templates hide a mobile menu or
// layout inline for the desktop and show it by class in an @media rule.
// It records the classes given a background other than white too: the
// dark band or the coloured button of a template whose white text is on
// it, styled by class as most templates of today are. Selectors are read
// only for their ".class" parts, enough for those idioms.
func (x *htmlExtractor) classRules(css []byte) {
	css = css[:min(len(css), max(0, maxCSS-x.cssRead))]
	x.cssRead += len(css)
	for len(css) > 0 {
		rule, rest, _ := bytes.Cut(css, []byte("}"))
		css = rest
		i := bytes.LastIndexByte(rule, '{')
		if i < 0 {
			continue
		}
		sel, decl := rule[:i], ";"+strings.ToLower(strings.ReplaceAll(string(rule[i+1:]), " ", ""))
		if j := bytes.LastIndexByte(sel, '{'); j >= 0 {
			sel = sel[j+1:] // past an @media block's opening
		}
		v, ok := cssValue(decl, ";display:")
		shows := ok && !strings.HasPrefix(v, "none")
		v, ok = cssValue(decl, ";background-color:")
		if !ok {
			v, ok = cssValue(decl, ";background:")
		}
		paints := ok && paint(v)
		if !shows && !paints {
			continue
		}
		for {
			k := bytes.IndexByte(sel, '.')
			if k < 0 {
				break
			}
			sel = sel[k+1:]
			n := 0
			for n < len(sel) && (isASCIILetterOrDigit(sel[n]) || sel[n] == '-' || sel[n] == '_') {
				n++
			}
			if n == 0 {
				continue
			}
			if shows {
				x.shown = addClass(x.shown, string(sel[:n]))
			}
			if paints {
				x.painted = addClass(x.painted, string(sel[:n]))
			}
		}
	}
}

// paint: a CSS background value gives a colour other than white.
func paint(v string) bool {
	v = strings.TrimSuffix(strings.TrimSpace(v), "!important")
	switch v {
	case "", "none", "transparent", "inherit", "initial", "unset":
		return false
	}
	return !isWhite(v)
}

func addClass(set map[string]bool, c string) map[string]bool {
	if len(set) >= maxShownClasses {
		return set
	}
	if set == nil {
		set = map[string]bool{}
	}
	set[c] = true
	return set
}

// hasAny: set holds one of the classes of a class attribute.
func hasAny(set map[string]bool, class string) bool {
	if len(set) == 0 {
		return false
	}
	for _, c := range strings.Fields(class) {
		if set[c] {
			return true
		}
	}
	return false
}

func isASCIILetterOrDigit(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// words counts the fields of t holding a letter or a digit, as the rules
// count Hidden's.
func words(t []byte) int {
	n := 0
	for _, f := range bytes.Fields(t) {
		if bytes.IndexFunc(f, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0 {
			n++
		}
	}
	return n
}

// applyStyle updates a frame with what an element's attributes say about
// the visibility of its content.
func applyStyle(fr *htmlFrame, style, color, bg string) {
	if style != "" {
		s := strings.ToLower(strings.ReplaceAll(style, " ", ""))
		if strings.Contains(s, "display:none") || strings.Contains(s, "visibility:hidden") ||
			strings.Contains(s, "font-size:0") || strings.Contains(s, "font-size:1px") ||
			strings.Contains(s, "opacity:0;") || strings.HasSuffix(s, "opacity:0") {
			fr.hidden = true
		}
		if v, ok := cssValue(s, "background-color:"); ok {
			fr.bgDark = !isWhite(v)
		} else if v, ok := cssValue(s, "background:"); ok {
			fr.bgDark = !isWhite(v)
		}
		if v, ok := cssValue(s, ";color:"); ok {
			fr.fgWhite = isWhite(v)
		} else if strings.HasPrefix(s, "color:") {
			v, _ := cssValue(";"+s, ";color:")
			fr.fgWhite = isWhite(v)
		}
	}
	if bg != "" {
		fr.bgDark = !isWhite(strings.ToLower(strings.TrimSpace(bg)))
	}
	if color != "" {
		fr.fgWhite = isWhite(strings.ToLower(strings.TrimSpace(color)))
	}
}

// Below these sizes an image cannot hold a line of readable words beside
// another: a sales pitch drawn as a picture needs more room than a logo.
const (
	minWordsImageWidth  = 200
	minWordsImageHeight = 50
)

// decoration: an image declared, in its width or height attribute or in
// its style, smaller than a picture of words can be.
func decoration(width, height, style string) bool {
	s := strings.ToLower(strings.ReplaceAll(style, " ", ""))
	small := func(attr, prop string, lim int) bool {
		if n, ok := pixels(attr); ok && n < lim {
			return true
		}
		v, ok := cssValue(";"+s, ";"+prop+":")
		if !ok {
			return false
		}
		n, ok := pixels(v)
		return ok && n < lim
	}
	return small(width, "width", minWordsImageWidth) || small(height, "height", minWordsImageHeight)
}

// pixels reads a length in CSS pixels ("120", "120px"); percentages,
// other units and garbage are not a declared size.
func pixels(v string) (int, bool) {
	v = strings.TrimSuffix(strings.TrimSpace(strings.ToLower(v)), "px")
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 0
}

func cssValue(s, key string) (string, bool) {
	i := strings.Index(s, key)
	if i < 0 {
		return "", false
	}
	v := s[i+len(key):]
	if j := strings.IndexByte(v, ';'); j >= 0 {
		v = v[:j]
	}
	return v, true
}

func isWhite(v string) bool {
	v = strings.TrimPrefix(strings.TrimSpace(v), "#")
	switch v {
	case "fff", "ffffff", "white", "fefefe", "fffffe":
		return true
	}
	return false
}

// addURL records a link and reports whether it was kept.
func (x *htmlExtractor) addURL(raw string, image bool) bool {
	if len(x.urls) >= maxURLs {
		return false
	}
	u, ok := parseBrowserURL(raw)
	if !ok && x.base.Host != "" {
		u, ok = x.resolve(raw)
	}
	if !ok {
		return false
	}
	u.Image = image
	x.urls = append(x.urls, u)
	if t, ok := redirectTarget(u); ok && len(x.urls) < maxURLs {
		t.Image = image
		x.urls = append(x.urls, t)
	}
	return true
}

// outlookBlock is the markup of a conditional comment for Outlook
// ("<!--[if mso]>...<![endif]-->", "[if gte mso 9]"), which Outlook for
// Windows renders and browsers and other readers skip as a comment.
func outlookBlock(comment []byte) ([]byte, bool) {
	if len(comment) < 4 || !strings.EqualFold(string(comment[:4]), "[if ") {
		return nil, false
	}
	end := bytes.Index(comment, []byte("]>"))
	if end < 0 {
		return nil, false
	}
	cond := bytes.ToLower(comment[4:end])
	if !bytes.Contains(cond, []byte("mso")) || bytes.IndexByte(cond, '!') >= 0 {
		return nil, false
	}
	return comment[end+2:], true
}

// addMarkupLinks records the links of markup the part's tokenizer reads
// as text or a comment, which a reader renders: a conditional comment's
// for Outlook, where a phishing link in an <a> or in the href of a VML
// shape (<v:roundrect href=...>, the button newsletters draw for
// Outlook) is clicked by Outlook's readers, and a <noscript>'s, which
// readers that run no script (all of them) show. Such a link was in no
// link list.
func (x *htmlExtractor) addMarkupLinks(block []byte) {
	z := html.NewTokenizer(bytes.NewReader(block))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return
		case html.StartTagToken, html.SelfClosingTagToken:
			for more := true; more; {
				var k, v []byte
				k, v, more = z.TagAttr()
				if string(k) == "href" {
					x.addURL(string(v), false)
				}
			}
		}
	}
}

// addTextURLs records the bare links in text an HTML part shows outside
// any link: Gmail, Outlook and Apple Mail make a link of each, as of one
// in plain text, so "Confirm your account: https://evil.example/" with no
// <a> around it was a link for the reader and none for the link rules and
// the URL blocklists. They are plain links (URL.Plain), found as in Text.
func (x *htmlExtractor) addTextURLs(t []byte) {
	room := maxURLs - len(x.urls)
	if room <= 0 || !bytes.Contains(t, []byte("://")) && !bytes.Contains(t, []byte("ww.")) && !bytes.Contains(t, []byte("WW.")) {
		return
	}
	x.urls = append(x.urls, FindURLs(string(t), room)...)
}

// openRedirects are pages of well-known sites that send the reader on to
// whatever address a query parameter names. Phishers link them so that
// the link's host is google.com and not the look-alike the reader lands
// on; the target is judged as a link of its own.
var openRedirects = [...]struct{ domain, path, param string }{
	{"google.", "/url", "q"},
	{"google.", "/url", "url"},
	{"youtube.com", "/redirect", "q"},
	{"facebook.com", "/l.php", "u"},
	{"bing.com", "/ck/a", "u"}, // "a1" and the address in base64url
}

// redirectTarget is the link an open redirect u sends the reader to.
func redirectTarget(u URL) (URL, bool) {
	if !strings.Contains(u.Raw, "?") {
		return URL{}, false
	}
	p, err := url.Parse(u.Raw)
	if err != nil {
		return URL{}, false
	}
	for _, r := range openRedirects {
		if !strings.EqualFold(p.Path, r.path) || !(u.Domain == r.domain || strings.HasSuffix(r.domain, ".") && strings.HasPrefix(u.Domain, r.domain)) {
			continue
		}
		target := p.Query().Get(r.param)
		if r.domain == "bing.com" {
			b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(target, "a1"))
			if err != nil {
				continue
			}
			target = string(b)
		}
		if t, ok := parseURL(target); ok {
			t.Plain = u.Plain
			return t, true
		}
	}
	return URL{}, false
}

// documentBase is the link an HTML part's first <base href> names, the
// document base URL every relative link of the part goes to wherever the
// element stands (HTML's "first base element with an href, in tree
// order"): read as links were met, a <base> after them left them without
// a host, and "<a href=login>" then "<base href=https://evil.example/>"
// was no link for the rules while the reader opened evil.example. The
// part is tokenized for it only when it has a "<base" at all.
func documentBase(src []byte) URL {
	if !hasBaseTag(src) {
		return URL{}
	}
	z := html.NewTokenizer(bytes.NewReader(src))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return URL{}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, more := z.TagName()
			if atom.Lookup(name) != atom.Base {
				continue
			}
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				if string(k) == "href" && len(v) > 0 {
					u, _ := parseBrowserURL(string(v))
					return u
				}
			}
		}
	}
}

// hasBaseTag reports whether src holds "<base" in any case.
func hasBaseTag(src []byte) bool {
	for i := bytes.IndexByte(src, '<'); i >= 0; {
		if len(src)-i > 4 && bytes.EqualFold(src[i+1:i+5], []byte("base")) {
			return true
		}
		j := bytes.IndexByte(src[i+1:], '<')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

// resolve reads a relative link against the part's <base href>, as
// Outlook and Thunderbird open it: the base names the host, the links
// only a path ("baseStriker").
func (x *htmlExtractor) resolve(raw string) (URL, bool) {
	raw = browserClean(raw)
	if hasScheme(raw) {
		return URL{}, false // mailto:, cid:, javascript:
	}
	u := x.base
	if b, err := url.Parse(u.Raw); err == nil {
		if r, err := url.Parse(raw); err == nil {
			u.Raw = b.ResolveReference(r).String()
		}
	}
	return u, true
}

// hasScheme reports whether s starts with a URL scheme and its colon.
func hasScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':':
			return i > 0
		case 'a' <= c|0x20 && c|0x20 <= 'z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return false
}

// parseBrowserURL is parseURL of a link as a browser reads it from markup:
// browsers drop tabs and newlines anywhere in a URL (WHATWG URL parsing),
// so "http://ev&#9;il.example/" opens evil.example, and the C0 controls
// and spaces around it. A link without a scheme but with an authority
// ("//evil.example/", `\\evil.example`) takes the scheme of the page
// showing the message, https in webmail.
func parseBrowserURL(raw string) (URL, bool) {
	raw = browserClean(raw)
	if len(raw) >= 2 && (raw[0] == '/' || raw[0] == '\\') && (raw[1] == '/' || raw[1] == '\\') {
		raw = "https:" + raw
	}
	return parseURL(raw)
}

// browserClean drops what a browser drops from a link in markup.
func browserClean(raw string) string {
	if strings.ContainsAny(raw, "\t\r\n") {
		raw = strings.NewReplacer("\t", "", "\r", "", "\n", "").Replace(raw)
	}
	return strings.TrimSpace(strings.TrimFunc(raw, func(r rune) bool { return r <= ' ' }))
}

// maxHostBytes is the longest name DNS carries (RFC 1035 3.1: 255 bytes
// on the wire, 253 written): a longer host is no site a reader's browser
// can reach, so no link. Read as one, its domain was asked of the public
// suffix list, whose error quotes the name: 1.2 s of CPU for a calendar
// part (searched whole for links) of "http://" and 19 MB of letters.
const maxHostBytes = 253

// parseURL extracts the host of an absolute http(s) or scheme-less www.
// link. It is deliberately lenient and cheap: spam URLs are often not
// valid RFC 3986, and net/url rejects what a mail client would still open.
func parseURL(raw string) (URL, bool) {
	rest := raw
	lower := strings.ToLower(raw[:min(len(raw), len("https:"))]) // the scheme is all it is read for
	// A browser reads any run of slashes and backslashes after an
	// http(s) scheme, or none, as "//" (WHATWG URL, the special
	// authority states): "http:\\evil.example" and "https:/evil.example"
	// open evil.example.
	switch {
	case strings.HasPrefix(lower, "http:"):
		rest = strings.TrimLeft(rest[5:], `/\`)
	case strings.HasPrefix(lower, "https:"):
		rest = strings.TrimLeft(rest[6:], `/\`)
	case strings.HasPrefix(lower, "www."):
	default:
		return URL{}, false
	}
	if len(raw) > 2048 {
		raw = raw[:2048]
	}
	u := URL{Raw: raw}
	if i := strings.IndexAny(rest, "/?#\\"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		u.UserInfo = true
		rest = rest[i+1:]
	}
	if strings.HasPrefix(rest, "[") { // IPv6 literal
		if i := strings.IndexByte(rest, ']'); i > 0 {
			rest = rest[1:i]
		}
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	if strings.Contains(rest, "%") {
		u.Encoded = true
		rest = percentDecode(rest)
	}
	host := strings.ToLower(rest)
	if !IsASCII(host) {
		// A browser opens a name written in Unicode by its ASCII form
		// (UTS 46: fullwidth letters and ideographic full stops mapped,
		// then punycode), the form blocklists and the brand rules know:
		// raw, "pаypal.com" or "evil。example" escaped both.
		if a, err := idna.Lookup.ToASCII(host); err == nil {
			host = a
		}
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > maxHostBytes {
		return URL{}, false
	}
	u.Host = host
	u.Domain = host
	if isNumericHost(host) {
		u.IP = true
		return u, true
	}
	if d, err := publicsuffix.EffectiveTLDPlusOne(host); err == nil {
		u.Domain = d
	}
	return u, true
}

// isNumericHost recognises dotted IPs and the decimal/hex single-number
// forms (http://3232235777/) browsers accept.
func isNumericHost(h string) bool {
	// netip.ParseAddr allocates an error for every name it refuses; it
	// can only accept an IPv6 address or digits and dots.
	if strings.Contains(h, ":") || strings.Trim(h, "0123456789.") == "" {
		if _, err := netip.ParseAddr(h); err == nil {
			return true
		}
	}
	return numericLabels(h)
}

// numericLabels says whether every dot-separated label of h is a decimal
// or 0x-prefixed hex number.
func numericLabels(h string) bool {
	for rest := h; ; {
		label, tail, more := strings.Cut(rest, ".")
		digits := label
		hex := strings.HasPrefix(label, "0x")
		if hex {
			digits = label[2:]
		}
		if digits == "" {
			return false
		}
		for i := 0; i < len(digits); i++ {
			if !(digits[i] >= '0' && digits[i] <= '9' || hex && isHex(digits[i])) {
				return false
			}
		}
		if !more {
			return true
		}
		rest = tail
	}
}

func percentDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// AppendPlainURLs appends FindURLs(text, limit) to dst. When text is the
// message's Text and the parser's search of it went at least limit deep,
// the links are taken from URLs rather than searched for again.
func (m *Message) AppendPlainURLs(dst []URL, text string, limit int) []URL {
	if m.plainLimit < limit || text != m.Text {
		return append(dst, FindURLs(text, limit)...)
	}
	n := 0
	for _, u := range m.URLs[m.plainFrom:] {
		if n == limit {
			break
		}
		if u.Plain {
			dst = append(dst, u)
			n++
		}
	}
	return dst
}

// FindURLs finds at most limit http(s):// and www. links in plain text
// with a cheap scan (a full URL grammar such as xurls costs milliseconds per
// message).
func FindURLs(text string, limit int) []URL {
	var out []URL
	// The next link starts at the first prefix urlAnchors lists at or
	// after i, found through the three strings in them, where a search
	// per prefix read the text nine times. Each is looked for again only
	// once i has passed it: searching from each candidate read the rest
	// of the text again per candidate, and candidates that are no URL
	// ("www. " over and over) do not count toward limit: 1 MiB of them
	// took 5 s.
	var a urlAnchors
	a.init(text)
	for i := 0; i < len(text) && len(out) < limit; {
		start := a.next(text, i)
		if start < 0 {
			break
		}
		if strings.HasPrefix(text[start:], "://") {
			// A scheme in a case not listed ("hTTps://"), which
			// mail clients link as they link "https://".
			scheme := start
			for scheme > i && start-scheme <= len("https") && isASCIILetter(text[scheme-1]) {
				scheme--
			}
			start = scheme
		}
		end := start
		for end < len(text) && !isURLStop(text[end]) {
			end++
		}
		if u, ok := parseURL(strings.TrimRight(text[start:end], ".,;:!?)'\"")); ok {
			u.Plain = true
			out = append(out, u)
			if t, ok := redirectTarget(u); ok && len(out) < limit {
				out = append(out, t)
			}
		}
		if end == start {
			end++
		}
		i = end
	}
	return out
}

// urlAnchors holds where "://", "ww." and "WW." occur next in a text, -1
// where nowhere. The bare URLs FindURLs finds start with "http://",
// "https://", "HTTP://", "HTTPS://", "Http://", "www.", "WWW.", "Www." or
// "://" (a scheme in another case): each holds one of the three, "://"
// four or five bytes in (or at its start), the others one byte in.
type urlAnchors struct{ colon, ww, wW int }

func (a *urlAnchors) init(text string) {
	a.colon, a.ww, a.wW = indexFrom(text, "://", 0), indexFrom(text, "ww.", 0), indexFrom(text, "WW.", 0)
}

// next returns where the first of the prefixes at or after i starts, or
// -1. i never decreases from one call to the next.
func (a *urlAnchors) next(text string, i int) int {
	// A scheme's "://" at c: the prefix starts at c-5 (https, HTTPS), at
	// c-4 (http, HTTP, Http) or at c. A later "://" starts none before c:
	// its scheme's letters would cover the ':' at c.
	start := -1
	if a.colon >= 0 && a.colon < i {
		a.colon = indexFrom(text, "://", i)
	}
	if c := a.colon; c >= 0 {
		start = c
		if c-5 >= i && (strings.HasPrefix(text[c-5:], "https") || strings.HasPrefix(text[c-5:], "HTTPS")) {
			start = c - 5
		} else if c-4 >= i && (strings.HasPrefix(text[c-4:], "http") || strings.HasPrefix(text[c-4:], "HTTP") || strings.HasPrefix(text[c-4:], "Http")) {
			start = c - 4
		}
	}
	// "www." or "Www." at s is "ww." at s+1, "WWW." is "WW." at s+1: one
	// not preceded so starts nothing, now or later.
	a.ww = nextAnchor(text, "ww.", a.ww, i, "wW")
	a.wW = nextAnchor(text, "WW.", a.wW, i, "W")
	for _, w := range [...]int{a.ww, a.wW} {
		if w >= 0 && (start < 0 || w-1 < start) {
			start = w - 1
		}
	}
	return start
}

// nextAnchor returns the first occurrence of anchor at or after
// max(at, i+1) preceded by one of the bytes first, or -1; at is the last
// answer (-1 when there was no occurrence left).
func nextAnchor(text, anchor string, at, i int, first string) int {
	if at >= 0 && at < i+1 {
		at = indexFrom(text, anchor, i+1)
	}
	for at >= 0 && strings.IndexByte(first, text[at-1]) < 0 {
		at = indexFrom(text, anchor, at+1)
	}
	return at
}

// indexFrom is the index of the first sub in s at or after from, or -1.
func indexFrom(s, sub string, from int) int {
	if j := strings.Index(s[from:], sub); j >= 0 {
		return from + j
	}
	return -1
}

func isASCIILetter(c byte) bool {
	return 'a' <= c|0x20 && c|0x20 <= 'z'
}

func isURLStop(c byte) bool {
	return c <= ' ' || c == '<' || c == '>' || c == '"' || c == '\'' || c == '(' || c == ')' || c >= 0x7f
}
