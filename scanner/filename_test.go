package scanner

import (
	"strings"
	"testing"
)

func TestExtensions(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{"invoice.pdf.exe", "exe,pdf"},
		{"Invoice.PDF .EXE", "exe,pdf"},
		{"a.pdf   .scr.", "scr,pdf"},
		{`C:\Users\x\doc.txt`, "txt"},
		{"invoice.js::$DATA", "js"},
		{"c:invoice.js", "js"},
		{"invoice.js:", "js"},
		{"invoice.js:$DATA", "js"},
		// A named stream holds the data beside an empty file: the name is
		// read whole here (and as saved, colons replaced, by the callers).
		// Cut at the colon, an honest "Amazon.com: Order.pdf" was an
		// executable (.com).
		{"invoice.pdf.js:Zone.Identifier", "identifier,js:zone"},
		{"Amazon.com: Order 114-123.pdf", "pdf,com: order 114-123"},
		{".bashrc", ""},
		{"noext", ""},
		{"invoice.iso.", "iso"},
		{"invoice.iso . ", "iso"},
		{"invoice.js\x00.txt", "js"},
		{"invoice.pdf.exe\x00", "exe,pdf"},
	}
	for _, tt := range tests {
		if got := strings.Join(Extensions(tt.name), ","); got != tt.want {
			t.Errorf("Extensions(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
