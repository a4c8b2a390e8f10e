package textproto

import (
	"bufio"
	"strings"
	"testing"
)

// TestReadHeaderKeepsFieldsAtTheirSize: a field keeps a copy of its own
// size, not the buffer it was read into (256 bytes for "X: y", or twice
// what a long one outgrew).
func TestReadHeaderKeepsFieldsAtTheirSize(t *testing.T) {
	header := "X: y\r\n" + testHeaderString1 + "DKIM-Signature: " + strings.Repeat("a=b; ", 100) + "\r\n\r\n"
	h, err := ReadHeader(bufio.NewReader(strings.NewReader(header)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range h.l {
		// Allocations are rounded up to a size class, at most 1/8 more.
		if spare := cap(f.b) - len(f.b); spare > len(f.b)/8+16 {
			t.Errorf("%s: %d bytes kept for %d", f.k, cap(f.b), len(f.b))
		}
	}
}

// TestHeaderCount: Count is len(Values) for any spelling of the key.
func TestHeaderCount(t *testing.T) {
	h, err := ReadHeader(bufio.NewReader(strings.NewReader("From: a\r\nTo: b\r\nfrom: c\r\nFROM: d\r\n\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"From", "from", "To", "Cc"} {
		if got, want := h.Count(k), len(h.Values(k)); got != want {
			t.Errorf("Count(%q) = %d, want %d", k, got, want)
		}
	}
}
