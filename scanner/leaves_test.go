package scanner_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/scanner"
)

// TestParseLeaves: the one walk gives every check the decoded content,
// including attachments inside attached messages, and a part cut at a
// byte limit tags instead of passing unseen.
func TestParseLeaves(t *testing.T) {
	raw := "From: a@example.com\r\nSubject: fwd\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n" +
		"--o\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nOl=E1, segue a fatura.\r\n" +
		"--o\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" +
		"Subject: inner\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\ninner words\r\n" +
		"--i\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"=?utf-8?q?fatura=5F2024.iso?=\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\nQ0QwMDE=\r\n--i--\r\n--o--\r\n"
	tests := []struct {
		name      string
		limits    scanner.Limits
		wantPaths []string
		wantData  []string
		wantTrunc bool
	}{
		{"defaults", scanner.DefaultLimits(), []string{"1", "2.1.1", "2.1.2"}, []string{"Olá, segue a fatura.", "inner words", "CD001"}, false},
		{"part limit", func() scanner.Limits { l := scanner.DefaultLimits(); l.MaxPartBytes = 4; return l }(),
			[]string{"1", "2.1.1", "2.1.2"}, []string{"Olá", "inne", "CD00"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := scanner.NewParser(nil).WithLimits(tt.limits).Parse([]byte(raw))
			var paths, data []string
			for _, l := range m.Leaves {
				paths = append(paths, l.Path)
				data = append(data, strings.TrimSpace(string(l.Data)))
			}
			if !slices.Equal(paths, tt.wantPaths) || !slices.Equal(data, tt.wantData) {
				t.Errorf("leaves %q %q, want %q %q", paths, data, tt.wantPaths, tt.wantData)
			}
			if got := m.Leaves[len(m.Leaves)-1].Filename; got != "fatura_2024.iso" {
				t.Errorf("Filename = %q, want the decoded name", got)
			}
			if strings.Contains(m.Text, "inner") {
				t.Errorf("Text %q holds an attached message's text", m.Text)
			}
			if got := hasSymbol(m.Symbols, scanner.SymbolMIMETooComplex); got != tt.wantTrunc {
				t.Errorf("MIME_TOO_COMPLEX = %v, want %v", got, tt.wantTrunc)
			}
		})
	}
}
