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

// MaxReplyBytes bounds one reply a client reads, continuation lines and
// all (mxgrid patch). textproto reads a multi-line reply for as long as
// lines come, and holds all of it: a server that never ends its reply (a
// tenant can name any server as its route) held the client until the
// command timed out and filled its memory meanwhile. Real replies, EHLO's
// included, take a few hundred bytes; the longest banners a few KB.
const MaxReplyBytes = 16 << 10

// ErrReplyTooLong is the error of a reply past MaxReplyBytes. The
// connection is then in an unknown state and must be closed.
var ErrReplyTooLong = errors.New("smtp: reply longer than the limit")

// replyLimitReader fails a read that would take the reply past left
// bytes. The client sets left before each reply; bytes its buffer reads
// ahead (at most the buffer's size) count against the reply being read.
type replyLimitReader struct {
	R    io.Reader
	left int
}

func (r *replyLimitReader) Read(b []byte) (int, error) {
	if r.left <= 0 {
		return 0, ErrReplyTooLong
	}
	if len(b) > r.left {
		b = b[:r.left]
	}
	n, err := r.R.Read(b)
	r.left -= n
	return n, err
}
