package smtp

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

// TestDataReaderKeepsBareCR covers the mxgrid patches (PATCHES.md).
func TestDataReaderKeepsBareCR(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\r\n.\rX\r\n.\r\n", "a\r\n\rX\r\n"},
		{"a\r\r\n..b\r\n.\r\n", "a\r\r\n.b\r\n"},
		{"a\r\r\n.\r\n", "a\r\r\n"},
		{"a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n"},
	} {
		r := &dataReader{r: bufio.NewReader(strings.NewReader(tc.in))}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
