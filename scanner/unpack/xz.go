package unpack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// The .xz container (The .xz File Format 1.2.1) is read here rather than
// by github.com/ulikunitz/xz: that reader allocates the LZMA2 dictionary
// each block header declares, up to 4 GiB, and its DictCap only raises
// it. Here a block's dictionary is at most what the scan may still read
// out of the file, and half of what is left of its expansion budget, the
// other half being what it may decode: no byte within that reaches
// further back, and xz -9 declares 64 MiB for a file of 12 bytes.

var xzMagic = []byte{0xFD, '7', 'z', 'X', 'Z', 0}

const (
	xzStreamHeaderLen = 12
	xzStreamFooterLen = 12
	xzFilterLZMA2     = 0x21
	// xzDecoderCost is what an LZMA2 decoder allocates besides its
	// dictionary (its probabilities with lc+lp at most 4, LZMA2's bound),
	// charged with the dictionary for each block: a file of a thousand
	// empty blocks is a thousand decoders.
	xzDecoderCost = 32 << 10
)

var errXZCorrupt = errors.New("xz: corrupt")

// IsXZ checks for an xz stream header: its magic, and flags whose CRC
// matches.
func IsXZ(data []byte) bool {
	_, err := xzStreamFlags(data)
	return err == nil
}

// xzStreamFlags reads a stream header and returns the size of its
// blocks' checks.
func xzStreamFlags(h []byte) (checkLen int, err error) {
	if len(h) < xzStreamHeaderLen || !bytes.HasPrefix(h, xzMagic) {
		return 0, fmt.Errorf("%w: no stream header", errXZCorrupt)
	}
	if h[6] != 0 || h[7] > 0x0F || crc32.ChecksumIEEE(h[6:8]) != binary.LittleEndian.Uint32(h[8:]) {
		return 0, fmt.Errorf("%w: stream flags", errXZCorrupt)
	}
	return xzCheckLen(h[7]), nil
}

// xzCheckLen is the size of a check of its type (3.1.3): none, CRC32,
// CRC64, SHA-256 and the reserved ones, three types a size.
func xzCheckLen(check byte) int {
	if check == 0 {
		return 0
	}
	return 4 << ((check - 1) / 3)
}

// xzBlock is what a block header says that decoding needs.
type xzBlock struct {
	headerLen int
	dict      int64 // the LZMA2 dictionary size it declares
}

// parseXZBlockHeader reads the block header at the start of b (3.1),
// which holds a single LZMA2 filter or is unscannable: the BCJ and delta
// filters xz can chain before it, the library does not read.
func parseXZBlockHeader(b []byte) (xzBlock, error) {
	if len(b) == 0 || b[0] == 0 {
		return xzBlock{}, fmt.Errorf("%w: no block header", errXZCorrupt)
	}
	n := (int(b[0]) + 1) * 4
	if n > len(b) {
		return xzBlock{}, fmt.Errorf("%w: block header cut short", errXZCorrupt)
	}
	h := b[:n-4]
	if crc32.ChecksumIEEE(h) != binary.LittleEndian.Uint32(b[n-4:]) {
		return xzBlock{}, fmt.Errorf("%w: block header CRC", errXZCorrupt)
	}
	flags := h[1]
	if flags&0x3C != 0 {
		return xzBlock{}, fmt.Errorf("%w: block flags", errXZCorrupt)
	}
	p := 2
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} { // compressed, uncompressed size
		if present {
			if _, k := xzVLI(h[p:]); k > 0 {
				p += k
			} else {
				return xzBlock{}, fmt.Errorf("%w: block sizes", errXZCorrupt)
			}
		}
	}
	filters := int(flags&3) + 1
	var id, size uint64
	for range filters {
		var k int
		if id, k = xzVLI(h[p:]); k == 0 {
			return xzBlock{}, fmt.Errorf("%w: filter id", errXZCorrupt)
		}
		p += k
		if size, k = xzVLI(h[p:]); k == 0 || size > uint64(len(h)-p-k) {
			return xzBlock{}, fmt.Errorf("%w: filter properties", errXZCorrupt)
		}
		p += k + int(size)
	}
	if filters > 1 || id != xzFilterLZMA2 {
		return xzBlock{}, fmt.Errorf("%w: xz filter %#x", ErrUnscannable, id)
	}
	if size != 1 || h[p-1] > 40 {
		return xzBlock{}, fmt.Errorf("%w: LZMA2 properties", errXZCorrupt)
	}
	if !allZero(h[p:]) {
		return xzBlock{}, fmt.Errorf("%w: block header padding", errXZCorrupt)
	}
	return xzBlock{headerLen: n, dict: xzDictSize(h[p-1])}, nil
}

// xzDictSize decodes an LZMA2 dictionary size byte, at most 40 (5.3.1).
func xzDictSize(b byte) int64 {
	if b == 40 {
		return 0xFFFFFFFF
	}
	return int64(2|b&1) << (b/2 + 11)
}

// xzVLI reads a variable-length integer (1.2): at most nine bytes, the
// last not zero unless it is the only one; k is 0 when there is none.
func xzVLI(b []byte) (v uint64, k int) {
	for i := 0; i < len(b) && i < 9; i++ {
		v |= uint64(b[i]&0x7F) << (7 * i)
		if b[i]&0x80 == 0 {
			if i > 0 && b[i] == 0 {
				return 0, 0
			}
			return v, i + 1
		}
	}
	return 0, 0
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// xzReader decompresses the streams of an .xz file one block after the
// other. Each block's dictionary is at most limit less what came out
// before it, limit being the most the caller reads, and half of what is
// left of the caller's expansion budget; it and a decoder are paid from
// that budget before they are allocated, and what they decode from what
// is left (ErrBudget past it).
type xzReader struct {
	data     []byte
	pos      int
	stream   int // where the current stream starts; -1 between streams
	checkLen int
	streams  int

	block    *lzma.Reader2
	packed   *bytes.Reader // the file from the block's data on
	blockAt  int
	dict     int64 // the block's dictionary
	declared int64 // and the one it declares, when more

	limit, out int64
	left       *int64 // the caller's expansion budget
}

func newXZReader(data []byte, limit int64, left *int64) *xzReader {
	return &xzReader{data: data, stream: -1, limit: limit, left: left}
}

func (x *xzReader) Read(p []byte) (int, error) {
	for {
		if x.block == nil {
			if err := x.next(); err != nil {
				return 0, err
			}
			continue
		}
		n, err := x.block.Read(p)
		x.out += int64(n)
		switch {
		case x.out > *x.left:
			err = ErrBudget
		case err == io.EOF:
			err = x.endBlock()
		case err != nil && x.declared > 0:
			// The block reaches back past the dictionary it got, or is
			// corrupt: the recipient's xz, with all of its dictionary,
			// may read on.
			err = fmt.Errorf("%w: block decoded with a %d-byte dictionary of the %d it declares: %v", ErrUnscannable, x.dict, x.declared, err)
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// next moves to the next block, reading the indexes, footers, stream
// headers and padding on the way; io.EOF at the end of the file.
func (x *xzReader) next() error {
	if x.stream < 0 {
		// Stream padding: multiples of four zero bytes.
		for x.pos+4 <= len(x.data) && allZero(x.data[x.pos:x.pos+4]) {
			x.pos += 4
		}
		if x.pos == len(x.data) && x.streams > 0 {
			return io.EOF
		}
		checkLen, err := xzStreamFlags(x.data[x.pos:])
		if err != nil {
			return err
		}
		x.stream, x.checkLen, x.streams = x.pos, checkLen, x.streams+1
		x.pos += xzStreamHeaderLen
	}
	if x.pos < len(x.data) && x.data[x.pos] == 0 {
		return x.endStream()
	}
	blk, err := parseXZBlockHeader(x.data[x.pos:])
	if err != nil {
		return err
	}
	left := *x.left - x.out - xzDecoderCost
	dict := max(min(blk.dict, x.limit+1-x.out, left/2), lzma.MinDictCap)
	cost := dict + xzDecoderCost
	if cost > *x.left-x.out {
		return ErrBudget
	}
	*x.left -= cost
	x.dict, x.declared = dict, 0
	if dict < blk.dict {
		x.declared = blk.dict
	}
	x.blockAt = x.pos
	x.pos += blk.headerLen
	x.packed = bytes.NewReader(x.data[x.pos:])
	x.block, err = lzma.Reader2Config{DictCap: int(dict)}.NewReader2(x.packed)
	return err
}

// endBlock moves past a decoded block's data, its padding and its check.
func (x *xzReader) endBlock() error {
	x.block = nil
	x.pos = len(x.data) - x.packed.Len()
	x.pos += (4 - (x.pos-x.stream)%4) % 4
	x.pos += x.checkLen
	if x.pos > len(x.data) {
		return fmt.Errorf("%w: block %d cut short", errXZCorrupt, x.blockAt)
	}
	return nil
}

// endStream reads past a stream's index (4.) and footer (2.1.2).
func (x *xzReader) endStream() error {
	p := x.pos + 1
	count, k := xzVLI(x.data[p:])
	if k == 0 {
		return fmt.Errorf("%w: index", errXZCorrupt)
	}
	p += k
	// Each record is two integers of a byte or more: count is bounded
	// by the bytes there are.
	for i := uint64(0); i < count; i++ {
		for range 2 { // unpadded and uncompressed size
			if _, k = xzVLI(x.data[p:]); k == 0 {
				return fmt.Errorf("%w: index record", errXZCorrupt)
			}
			p += k
		}
	}
	p += (4 - (p-x.stream)%4) % 4
	p += 4 // the index's CRC32
	if p+xzStreamFooterLen > len(x.data) || string(x.data[p+10:p+12]) != "YZ" {
		return fmt.Errorf("%w: stream footer", errXZCorrupt)
	}
	x.pos, x.stream = p+xzStreamFooterLen, -1
	return nil
}
