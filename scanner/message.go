package scanner

import (
	"bufio"
	"bytes"

	"github.com/emersion/go-message/textproto"
)

// Message is a message parsed once and shared read-only by every check.
type Message struct {
	// Raw is the message exactly as received (CRLF line endings).
	Raw []byte
	// Header is the top-level header.
	Header textproto.Header
	// BodyOffset is where the body starts in Raw.
	BodyOffset int
	// Symbols are findings of the parser itself (for example MIME_BROKEN).
	Symbols []Symbol
}

// Parse parses raw. It never fails: what cannot be parsed becomes a symbol.
func Parse(raw []byte) *Message {
	m := &Message{Raw: raw}
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		m.Symbols = append(m.Symbols, Symbol{Name: "HEADER_BROKEN", Score: 1, Detail: err.Error()})
	}
	m.Header = h
	m.BodyOffset = len(raw) - br.Buffered()
	return m
}
