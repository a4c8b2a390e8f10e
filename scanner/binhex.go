package scanner

import (
	"bytes"
	"encoding/binary"
)

// BinHex 4.0 (RFC 1741 appendix A) carries a Macintosh file as text: a
// header (name, type, the forks' lengths), the data fork and the resource
// fork, each with a CRC; runs of a byte compressed; six bits a character.
// Thunderbird shows a BinHex block in untyped text as an attachment, and
// decodes an application/mac-binhex40 part, so a file sent so must be
// scanned like an attached one.

// binhexMagic is the line before the data. Thunderbird opens a BinHex
// block in untyped text at this line alone, trailing blanks aside
// (MimeUntypedText_binhex_begin_line_p).
const binhexMagic = "(This file must be converted with BinHex 4.0)"

// binhexType is RFC 1741's media type for a part that is one BinHex file.
const binhexType = "application/mac-binhex40"

// binhexAlphabet are the characters of the six-bit encoding, value 0 first.
const binhexAlphabet = "!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"

// binhexValues maps a character to its six-bit value; 0xff for one
// outside the alphabet.
var binhexValues = func() (v [256]byte) {
	for i := range v {
		v[i] = 0xff
	}
	for i := range len(binhexAlphabet) {
		v[binhexAlphabet[i]] = byte(i)
	}
	return v
}()

// binhexRun marks a run: "c 0x90 n" is c n times in all, "0x90 0x00" a
// 0x90 of the data.
const binhexRun = 0x90

// binhexFiles finds the BinHex files in text, each after a binhexMagic
// line, decoding at most budget bytes in all.
func binhexFiles(text []byte, budget int) []embeddedFile {
	var files []embeddedFile
	for len(files) <= maxTextFiles && budget > 0 {
		text = afterBinhexMagic(text)
		if text == nil {
			break
		}
		f, rest, ok := binhexFile(text, budget)
		if ok {
			files = append(files, f)
			budget -= len(f.data)
		}
		text = rest
	}
	return files
}

// binhexPart finds the file of an application/mac-binhex40 part, which is
// one BinHex file (RFC 1741 section 2). Thunderbird's decoder starts at
// the first colon that begins a line, with or without a binhexMagic line
// before it. A file whose header has no name takes name, the part's (its
// Content-Type name or filename).
func binhexPart(name string) func(text []byte, budget int) []embeddedFile {
	return func(text []byte, budget int) []embeddedFile {
		if budget <= 0 {
			return nil
		}
		f, _, ok := binhexFile(text, budget)
		if !ok {
			return nil
		}
		if f.name == "" {
			f.name = name
		}
		return []embeddedFile{f}
	}
}

// afterBinhexMagic is text after its first binhexMagic line, nil if it has
// none. A mention of the line in prose does not open a block.
func afterBinhexMagic(text []byte) []byte {
	for from := 0; ; {
		i := bytes.Index(text[from:], []byte(binhexMagic))
		if i < 0 {
			return nil
		}
		i += from
		from = i + len(binhexMagic)
		end := from
		for end < len(text) && (text[end] == ' ' || text[end] == '\t' || text[end] == '\v' || text[end] == '\f') {
			end++
		}
		// A line ends at LF, CRLF or, from a Mac, CR alone.
		if (i == 0 || text[i-1] == '\n' || text[i-1] == '\r') && (end == len(text) || text[end] == '\n' || text[end] == '\r') {
			return text[end:]
		}
	}
}

// binhexFile decodes the BinHex file whose data starts at the first colon
// that begins a line of text, within budget bytes, and returns the text
// after it. ok is false when no file is there: no such colon, or the data
// ends before the header does.
//
// The CRCs are not checked. Thunderbird's decoder (Mozilla's
// nsBinHexDecoder) passes the data fork on before it reads the fork's CRC,
// and its CRC register only ever takes in the CRC bytes themselves, so a
// file with wrong CRCs reaches the user like any other. Scanning a damaged
// file is safe; passing it unscanned is not.
//
// The file is the data fork, which Thunderbird saves and the only fork
// other systems have. A file with an empty data fork is given its
// resource fork instead: Mac decoders restore it, and a classic Mac
// application lives there entirely.
//
// The name is kept as the header gives it, separators included: the
// checks judge a name by its last extension, as they do an archive
// member's path.
func binhexFile(text []byte, budget int) (f embeddedFile, rest []byte, ok bool) {
	start := lineStartColon(text)
	if start < 0 {
		return f, nil, false
	}
	r := binhexReader{text: text[start+1:]}
	f, ok = r.file(budget)
	return f, r.skip(), ok
}

// file reads the header and the fork that is the file, within budget bytes.
func (r *binhexReader) file(budget int) (embeddedFile, bool) {
	// The name's length is the low six bits of its byte (names have 1 to
	// 63 bytes), as Thunderbird reads it: read whole, a byte of 0x41 would
	// put the forks' lengths elsewhere than where Thunderbird finds them,
	// and the file scanned would not be the file it shows.
	length := r.read(1)
	if len(length) == 0 {
		return embeddedFile{}, false
	}
	name := r.read(int(length[0] & 63))
	// Version, type, creator, flags, the data and resource forks'
	// lengths, the header's CRC.
	header := r.read(1 + 4 + 4 + 2 + 4 + 4 + 2)
	if len(header) < 21 {
		return embeddedFile{}, false
	}
	dataLen, rsrcLen := binary.BigEndian.Uint32(header[11:]), binary.BigEndian.Uint32(header[15:])
	data := r.read(int(min(int64(dataLen), int64(budget))))
	if dataLen == 0 {
		r.read(2) // the empty data fork's CRC
		data = r.read(int(min(int64(rsrcLen), int64(budget))))
	}
	return embeddedFile{name: string(name), data: data}, true
}

// lineStartColon is the index of the first ':' in text at the start of a
// line, -1 if there is none.
func lineStartColon(text []byte) int {
	for i := 0; i < len(text); i++ {
		j := bytes.IndexByte(text[i:], ':')
		if j < 0 {
			return -1
		}
		i += j
		if i == 0 || text[i-1] == '\n' || text[i-1] == '\r' {
			return i
		}
	}
	return -1
}

// binhexReader gives the bytes BinHex text encodes: its characters read
// six bits each, the runs expanded. Line breaks and blanks between the
// characters are skipped, as decoders skip them; any other character
// outside the alphabet (the closing colon) ends the data.
type binhexReader struct {
	text  []byte // the characters not read yet
	bits  uint32 // bits read and not yet given
	nbits uint
	ended bool
	last  byte // the byte a run repeats
	run   int  // copies of last still to give
}

// decoded is the next byte of the six-bit decoding; false at the end of
// the data.
func (r *binhexReader) decoded() (byte, bool) {
	for r.nbits < 8 {
		if r.ended || len(r.text) == 0 {
			r.ended = true
			return 0, false
		}
		c := r.text[0]
		r.text = r.text[1:]
		switch c {
		case '\n', '\r', ' ', '\t':
			continue
		}
		v := binhexValues[c]
		if v == 0xff {
			r.ended = true
			return 0, false
		}
		r.bits = r.bits<<6 | uint32(v)
		r.nbits += 6
	}
	r.nbits -= 8
	return byte(r.bits >> r.nbits), true
}

// next is the next byte of the data, its runs expanded; false at its end.
func (r *binhexReader) next() (byte, bool) {
	for r.run == 0 {
		c, ok := r.decoded()
		if !ok {
			return 0, false
		}
		if c != binhexRun {
			r.last = c
			return c, true
		}
		n, ok := r.decoded()
		if !ok {
			return 0, false
		}
		if n == 0 {
			r.last = binhexRun
			return binhexRun, true
		}
		r.run = int(n) - 1 // the byte itself came before the marker
	}
	r.run--
	return r.last, true
}

// read is the next n bytes of the data, fewer where it ends. Its room is
// bounded by what the text left could hold without runs, so a length in
// a hostile header allocates no more than the text it came in.
func (r *binhexReader) read(n int) []byte {
	out := make([]byte, 0, min(n, len(r.text)*3/4+1))
	for len(out) < n {
		c, ok := r.next()
		if !ok {
			break
		}
		out = append(out, c)
	}
	return out
}

// skip reads to the end of the data and returns the text after it.
func (r *binhexReader) skip() []byte {
	for !r.ended {
		r.decoded()
	}
	return r.text
}
