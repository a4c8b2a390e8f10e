package preview

import (
	"slices"
	"strings"
	"testing"
)

// FuzzPreview: whatever a sender wrote, the preview does not fail, its
// texts stay within maxPreviewText, and the HTML's text is shown apart
// only beside a text part that says something else.
func FuzzPreview(f *testing.F) {
	f.Add("Subject: x\r\n\r\nplain\r\n")
	f.Add("Content-Type: text/html\r\n\r\n<p>a<b>b</b></p>\r\n")
	f.Add("Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n--b--\r\n")
	f.Add("Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\r\n \r\n--b\r\nContent-Type: text/html\r\n\r\n<i> </i>\r\n--b--\r\n")
	f.Fuzz(func(t *testing.T, msg string) {
		p := Of([]byte(msg))
		if len(p.Text) > maxPreviewText || len(p.HTMLText) > maxPreviewText {
			t.Fatalf("texts of %d and %d bytes", len(p.Text), len(p.HTMLText))
		}
		if p.HTMLText != "" && (p.Text == "" || sameWords(p.Text, p.HTMLText)) {
			t.Fatalf("HTML text %q shown apart beside text %q", p.HTMLText, p.Text)
		}
		// parting, which compares the whole texts without allocating,
		// agrees with strings.Fields.
		if (parting(p.Text, p.HTMLText) < 0) != sameWords(p.Text, p.HTMLText) {
			t.Fatalf("parting(%q, %q) = %d", p.Text, p.HTMLText, parting(p.Text, p.HTMLText))
		}
		if p.Text != strings.TrimSpace(p.Text) || p.HTMLText != strings.TrimSpace(p.HTMLText) {
			t.Fatalf("untrimmed texts %q, %q", p.Text, p.HTMLText)
		}
	})
}

// sameWords reports whether a and b are the same words, however spaced
// and broken into lines: an honest message's text alternative says what
// its HTML does, and is not shown twice.
func sameWords(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	return slices.Equal(fa, fb)
}
