package smtpd

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/emersion/go-message"
)

// Bounds of eightBitHeader: past them it answers true, the refusal every
// 8-bit message had before it, rather than guess at a structure it did
// not follow. No honest message comes near them (the scanner reads 10
// levels).
const (
	// maxOpenMultiparts is how many multiparts may be open at once. Each
	// line that starts with "--" is compared with every open boundary, so
	// this bounds what a line of dashes costs.
	maxOpenMultiparts = 16
	// maxBoundary is the longest boundary followed (RFC 2046 §5.1.1 allows
	// 70 characters); a delimiter line is matched within one read.
	maxBoundary = 1000
	// maxHeaders is how many headers (parts', attached messages') are
	// read, as many as the scanner walks parts; maxTypes and maxTypeBytes
	// bound each one's Content-Type fields. Together they bound what
	// reading parameters costs, which line by line they would not.
	maxHeaders   = 1000
	maxTypes     = 4
	maxTypeBytes = 8 << 10
)

// eightBitHeader reports whether a header field of the message r reads
// holds a byte >= 0x80: the message's own header, the header of any MIME
// part, nested multiparts' included, or of an attached message (RFC 6532
// §3: UTF-8 in any of them needs SMTPUTF8). An 8-bit body alone does not
// (RFC 6531 §3.4).
//
// It reads r once, line by line, and stops at the first such byte or once
// no header can follow (the body of a message that is no multipart).
// Where readers differ it takes the reading that finds more headers: a
// part's header ends only at an empty line (a delimiter in it, a new
// part to Postfix, is a malformed line to Go), a delimiter is a line that
// starts with "--" and an open boundary (Postfix's reading; Go's also
// wants nothing after it but blanks), a multipart is closed only by an
// outer delimiter, and every Content-Type field of a header counts. A
// part's type is read as go-message reads it for the scanner.
func eightBitHeader(r io.Reader) (bool, error) {
	hs := headerScan{inHeader: true}
	br := bufio.NewReaderSize(r, 4<<10)
	// mid: the fragment read continues a line longer than the buffer;
	// skip: that line is a delimiter, no header field; field: it began in
	// a header, so it is one to go-message even as a delimiter (which a
	// header ends only to Postfix): "--b: \xe9" in a part's header is a
	// field named "--b" to Go.
	mid, skip, field := false, false, false
	for {
		frag, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return false, err
		}
		if !mid {
			field = hs.inHeader
			var ok bool
			if skip, ok = hs.line(frag); !ok {
				return true, nil
			}
		} else if !skip && hs.inHeader && !hs.addType(frag) {
			return true, nil
		}
		if field && has8Bit(frag) {
			return true, nil
		}
		if !hs.inHeader && len(hs.open) == 0 {
			// The body of a message that is no multipart: no header
			// follows.
			return false, nil
		}
		if err == io.EOF {
			return false, nil
		}
		mid = err == bufio.ErrBufferFull
	}
}

// multipart is an open multipart: its boundary, and whether it is a
// digest, whose untyped parts are messages (RFC 2046 §5.1.5).
type multipart struct {
	boundary []byte
	digest   bool
}

// headerScan is eightBitHeader's state between lines.
type headerScan struct {
	// open are the open multiparts, innermost last.
	open     []multipart
	inHeader bool
	// inDigest: the header being read is a part of a digest.
	inDigest bool
	// types are the header's Content-Type fields so far, unfolded;
	// inType: the field being read is one of them.
	types  [][]byte
	inType bool
	size   int
	// headers counts the headers begun after the message's own.
	headers int
}

// line reads the start of a line (all of it, or the first buffer of a
// long one). delimiter reports a delimiter line; ok is false past a bound.
func (hs *headerScan) line(l []byte) (delimiter, ok bool) {
	if bytes.HasPrefix(l, []byte("--")) {
		for i := len(hs.open) - 1; i >= 0; i-- {
			b := hs.open[i].boundary
			if !bytes.HasPrefix(l[2:], b) {
				continue
			}
			// An outer boundary ends the multiparts inside it.
			hs.open = hs.open[:i+1]
			if hs.inHeader {
				// go-message reads a part's header up to its empty
				// line, taking a delimiter there for a malformed line:
				// the header goes on, and the types read in it still
				// count, as the next part's do.
				hs.inType = false
				hs.inDigest = hs.inDigest || hs.open[i].digest
				hs.headers++
				return true, hs.headers <= maxHeaders
			}
			if bytes.HasPrefix(l[2+len(b):], []byte("--")) {
				// A close delimiter: the epilogue, a body, follows. The
				// multipart stays open: what closes one differs between
				// readers ("--b--x", or "--b--" on an LF line before
				// the first part, is no close to Go's, which reads a
				// part at a "--b" after it).
				return true, true
			}
			return true, hs.startHeader(hs.open[i].digest)
		}
	}
	switch {
	case !hs.inHeader || len(l) == 0:
		return false, true
	case string(l) == "\r\n" || string(l) == "\n":
		return false, hs.endHeader()
	case l[0] == ' ' || l[0] == '\t':
		return false, hs.addType(l)
	}
	hs.inType = false
	name, value, colon := bytes.Cut(l, []byte(":"))
	if !colon || !bytes.EqualFold(bytes.TrimRight(name, " \t"), []byte("Content-Type")) {
		return false, true
	}
	if len(hs.types) == maxTypes {
		return false, false
	}
	hs.inType = true
	hs.types = append(hs.types, nil)
	return false, hs.addType(value)
}

func (hs *headerScan) startHeader(inDigest bool) bool {
	hs.headers++
	hs.inHeader, hs.inDigest = true, inDigest
	hs.types, hs.inType, hs.size = hs.types[:0], false, 0
	return hs.headers <= maxHeaders
}

// addType adds what p holds of the Content-Type field being read.
func (hs *headerScan) addType(p []byte) bool {
	if !hs.inType {
		return true
	}
	p = bytes.TrimRight(p, "\r\n")
	hs.size += len(p)
	if hs.size > maxTypeBytes {
		return false
	}
	last := len(hs.types) - 1
	hs.types[last] = append(hs.types[last], p...)
	return true
}

// endHeader reads the types of the header just ended: the body that
// follows is a message's (its header next), or a multipart's.
func (hs *headerScan) endHeader() bool {
	hs.inHeader = hs.inDigest && len(hs.types) == 0
	for _, v := range hs.types {
		var h message.Header
		h.Set("Content-Type", string(v))
		t, params, _ := h.ContentType()
		t = strings.ToLower(t)
		switch {
		case strings.HasPrefix(t, "message/"):
			hs.inHeader = true
		case strings.HasPrefix(t, "multipart/"):
			// An empty boundary delimits with "--", as Thunderbird and
			// the scanner read it; none delimits nothing.
			b, ok := params["boundary"]
			if !ok {
				continue
			}
			if len(hs.open) == maxOpenMultiparts || len(b) > maxBoundary {
				return false
			}
			hs.open = append(hs.open, multipart{boundary: []byte(b), digest: t == "multipart/digest"})
		}
	}
	// An attached message's header follows.
	return !hs.inHeader || hs.startHeader(false)
}

// relayedBits answers relay.EightBit for a message as it leaves: our
// fields (head), then the body as received from off.
type relayedBits struct {
	head []byte
	b    *body
	off  int64
}

func (r *relayedBits) Any() bool { return has8Bit(r.head) || r.b.eightBit() }

// InHeader reads the message again, from the spool file when it is
// there: asked for a customer's server without SMTPUTF8 alone.
func (r *relayedBits) InHeader() (bool, error) {
	return eightBitHeader(&relayed{head: r.head, rest: r.b.reader(r.off)})
}

// heldBits answers relay.EightBit for a released message.
type heldBits []byte

func (h heldBits) Any() bool               { return has8Bit(h) }
func (h heldBits) InHeader() (bool, error) { return eightBitHeader(bytes.NewReader(h)) }
