// Package preview renders a held message for people: a few headers and its
// text, never its HTML, never remote content. It is apart from package
// quarantine so the store, which imports quarantine's types, does not link
// the scanner.
package preview

import (
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-message"

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
	p := Preview{From: tracking.Clip(decoded(h, "From")), To: tracking.Clip(decoded(h, "To")),
		Subject: tracking.Clip(m.Subject), Date: tracking.Clip(m.Header.Get("Date"))}
	p.Text = shownText(m.Text)
	if html := shownText(m.HTML.Text); p.Text == "" {
		p.Text = html
	} else if html != "" && !sameWords(p.Text, html) {
		p.HTMLText = html
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

// sameWords reports whether a and b are the same words, however spaced
// and broken into lines: an honest message's text alternative says what
// its HTML does, and is not shown twice.
func sameWords(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	return slices.Equal(fa, fb)
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
