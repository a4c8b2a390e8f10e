package smtpd

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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

// FuzzWriteFieldMatchesReference: writeField writes the same bytes as its
// first version below, which split tokens with a bufio.Scanner and
// collapsed blanks byte by byte.
func FuzzWriteFieldMatchesReference(f *testing.F) {
	for _, s := range []string{
		"from a ([127.0.0.1]) by mx.test (mxgrid) with ESMTP id X",
		"a, b,c  d\t\te \t f ",
		strings.Repeat("ab, ", 300),
		strings.Repeat("\x80", 1200),
		" \t ",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		var got, want bytes.Buffer
		writeField(&got, "X-Test", value)
		referenceWriteField(&want, "X-Test", value)
		if got.String() != want.String() {
			t.Fatalf("writeField(%q):\n got %q\nwant %q", value, got.String(), want.String())
		}
	})
}

func referenceWriteField(w *bytes.Buffer, name, value string) {
	value = referenceCollapseBlanks(sanitizeHeaderText(value))
	line := name + ": "
	width := len(line)
	w.WriteString(line)
	sc := bufio.NewScanner(strings.NewReader(value))
	sc.Buffer(nil, len(value)+1)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if len(data) == 0 {
			return 0, nil, nil
		}
		for i := 1; i < len(data); i++ {
			if data[i] == ' ' || data[i-1] == ',' {
				return i, data[:i], nil
			}
		}
		if atEOF {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	first := true
	for sc.Scan() {
		tok := sc.Text()
		if !first && width+len(tok) > 78 {
			tok = strings.TrimLeft(tok, " \t")
			if tok == "" {
				continue
			}
			w.WriteString("\r\n\t")
			width = 1
		}
		for width+len(tok) > maxFieldLine {
			cut := max(maxFieldLine-width, 0)
			for cut > 0 && !utf8.RuneStart(tok[cut]) {
				cut--
			}
			if cut == 0 && width <= 1 {
				cut = maxFieldLine - width
			}
			w.WriteString(tok[:cut])
			w.WriteString("\r\n\t")
			width = 1
			tok = tok[cut:]
		}
		w.WriteString(tok)
		width += len(tok)
		first = false
	}
	w.WriteString("\r\n")
}

func referenceCollapseBlanks(s string) string {
	var b strings.Builder
	blank := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' {
			if !blank {
				b.WriteByte(' ')
			}
			blank = true
			continue
		}
		blank = false
		b.WriteByte(c)
	}
	return b.String()
}
