package smtpd

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestWriteFieldFoldsLongValues(t *testing.T) {
	var b bytes.Buffer
	value := strings.Repeat("SYMBOL_NAME(1.00),", 20)
	writeField(&b, "X-Spam-Symbols", value+"\r\nInjected: yes")
	out := b.String()
	for _, line := range strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
		if strings.HasPrefix(line, "Injected:") {
			t.Error("a CRLF in the value started a new header field")
		}
	}
	unfolded := strings.ReplaceAll(strings.TrimSuffix(out, "\r\n"), "\r\n\t", " ")
	if !strings.HasPrefix(unfolded, "X-Spam-Symbols: SYMBOL_NAME(1.00),") || strings.Count(unfolded, "SYMBOL_NAME") != 20 {
		t.Errorf("value lost in folding: %q", unfolded)
	}
}

// FuzzWriteField: whatever the value, the field is one header field with
// lines of at most 998 octets, no control characters but the folds' CRLF
// and tab, no whitespace-only continuation line, and every non-space
// character of the sanitised value kept in order.
func FuzzWriteField(f *testing.F) {
	for _, s := range []string{
		"from a ([127.0.0.1]) by mx.test (mxgrid) with ESMTP id X",
		strings.Repeat("a", 5000),
		strings.Repeat("ü", 2000) + " " + strings.Repeat("b, ", 500),
		"x\r\nInjected: yes\x00\x0b\u0085",
		strings.Repeat(" ", 300) + "y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		var b bytes.Buffer
		writeField(&b, "Received", value)
		out := b.String()
		if !strings.HasPrefix(out, "Received: ") || !strings.HasSuffix(out, "\r\n") {
			t.Fatalf("not one field: %q", out)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
		for i, line := range lines {
			if len(line) > maxFieldLine {
				t.Fatalf("line %d has %d octets", i, len(line))
			}
			if i > 0 && (!strings.HasPrefix(line, "\t") || strings.TrimLeft(line, " \t") == "") {
				t.Fatalf("line %d is not a continuation with content: %q", i, line)
			}
			for _, r := range line {
				if r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
					t.Fatalf("control character %U in line %d", r, i)
				}
			}
		}
		squash := func(s string) string { return strings.Join(strings.Fields(s), "") }
		if got, want := squash(strings.TrimPrefix(strings.Join(lines, ""), "Received: ")), squash(sanitizeHeaderText(value)); got != want {
			t.Fatalf("value altered:\n got %q\nwant %q", got, want)
		}
	})
}

// TestWriteFieldWithoutRuneBoundaries: a value of continuation bytes longer
// than a line has nowhere to cut on a rune boundary; it must still end.
func TestWriteFieldWithoutRuneBoundaries(t *testing.T) {
	done := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		writeField(&b, "Received", strings.Repeat("\x80", 3000))
		done <- b.String()
	}()
	select {
	case out := <-done:
		for i, line := range strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n") {
			if len(line) > maxFieldLine {
				t.Fatalf("line %d has %d octets", i, len(line))
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("writeField did not return")
	}
}
