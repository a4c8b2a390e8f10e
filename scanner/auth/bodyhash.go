package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/mxgrid/mxgrid/scanner"
)

// bodyHash is the SHA-256 of the message body canonicalised as RFC 6376
// 3.4.3 (simple) or 3.4.4 (relaxed) say, computed as the body streams:
// a 25 MB spooled message carrying ARC sets was read into memory and
// split into lines, four copies of it outside the node's memory budget.
func bodyHash(msg *scanner.Message, relaxed bool) ([]byte, error) {
	h := sha256.New()
	bc := bodyCanonicalizer{w: bufio.NewWriterSize(h, 32<<10), relaxed: relaxed}
	if _, err := io.Copy(&bc, arcBody(msg)); err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	bc.close()
	if err := bc.w.Flush(); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// arcBody is the body the message signature's hash covers. A spooled
// message was normalised to CRLF on its way to the spool, so its body
// starts at BodyOffset; one in memory after its first empty line.
func arcBody(msg *scanner.Message) io.Reader {
	if msg.Raw == nil {
		return msg.Reader(int64(msg.BodyOffset))
	}
	if i := bytes.Index(msg.Raw, []byte("\r\n\r\n")); i >= 0 {
		return bytes.NewReader(msg.Raw[i+4:])
	}
	return bytes.NewReader(nil)
}

// bodyCanonicalizer writes what it is given canonicalised. Line ends
// (CRLF; a lone CR or LF is data) are held back until more data follows,
// so the empty lines at the end are dropped; in relaxed mode a run of
// blanks is held back too, and written as one space unless the line ends.
type bodyCanonicalizer struct {
	w       *bufio.Writer
	relaxed bool
	cr      bool // a CR was read and not yet placed
	blank   bool // relaxed: a run of blanks is pending
	ends    int  // line ends pending
	wrote   bool // data was written
}

func (bc *bodyCanonicalizer) Write(p []byte) (int, error) {
	for _, c := range p {
		if bc.cr {
			bc.cr = false
			if c == '\n' {
				bc.blank = false
				bc.ends++
				continue
			}
			bc.data('\r')
		}
		if c == '\r' {
			bc.cr = true
			continue
		}
		bc.data(c)
	}
	return len(p), nil
}

func (bc *bodyCanonicalizer) data(c byte) {
	if bc.relaxed && (c == ' ' || c == '\t') {
		bc.blank = true
		return
	}
	for ; bc.ends > 0; bc.ends-- {
		bc.w.WriteString("\r\n")
	}
	if bc.blank {
		bc.w.WriteByte(' ')
		bc.blank = false
	}
	bc.w.WriteByte(c)
	bc.wrote = true
}

// close ends the body: the last line with data gets its CRLF; an empty
// body is CRLF in simple mode and nothing in relaxed mode.
func (bc *bodyCanonicalizer) close() {
	if bc.cr {
		bc.cr = false
		bc.data('\r')
	}
	if bc.wrote || !bc.relaxed {
		bc.w.WriteString("\r\n")
	}
}
