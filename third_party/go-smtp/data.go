package smtp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

type EnhancedCode [3]int

// SMTPError specifies the error code, enhanced error code (if any) and
// message returned by the server.
type SMTPError struct {
	Code         int
	EnhancedCode EnhancedCode
	Message      string
}

// NoEnhancedCode is used to indicate that enhanced error code should not be
// included in response.
//
// Note that RFC 2034 requires an enhanced code to be included in all 2xx, 4xx
// and 5xx responses. This constant is exported for use by extensions, you
// should probably use EnhancedCodeNotSet instead.
var NoEnhancedCode = EnhancedCode{-1, -1, -1}

// EnhancedCodeNotSet is a nil value of EnhancedCode field in SMTPError, used
// to indicate that backend failed to provide enhanced status code. X.0.0 will
// be used (X is derived from error code).
var EnhancedCodeNotSet = EnhancedCode{0, 0, 0}

func (err *SMTPError) Error() string {
	s := fmt.Sprintf("SMTP error %03d", err.Code)
	if err.Message != "" {
		s += ": " + err.Message
	}
	return s
}

func (err *SMTPError) Temporary() bool {
	return err.Code/100 == 4
}

var ErrDataTooLarge = &SMTPError{
	Code:         552,
	EnhancedCode: EnhancedCode{5, 3, 4},
	Message:      "Maximum message size exceeded",
}

type dataReader struct {
	r     *bufio.Reader
	state int

	limited bool
	n       int64 // Maximum bytes remaining
}

// newDataReader readies the reader of a DATA body: the connection's own,
// set anew for each message rather than allocated (mxgrid patch), as the
// backend has consumed it when its Data returns (Session.Data).
func newDataReader(c *Conn) *dataReader {
	c.dataReader = dataReader{r: c.text.R}
	dr := &c.dataReader

	if c.server.MaxMessageBytes > 0 {
		dr.limited = true
		dr.n = int64(c.server.MaxMessageBytes)
	}

	return dr
}

// dataReader's states, as in net/textproto.
const (
	stateBeginLine = iota // beginning of line; initial state; must be zero
	stateDot              // read . at beginning of line
	stateDotCR            // read .\r at beginning of line
	stateCR               // read \r (possibly at end of line)
	stateData             // reading data in middle of line
	stateEOF              // reached .\r\n end marker line
)

func (r *dataReader) Read(b []byte) (n int, err error) {
	if r.limited {
		if r.n <= 0 {
			r.limited = false
			defer func() { r.limited = true }()
			return readPastLimit(r.Read)
		}
		if int64(len(b)) > r.n {
			b = b[0:r.n]
		}
	}

	// Code below is taken from net/textproto with only one modification to
	// not rewrite CRLF -> LF.

	// Run data through a simple state machine to
	// elide leading dots and detect End-of-Data (<CR><LF>.<CR><LF>) line.
	for n < len(b) && r.state != stateEOF {
		if r.state == stateData || r.state == stateBeginLine {
			// mxgrid patch: ordinary lines are copied in one step
			// (dataRun; upstream called ReadByte for each byte). Only
			// what is buffered is taken: reading more is left to
			// ReadByte below, so Read blocks and reads the connection
			// exactly when it did byte by byte.
			if m := r.dataRun(b[n:]); m > 0 {
				n += m
				continue
			}
		}
		var c byte
		c, err = r.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			break
		}
		switch r.state {
		case stateBeginLine:
			if c == '.' {
				r.state = stateDot
				continue
			}
			if c == '\r' {
				r.state = stateCR
				break
			}
			r.state = stateData
		case stateDot:
			if c == '\r' {
				r.state = stateDotCR
				continue
			}
			r.state = stateData
		case stateDotCR:
			if c == '\n' {
				r.state = stateEOF
				continue
			}
			// mxgrid patch: ".\r" not followed by "\n" is a dot-stuffed
			// line holding a bare CR. Upstream dropped that CR; emit it
			// and read c again after it.
			_ = r.r.UnreadByte()
			c = '\r'
			r.state = stateCR
		case stateCR:
			if c == '\n' {
				r.state = stateBeginLine
				break
			}
			// mxgrid patch: in "\r\r\n" the second CR may still end the
			// line; upstream forgot the line start after it.
			if c != '\r' {
				r.state = stateData
			}
		case stateData:
			if c == '\r' {
				r.state = stateCR
			}
		}
		b[n] = c
		n++
	}
	if err == nil && r.state == stateEOF {
		err = io.EOF
	}

	if r.limited {
		r.n -= int64(n)
	}
	return
}

// readPastLimit is a body's Read once MaxMessageBytes octets have been
// read; read reads on with the limit lifted. Only an octet of the body
// past them is over the limit: a message of exactly MaxMessageBytes, the
// SIZE the server offers (RFC 1870) and the most BDAT takes, ends here
// with io.EOF (mxgrid patch; upstream refused it 552 before it looked for
// the end-of-data line, so mail the server had said it would take
// bounced). An error reading the connection is that error, not
// ErrDataTooLarge.
func readPastLimit(read func([]byte) (int, error)) (int, error) {
	var one [1]byte
	if n, err := read(one[:]); n == 0 && err != nil {
		return 0, err
	}
	return 0, ErrDataTooLarge
}

// dataRun copies into b the buffered bytes the state machine would only
// copy, and returns how many: from the middle of a line to its CRLF, and
// on through every following line that starts with neither '.' nor CR.
// It stops before a bare CR, a CR last in the buffer, or such a line
// start, and copies nothing when nothing is buffered.
func (r *dataReader) dataRun(b []byte) int {
	k := r.r.Buffered()
	if k > len(b) {
		k = len(b)
	}
	if k == 0 {
		return 0
	}
	// Peek and Discard of buffered bytes never read the connection nor
	// fail.
	buf, _ := r.r.Peek(k)
	n := 0
	for n < len(buf) {
		if r.state == stateBeginLine {
			if c := buf[n]; c == '.' || c == '\r' {
				break
			}
			r.state = stateData
		}
		i := bytes.IndexByte(buf[n:], '\r')
		if i < 0 {
			n = len(buf)
			break
		}
		n += i
		if n+1 == len(buf) || buf[n+1] != '\n' {
			break
		}
		n += 2
		r.state = stateBeginLine
	}
	copy(b, buf[:n])
	r.r.Discard(n)
	return n
}
