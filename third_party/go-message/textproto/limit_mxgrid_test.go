package textproto

import (
	"bufio"
	"errors"
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
