package smtp

import (
	"bytes"
	"errors"
	"io"
)

var ErrTooLongLine = errors.New("smtp: too long a line in input stream")

// lineLimitReader reads from the underlying Reader but restricts
// line length of lines in input stream to a certain length.
//
// If line length exceeds the limit - Read returns ErrTooLongLine
type lineLimitReader struct {
	R         io.Reader
	LineLimit int

	curLineLength int
}

func (r *lineLimitReader) Read(b []byte) (int, error) {
	if r.curLineLength > r.LineLimit && r.LineLimit > 0 {
		return 0, ErrTooLongLine
	}

	n, err := r.R.Read(b)
	if err != nil {
		return n, err
	}

	if r.LineLimit == 0 || n == 0 {
		return n, nil
	}
	if r.LineLimit < 0 {
		// Every byte is past the limit: the count the byte loop kept.
		if b[0] == '\n' {
			r.curLineLength = 1
		} else {
			r.curLineLength++
		}
		return 0, ErrTooLongLine
	}

	// mxgrid patch: line by line with IndexByte, not byte by byte (the
	// whole DATA body passes here). The count is what the byte loop kept
	// (a line's bytes plus one for the LF that began it), and past the
	// limit it stops at limit+1, so the error repeats on the next Read.
	for p := b[:n]; ; {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			i = len(p)
		}
		if r.curLineLength+i > r.LineLimit {
			r.curLineLength = r.LineLimit + 1
			return 0, ErrTooLongLine
		}
		if i == len(p) {
			r.curLineLength += i
			break
		}
		r.curLineLength = 1
		p = p[i+1:]
	}

	return n, nil
}
