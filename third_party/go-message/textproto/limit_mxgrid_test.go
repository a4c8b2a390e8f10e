package textproto

import (
	"bufio"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestReadHeaderLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string
		fields int
		err    error
	}{
		{"at the field limit", strings.Repeat("X: y\r\n", MaxHeaderFields) + "\r\n", MaxHeaderFields, nil},
		{"one field more", strings.Repeat("X: y\r\n", MaxHeaderFields+1) + "\r\n", MaxHeaderFields, ErrHeaderTooLarge},
		{"bytes past the limit", "A: " + strings.Repeat("x", MaxHeaderBytes) + "\r\n\r\n", 0, ErrHeaderTooLarge},
		{"folded past the limit", "A: 1\r\n" + strings.Repeat(" xxxxxxxxxxxxxx\r\n", MaxHeaderBytes/16) + "\r\n", 0, ErrHeaderTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadHeader(bufio.NewReader(strings.NewReader(tc.header)))
			if !errors.Is(err, tc.err) || h.Len() != tc.fields {
				t.Errorf("%d fields, err %v; want %d, %v", h.Len(), err, tc.fields, tc.err)
			}
		})
	}
}

// A part header is read by ReadHeader too: NextPart fails on one past the
// limit instead of reading it whole.
func TestPartHeaderLimit(t *testing.T) {
	body := "--b\r\n" + strings.Repeat("X: y\r\n", MaxHeaderFields+1) + "\r\npart\r\n--b--\r\n"
	mr := NewMultipartReader(strings.NewReader(body), "b")
	if _, err := mr.NextPart(); !errors.Is(err, ErrHeaderTooLarge) {
		t.Errorf("NextPart: %v, want ErrHeaderTooLarge", err)
	}
}

// A part header of many lines that are no field is read past, as
// Thunderbird reads it, with one line buffer: a header, a buffer and a
// formatted error for each line allocated 600 bytes a line, 180 times
// the size of a header of "x" lines. The first line's error is kept.
func TestPartHeaderJunkLinesAllocateLittle(t *testing.T) {
	const lines = 100_000
	body := "--b\r\n" + strings.Repeat("x\r\n", lines) + "A: b\r\n\r\npart\r\n--b--\r\n"
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p, err := NewMultipartReader(strings.NewReader(body), "b").NextPart()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, errMalformedHeader) || !strings.HasPrefix(err.Error(), errMalformedHeader.Error()+" line: x\r\n") {
		t.Fatalf("NextPart: %v, want the malformed line x", err)
	}
	if p.Header.Get("A") != "b" || p.Header.Len() != 1 {
		t.Errorf("header %v, want A: b", p.Header.Map())
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("%d bytes allocated for %d lines", got, lines)
	}
}
