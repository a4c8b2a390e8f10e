package textproto

import (
	"bufio"
	"fmt"
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

// TestReadHeaderAllocatesByField: a field read costs one allocation, its
// bytes; its struct is made a few to an array and its key, when already
// canonical, is read in its bytes. Keys in other spellings still come out
// canonical, and the raw field as it was.
func TestReadHeaderAllocatesByField(t *testing.T) {
	const fields = 30
	var header strings.Builder
	for i := 0; i < fields; i++ {
		fmt.Fprintf(&header, "X-Field-%d: value\r\n", i)
	}
	header.WriteString("\r\n")
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := ReadHeader(bufio.NewReader(strings.NewReader(header.String()))); err != nil {
			t.Fatal(err)
		}
	})
	// Besides the fields: the reader, the line buffer, the field list,
	// the key map and the fields' few arrays.
	if allocs > fields+15 {
		t.Errorf("%.0f allocations for %d fields", allocs, fields)
	}
	h, err := ReadHeader(bufio.NewReader(strings.NewReader("message-ID: <a@b>\r\nMessage-Id: <c@d>\r\n\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Values("MESSAGE-ID"); len(got) != 2 || got[0] != "<a@b>" || got[1] != "<c@d>" {
		t.Errorf("Values = %q", got)
	}
	if raw, _ := h.Raw("Message-Id"); string(raw) != "message-ID: <a@b>\r\n" {
		t.Errorf("Raw = %q", raw)
	}
}
