package textproto

import (
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

var spaces = regexp.MustCompile(" +")

// A close delimiter is "--b--", then only blanks to the line's end (RFC
// 2046 5.1.1). A line that goes on with text is the part's text, as
// Thunderbird and Python's email read it: ending the multipart there hid
// the parts after it (an attachment the recipient opens) from the scanner.
func TestCloseDelimiterIsWholeLine(t *testing.T) {
	pad := strings.Repeat(" ", 3*peekBufferSize)
	for _, tc := range []struct {
		name, body string
		parts      []string
	}{
		{"text after the close delimiter",
			"--b\r\n\r\none\r\n--b--x\r\ntwo\r\n--b\r\n\r\nthree\r\n--b--\r\n",
			[]string{"one\r\n--b--x\r\ntwo", "three"}},
		{"blank then text",
			"--b\r\n\r\none\r\n--b-- \tx\r\n--b\r\n\r\nthree\r\n--b--\r\n",
			[]string{"one\r\n--b-- \tx", "three"}},
		{"at a part's start",
			"--b\r\n\r\n--b--x\r\n--b\r\n\r\nthree\r\n--b--\r\n",
			[]string{"--b--x", "three"}},
		{"LF line ends",
			"--b\n\none\n--b--x\n--b\n\nthree\n--b--\n",
			[]string{"one\n--b--x", "three"}},
		// A multipart of no part, its close delimiter the first line: in
		// a file of LF line ends (a message saved from a mailbox, read by
		// mxgrid scan) it went unseen, the line was compared with CRLF
		// only, and the empty multipart was an error (MIME_BROKEN) that
		// the same message by SMTP, in CRLF, is not.
		{"LF close delimiter and no part",
			"--b--\n",
			nil},
		{"LF close delimiter and no part, after a preamble",
			"preamble\n--b--\n\nepilogue\n",
			nil},
		{"CRLF close delimiter and no part",
			"--b--\r\n",
			nil},
		{"text after padding past the buffer",
			"--b\r\n\r\none\r\n--b--" + pad + "x\r\n--b\r\n\r\nthree\r\n--b--\r\n",
			[]string{"one\r\n--b-- x", "three"}},
		{"padded close delimiter",
			"--b\r\n\r\none\r\n--b-- \t\r\n--b\r\n\r\nnot a part\r\n",
			[]string{"one"}},
		{"close delimiter at the end of input",
			"--b\r\n\r\none\r\n--b--",
			[]string{"one"}},
		{"padded close delimiter at the end of input",
			"--b\r\n\r\none\r\n--b--  ",
			[]string{"one"}},
		{"delimiters padded with a form feed and a vertical tab",
			"--b\f\r\n\r\none\r\n--b\v \r\n\r\ntwo\r\n--b--\f\r\n--b\r\n\r\nnot a part\r\n",
			[]string{"one", "two"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mr := NewMultipartReader(strings.NewReader(tc.body), "b")
			var parts []string
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("NextPart after %q: %v", parts, err)
				}
				b, err := io.ReadAll(p)
				if err != nil {
					t.Fatalf("part %d: %v", len(parts), err)
				}
				// squeezeBlanks drops padding past the buffer.
				parts = append(parts, spaces.ReplaceAllString(string(b), " "))
			}
			if !reflect.DeepEqual(parts, tc.parts) {
				t.Errorf("parts %q, want %q", parts, tc.parts)
			}
		})
	}
}
