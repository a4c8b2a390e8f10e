package textproto

import (
	"bufio"
	"errors"
	"io"
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

// A line between parts longer than the read buffer (upstream gave up on
// it, with bufio.ErrBufferFull, and so on every part after it) is read to
// its end in the buffer's room: text in the preamble is passed over, a
// delimiter padded with blanks or longer than the buffer is one. A line of
// text that starts as a delimiter and blanks past the buffer is text. This
// replaces upstream's TestLineLimit, which wanted NextPart to fail on an
// endless line: mail comes whole, bounded by its size limit.
func TestLongLinesBetweenParts(t *testing.T) {
	long := strings.Repeat("b", 3*peekBufferSize)
	for _, tc := range []struct {
		name, boundary, body string
	}{
		{"preamble line", "b", strings.Repeat("x", 1<<20) + "\r\n--b\r\n\r\none\r\n--b--\r\n"},
		{"padded delimiter", "b", "--b\r\n\r\nzero\r\n--b" + strings.Repeat(" ", 3*peekBufferSize) + "\r\n\r\none\r\n--b--\r\n"},
		{"padded close delimiter", "b", "--b\r\n\r\none\r\n--b--" + strings.Repeat("\t", 3*peekBufferSize) + "\r\n--b\r\n\r\nnot a part\r\n"},
		{"boundary over the buffer", long, "--" + long + "\r\n\r\none\r\n--" + long + "--\r\n"},
		{"text padded like a delimiter", "b", "--b\r\n\r\nzero\r\n--b" + strings.Repeat(" ", 3*peekBufferSize) + "x\r\n--b\r\n\r\none\r\n--b--\r\n"},
		{"text padded like a delimiter at a part's start", "b", "--b\r\n\r\n--b" + strings.Repeat(" ", 3*peekBufferSize) + "x\r\n--b\r\n\r\none\r\n--b--\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mr := NewMultipartReader(strings.NewReader(tc.body), tc.boundary)
			var last string
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("NextPart: %v", err)
				}
				b, err := io.ReadAll(p)
				if err != nil {
					t.Fatalf("part: %v", err)
				}
				last = string(b)
			}
			if last != "one" {
				t.Errorf("last part %q, want one", last)
			}
		})
	}
}

// Blanks that never end, after what may be a delimiter, are read to the
// end of the input, and end the part there.
func TestEndlessPaddingEnds(t *testing.T) {
	body := "--b\r\n\r\nzero\r\n--b" + strings.Repeat(" ", 10*peekBufferSize)
	p, err := NewMultipartReader(strings.NewReader(body), "b").NextPart()
	if err != nil {
		t.Fatalf("NextPart: %v", err)
	}
	if b, _ := io.ReadAll(p); string(b) != "zero" {
		t.Errorf("part %q, want zero", b)
	}
}

// An endless line in the preamble costs its reading, not its size.
func TestLongPreambleLineAllocatesLittle(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := NewMultipartReader(io.LimitReader(zeros{}, 16<<20), "b").NextPart()
	runtime.ReadMemStats(&after)
	if err == nil || err == io.EOF {
		t.Errorf("NextPart: %v, want an error", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("%d bytes allocated for a 16 MiB line", got)
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 0
	}
	return len(b), nil
}
