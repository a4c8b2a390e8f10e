package quarantine

import (
	"strings"

	"github.com/mxgrid/mxgrid/scanner"
)

// Preview is what a person may safely see of a held message: a few
// headers and the text (plain parts, and the visible text of HTML parts),
// never the HTML itself, never remote content.
type Preview struct {
	From, To, Subject, Date string
	Text                    string
	// Attachments are the parts' file names.
	Attachments []string
}

// maxPreviewText bounds the text shown.
const maxPreviewText = 64 << 10

// PreviewOf parses msg with the scanner's bounded parser.
func PreviewOf(msg []byte) Preview {
	m := scanner.NewParser(nil).Parse(msg)
	p := Preview{From: m.Header.Get("From"), To: m.Header.Get("To"), Subject: m.Subject, Date: m.Header.Get("Date")}
	text := m.Text
	if text == "" {
		text = m.HTML.Text
	}
	if len(text) > maxPreviewText {
		text = strings.ToValidUTF8(text[:maxPreviewText], "")
	}
	p.Text = text
	for _, part := range m.Parts {
		if part.Filename != "" {
			p.Attachments = append(p.Attachments, part.Filename)
		}
	}
	return p
}
