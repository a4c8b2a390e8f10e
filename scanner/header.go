package scanner

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/emersion/go-message/textproto"
)

// Limits of every header the parser reads: the message's, its parts' and
// its attached messages'. go-message read a header with no bound: each
// field costs ~450 bytes of heap, so 8 MB of "X: y" lines became 620 MB.
// The patched copy in third_party/go-message applies them to part and
// attached headers; findHeaderExtent to the message's own. Real headers
// stay far below both (Postfix keeps 100 KB per field; a list message
// through Microsoft 365 has ~100 fields).
const (
	MaxHeaderBytes  = textproto.MaxHeaderBytes
	MaxHeaderFields = textproto.MaxHeaderFields
)

// headerExtent is where a header section ends, found before it is parsed.
type headerExtent struct {
	// end is where the last header line ends; body where the body
	// starts: after the empty line, or at the line that is not a header
	// field, which then belongs to the body.
	end, body int64
	// unterminated: a line that is not a header field ended the header
	// (no empty line before it). A customer's server that reads on to
	// the empty line would take what follows for header fields and MIME
	// structure the scan never saw, so the relay inserts the empty line.
	unterminated bool
	// badLine is that line's start, clipped, for the symbol's detail.
	badLine []byte
	// tooLarge: the header passes MaxHeaderBytes or MaxHeaderFields;
	// end is then where the limit was reached.
	tooLarge bool
}

// findHeaderExtent reads the header lines from br (positioned at start)
// and says where they end, as strictly as textproto.ReadHeader parses
// them or more: every line it counts as a field, ReadHeader accepts, so
// the header parsed is exactly the one the relay passes on.
func findHeaderExtent(br *bufio.Reader, start int64) (headerExtent, error) {
	pos, fields := start, 0
	for first := true; ; first = false {
		lineStart := pos
		chunk, err := br.ReadSlice('\n')
		if len(chunk) == 0 && err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if err != io.EOF {
				return headerExtent{}, err
			}
			return headerExtent{end: pos, body: pos}, nil
		}
		// The line is classified by its start, before reading on
		// invalidates chunk.
		line := bytes.TrimSuffix(bytes.TrimSuffix(chunk, []byte("\n")), []byte("\r"))
		var bad []byte
		switch {
		case len(line) == 0:
			return headerExtent{end: lineStart, body: lineStart + int64(len(chunk))}, nil
		case !first && isFoldSpace(line[0]):
			// A continuation of the field before.
		case isFieldStart(line):
			fields++
		default:
			bad = clip(line, 100)
		}
		pos += int64(len(chunk))
		for errors.Is(err, bufio.ErrBufferFull) && pos-start <= MaxHeaderBytes {
			chunk, err = br.ReadSlice('\n')
			pos += int64(len(chunk))
		}
		switch {
		case bad != nil:
			return headerExtent{end: lineStart, body: lineStart, unterminated: true, badLine: bad}, nil
		case pos-start > MaxHeaderBytes || fields > MaxHeaderFields:
			return headerExtent{end: lineStart, body: lineStart, tooLarge: true}, nil
		case err == io.EOF:
			return headerExtent{end: pos, body: pos}, nil
		case err != nil:
			return headerExtent{}, err
		}
	}
}

func isFoldSpace(c byte) bool { return c == ' ' || c == '\t' }

// isFieldStart: a field name of printable ASCII but ':' (RFC 5322 §2.2),
// which may be followed by spaces, then the colon, within the first 998
// octets. Stricter than ReadHeader, which also takes an empty name.
func isFieldStart(line []byte) bool {
	colon := bytes.IndexByte(line[:min(len(line), 998)], ':')
	if colon <= 0 {
		return false
	}
	name := bytes.TrimRight(line[:colon], " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

func clip(b []byte, n int) []byte {
	return bytes.Clone(b[:min(len(b), n)])
}
