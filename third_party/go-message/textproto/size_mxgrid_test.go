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
