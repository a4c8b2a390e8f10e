package scanner

import (
	"encoding/base64"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/transform"
)

// UTF-7 (RFC 2152) is no charset a mail client needs to send, but
// Thunderbird and older Outlooks still display it, and Go's encodings do
// not decode it: a text part or encoded word in it reached the model and
// the rules as "+AFA-ay+AFA-al", so spam wrote its words that way.
func init() {
	for _, name := range []string{"utf-7", "unicode-1-1-utf-7", "csunicode11utf7"} {
		charset.RegisterEncoding(name, utf7{})
	}
}

type utf7 struct{}

func (utf7) NewDecoder() *encoding.Decoder { return &encoding.Decoder{Transformer: &utf7Decoder{}} }

// NewEncoder is never used: mxgrid reads UTF-7, it does not write it.
func (utf7) NewEncoder() *encoding.Encoder { return encoding.Replacement.NewEncoder() }

// utf7Decoder decodes UTF-7 to UTF-8. Outside a shifted run bytes are
// copied; "+-" is '+'; a run of modified base64 after '+' is UTF-16 and
// ends at the first byte outside the alphabet, a '-' there being absorbed.
type utf7Decoder struct{ inRun bool }

func (d *utf7Decoder) Reset() { d.inRun = false }

// runChunk is the base64 decoded at a time within a long run: 8 characters
// are 48 bits, exactly three UTF-16 units, so chunks need no carried bits.
const runChunk = 8

func (d *utf7Decoder) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		if !d.inRun {
			c := src[nSrc]
			step := 1
			if c == '+' {
				switch {
				case nSrc+1 == len(src) && !atEOF:
					return nDst, nSrc, transform.ErrShortSrc
				case nSrc+1 < len(src) && src[nSrc+1] == '-':
					step = 2
				case nSrc+1 < len(src):
					d.inRun = true
					nSrc++
					continue
				}
			}
			if nDst == len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			dst[nDst] = c
			nDst++
			nSrc += step
			continue
		}
		end := nSrc
		for end < len(src) && isBase64(src[end]) {
			end++
		}
		closed := end < len(src) || atEOF
		take := end - nSrc
		if !closed {
			take -= take % runChunk
		}
		// Each chunk decodes to at most three runes of three bytes.
		short := transform.ErrShortSrc
		if room := (len(dst) - nDst) / 9 * runChunk; take > room {
			take, closed, short = room, false, transform.ErrShortDst
		}
		var units []uint16
		for {
			units = decodeUnits(src[nSrc : nSrc+take])
			// A surrogate pair split between chunks is decoded whole
			// with the next one.
			if closed || len(units) == 0 || !utf16.IsSurrogate(rune(units[len(units)-1])) || take < 2*runChunk {
				break
			}
			take -= runChunk
		}
		if take == 0 && !closed {
			return nDst, nSrc, short
		}
		for _, r := range utf16.Decode(units) {
			nDst += utf8.EncodeRune(dst[nDst:], r)
		}
		nSrc += take
		if closed {
			d.inRun = false
			if nSrc < len(src) && src[nSrc] == '-' {
				nSrc++
			}
		}
	}
	return nDst, nSrc, nil
}

func isBase64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}

// decodeUnits decodes unpadded base64 to big-endian UTF-16 units; bits
// short of a unit at the end are dropped, as RFC 2152 says they are zero.
func decodeUnits(b64 []byte) []uint16 {
	if len(b64)%4 == 1 {
		b64 = b64[:len(b64)-1] // six bits, not a byte
	}
	raw := make([]byte, base64.RawStdEncoding.DecodedLen(len(b64)))
	n, _ := base64.RawStdEncoding.Decode(raw, b64)
	units := make([]uint16, n/2)
	for i := range units {
		units[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
	}
	return units
}
