package smtp

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// lineLimitByByte is upstream's lineLimitReader.Read loop, kept as the
// reference for the line-by-line one.
type lineLimitByByte struct {
	R             io.Reader
	LineLimit     int
	curLineLength int
}

func (r *lineLimitByByte) Read(b []byte) (int, error) {
	if r.curLineLength > r.LineLimit && r.LineLimit > 0 {
		return 0, ErrTooLongLine
	}
	n, err := r.R.Read(b)
	if err != nil {
		return n, err
	}
	if r.LineLimit == 0 {
		return n, nil
	}
	for _, chr := range b[:n] {
		if chr == '\n' {
			r.curLineLength = 0
		}
		r.curLineLength++
		if r.curLineLength > r.LineLimit {
			return 0, ErrTooLongLine
		}
	}
	return n, nil
}

// chunkedReader hands out its data in the sizes of cuts, cyclically.
type chunkedReader struct {
	data []byte
	cuts []byte
	i    int
}

func (c *chunkedReader) Read(b []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := int(c.cuts[c.i%len(c.cuts)])%64 + 1
	if n > len(b) {
		n = len(b)
	}
	if n > len(c.data) {
		n = len(c.data)
	}
	c.i++
	copy(b, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// FuzzLineLimitReader: the line-by-line reader returns, Read for Read, the
// bytes and errors of the byte-by-byte one, whatever the limit and however
// the input is cut, and goes on doing so after an error (a too-long line
// stays an error on the next Read).
func FuzzLineLimitReader(f *testing.F) {
	f.Add([]byte("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"), []byte{3, 200}, 10, uint8(7))
	f.Add([]byte("short\nexactly-ten\nx"), []byte{1}, 10, uint8(4))
	f.Add([]byte("\n\n\n"), []byte{0}, -1, uint8(1))
	f.Add(bytes.Repeat([]byte("a"), 300), []byte{63, 17}, 100, uint8(50))
	f.Fuzz(func(t *testing.T, data, cuts []byte, limit int, dst uint8) {
		if len(cuts) == 0 {
			cuts = []byte{63}
		}
		limit %= 200
		got := &lineLimitReader{R: &chunkedReader{data: data, cuts: cuts}, LineLimit: limit}
		want := &lineLimitByByte{R: &chunkedReader{data: data, cuts: cuts}, LineLimit: limit}
		bg, bw := make([]byte, int(dst)%70+1), make([]byte, int(dst)%70+1)
		for k := 0; ; k++ {
			ng, eg := got.Read(bg)
			nw, ew := want.Read(bw)
			if ng != nw || !errors.Is(eg, ew) && eg != ew || !bytes.Equal(bg[:ng], bw[:nw]) {
				t.Fatalf("read %d: got %d %q %v, want %d %q %v", k, ng, bg[:ng], eg, nw, bw[:nw], ew)
			}
			if ew == io.EOF || k > 2*len(data)+8 {
				return
			}
		}
	})
}
