// Package preview renders a held message for people: a few headers and its
// text, never its HTML, never remote content. It is apart from package
// quarantine so the store, which imports quarantine's types, does not link
// the scanner.
package preview

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/emersion/go-message"

	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/tracking"
)

// Preview is what a person may safely see of a held message: a few
// headers and the text (plain parts, and the visible text of HTML parts),
// never the HTML itself, never remote content.
type Preview struct {
	From, To, Subject, Date string
	// Text is the text of the plain parts, or, without any, the visible
	// text of the HTML parts.
	Text string
	// HTMLText is the visible text of the HTML parts when the message has
	// plain parts too and the two do not say the same: mail clients show
	// the HTML of a multipart/alternative (RFC 2046 5.1.4: the last
	// alternative is the preferred one), so a harmless text part shown
	// alone hid the phish the recipient reads. Text only, never markup,
	// nor the text the HTML hides.
	HTMLText string `json:",omitempty"`
	// HTMLCut says that the HTML went on past what the scanner reads of
	// it (its source's max_text_bytes, 256 KiB of its text), which mail
	// clients show and the preview cannot: a phish put past a filler
	// shows nowhere above, so whoever decides on the release is told.
	HTMLCut bool `json:",omitempty"`
	// Attachments are the parts' file names, one entry a part ("a.pdf or
	// a.html" for a part that names itself twice).
	Attachments []string
}

// maxPreviewText bounds the text shown.
const maxPreviewText = 64 << 10

// Of parses msg with the scanner's bounded parser (the same limits
// as on the mail path: a hostile message cannot make it expensive).
func Of(msg []byte) Preview {
	m := scanner.NewParser(nil).Parse(msg)
	// The headers and file names a person reads to decide on a release
	// are clipped as the stored Subject is (tracking.Clip): no line
	// breaks, no text running backwards to disguise a name, and no field
	// of a megabyte (the header's bound) answered whole.
	// From and To are shown as mail clients show them, their RFC 2047
	// words decoded as the Subject's are: as written, an encoded display
	// name hid the "PayPal Support" the recipient would see.
	h := message.Header{Header: m.Header}
	// A domain in another script is followed by its A-label, as the
	// envelope sender is (mailaddr.WithALabel): look-alike letters,
	// service@аррӏе.example, read as the domain they imitate. The field
	// is cut first and labelled after: labelled first, a display name
	// that put the address just short of the cut had its A-label cut
	// away. The labels are ASCII and add a few KB at most to the cut
	// field (one label per "@é," at worst).
	p := Preview{From: mailaddr.WithALabels(tracking.Clip(decoded(h, "From"))), To: mailaddr.WithALabels(tracking.Clip(decoded(h, "To"))),
		Subject: tracking.Clip(m.Subject), Date: tracking.Clip(m.Header.Get("Date"))}
	p.Text = shownText(m.Text)
	p.HTMLCut = m.HTML.TextCut
	if html := shownText(m.HTML.Text); p.Text == "" {
		p.Text = html
	} else if html != "" {
		p.HTMLText = htmlApart(m.Text, m.HTML.Text)
	}
	for _, part := range m.Parts {
		if names := part.Names(); len(names) > 0 {
			p.Attachments = append(p.Attachments, tracking.Clip(shownNames(names)))
		}
	}
	return p
}

// shownText is text as the preview shows it: trimmed and cut to
// maxPreviewText. The parser's text may share msg's bytes, which are the
// caller's only while its callback runs (quarantine.Service.Open): the
// preview keeps a copy, and not the whole message alive behind it.
func shownText(text string) string {
	if len(text) > maxPreviewText {
		text = strings.ToValidUTF8(text[:maxPreviewText], "")
	}
	return strings.Clone(strings.TrimSpace(text))
}

// htmlApart is the HTML's text as shown beside the text part's, or ""
// when the two say the same words. They are compared whole, not as cut
// for showing: compared cut, alternatives that agreed for their first
// maxPreviewText and then parted (a filler a mail client shows as
// nothing, then the phish) said the same, and the HTML's part past the
// cut, what the recipient reads, was never shown. Where they part past
// half of what is shown, the HTML's text is shown from there.
func htmlApart(text, html string) string {
	at := parting(text, html)
	switch {
	case at < 0:
		return ""
	case at <= maxPreviewText/2 || strings.TrimSpace(html[at:]) == "":
		return shownText(html)
	default:
		return "… " + shownText(html[at:])
	}
}

// parting is the offset in b of its first word that is not a's at the
// same place (len(b) when b's words are a's first ones), or -1 when a
// and b are the same words, split as strings.Fields splits them. It allocates
// nothing: the texts are up to scanner.limits.max_text_bytes each.
func parting(a, b string) int {
	i, j := 0, 0
	for {
		i = len(a) - len(strings.TrimLeftFunc(a[i:], unicode.IsSpace))
		j = len(b) - len(strings.TrimLeftFunc(b[j:], unicode.IsSpace))
		if i == len(a) && j == len(b) {
			return -1
		}
		wa, wb := word(a[i:]), word(b[j:])
		if wa != wb {
			return j
		}
		i, j = i+len(wa), j+len(wb)
	}
}

// word is s's first word: s up to its first space.
func word(s string) string {
	if k := strings.IndexFunc(s, unicode.IsSpace); k >= 0 {
		return s[:k]
	}
	return s
}

// decoded is h's field k with its RFC 2047 words decoded, or as written
// when they cannot be.
func decoded(h message.Header, k string) string {
	if v, err := h.Text(k); err == nil {
		return v
	}
	return h.Get(k)
}

// maxNamesShown bounds the names shown for one part: a part may repeat
// its name fields as often as its header holds fields.
const maxNamesShown = 4

// shownNames is the first maxNamesShown of a part's names, which the
// scanner keeps distinct: mail clients differ in which they save it
// under, and the checks judged them all. (Searching the names for
// duplicates again here took seconds for a part of thousands of names.)
func shownNames(names []string) string {
	s := strings.Join(names[:min(len(names), maxNamesShown)], " or ")
	if more := len(names) - maxNamesShown; more > 0 {
		s += fmt.Sprintf(" (and %d more names)", more)
	}
	return s
}
