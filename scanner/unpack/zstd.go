package unpack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// A Zstandard frame (RFC 8878 3.1.1) says how much history its decoder
// keeps, its window, and github.com/klauspost/compress/zstd allocates it
// (with one block's buffers) when the frame starts: a frame of a few
// bytes may declare gigabytes. The largest window of a file's frames is
// read here, paid from the expansion budget, and made the decoder's
// maximum.

const (
	zstdMagic = 0xFD2FB528
	// zstdMaxWindow is the reference decoder's default limit
	// (ZSTD_WINDOWLOG_LIMIT_DEFAULT, 2^27): a larger window, --long=31,
	// needs an option the recipient's zstd does not set unasked.
	zstdMaxWindow = 128 << 20
	// zstdBlockCost is what a decoder allocates per byte of its largest
	// block (at most 128 KiB, and the window) besides the window:
	// literals, sequences and their tables, measured at 12 for 128 KiB
	// blocks.
	zstdBlockCost = 16
	zstdMaxBlock  = 128 << 10
)

var errZstdCorrupt = errors.New("zstd: corrupt")

// IsZstd checks for a Zstandard frame or a skippable frame (3.1.2).
func IsZstd(data []byte) bool {
	if len(data) < 4 {
		return false
	}
	m := binary.LittleEndian.Uint32(data)
	return m == zstdMagic || m&0xFFFFFFF0 == 0x184D2A50
}

// zstdWindow is the largest window of the Zstandard frames in data
// (3.1.1.1.2): its window descriptor's, or its content size for a
// single-segment frame, at least 1 KiB. The frames are walked by their
// block headers, which give each block's size, and skippable frames
// skipped, as decoders do; a frame cut short or corrupt ends the walk.
// It fails when there is no frame header to read.
func zstdWindow(data []byte) (window uint64, err error) {
	frames := 0
	for len(data) >= 4 {
		if binary.LittleEndian.Uint32(data)&0xFFFFFFF0 == 0x184D2A50 {
			if len(data) < 8 || uint64(binary.LittleEndian.Uint32(data[4:])) > uint64(len(data)-8) {
				break
			}
			data = data[8+binary.LittleEndian.Uint32(data[4:]):]
			continue
		}
		w, rest, ok := zstdFrame(data)
		if w == 0 {
			break
		}
		window, frames = max(window, w), frames+1
		if !ok {
			break
		}
		data = rest
	}
	if frames == 0 {
		return 0, fmt.Errorf("%w: no frame header", errZstdCorrupt)
	}
	return window, nil
}

// zstdFrame reads the frame at the start of data: its window (0 without
// a header to read), what follows it, and whether it was read whole.
func zstdFrame(data []byte) (window uint64, rest []byte, ok bool) {
	if len(data) < 6 || binary.LittleEndian.Uint32(data) != zstdMagic || data[4]&0x08 != 0 {
		return 0, nil, false
	}
	fhd := data[4]
	single := fhd&0x20 != 0
	dictLen := []int{0, 1, 2, 4}[fhd&3]
	fcsLen := []int{0, 2, 4, 8}[fhd>>6]
	if single && fcsLen == 0 {
		fcsLen = 1
	}
	h := data[5:]
	if !single {
		exp, mantissa := uint64(h[0]>>3), uint64(h[0]&7)
		base := uint64(1) << (10 + exp)
		window = base + base/8*mantissa
		h = h[1:]
	}
	if len(h) < dictLen+fcsLen {
		return 0, nil, false
	}
	if single {
		fcs := h[dictLen : dictLen+fcsLen]
		switch fcsLen {
		case 1:
			window = uint64(fcs[0])
		case 2:
			window = uint64(binary.LittleEndian.Uint16(fcs)) + 256
		case 4:
			window = uint64(binary.LittleEndian.Uint32(fcs))
		case 8:
			window = binary.LittleEndian.Uint64(fcs)
		}
		window = max(window, zstd.MinWindowSize)
	}
	h = h[dictLen+fcsLen:]
	for {
		if len(h) < 3 {
			return window, nil, false
		}
		bh := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
		size := bh >> 3
		switch bh >> 1 & 3 {
		case 1: // RLE: one byte repeated
			size = 1
		case 3:
			return window, nil, false
		}
		if uint64(size) > uint64(len(h)-3) {
			return window, nil, false
		}
		h = h[3+size:]
		if bh&1 != 0 {
			break
		}
	}
	if fhd&0x04 != 0 { // content checksum
		if len(h) < 4 {
			return window, nil, false
		}
		h = h[4:]
	}
	return window, h, true
}

// zstdCost is what a decoder of a window allocates, as the library's
// low-memory mode does: twice a window under a block, else the window and
// half a block; and its block buffers.
func zstdCost(window uint64) uint64 {
	history := window + zstdMaxBlock/2
	if window < zstdMaxBlock {
		history = 2 * window
	}
	return history + zstdBlockCost*min(window, zstdMaxBlock)
}

// zstdReader reports a frame past the window the file was paid for (one
// zstdWindow did not reach), which the recipient's zstd reads, as
// unscannable.
type zstdReader struct{ *zstd.Decoder }

func (r zstdReader) Read(p []byte) (int, error) {
	n, err := r.Decoder.Read(p)
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		err = fmt.Errorf("%w: %v", ErrUnscannable, err)
	}
	return n, err
}

// newZstdReader is a decoder of data, its frames' largest window paid
// from the expansion budget *left, or ErrBudget, or ErrUnscannable past
// zstdMaxWindow. The caller closes it.
func newZstdReader(data []byte, left *int64) (zstdReader, error) {
	window, err := zstdWindow(data)
	if err != nil {
		return zstdReader{}, err
	}
	if window > zstdMaxWindow {
		return zstdReader{}, fmt.Errorf("%w: a zstd window of %d bytes, more than %d", ErrUnscannable, window, zstdMaxWindow)
	}
	cost := zstdCost(window)
	if cost > uint64(*left) {
		return zstdReader{}, ErrBudget
	}
	*left -= int64(cost)
	d, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(window), zstd.WithDecoderMaxMemory(window))
	return zstdReader{d}, err
}
