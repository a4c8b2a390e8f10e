package archdir

import (
	"bytes"
	"encoding/binary"
	"io"
	"unicode/utf16"

	"github.com/ulikunitz/xz/lzma"
)

// The 7z format (7-Zip's DOC/7zFormat.txt): a 32-byte signature header
// points to the header at the end of the archive; 7-Zip writes that header
// LZMA-compressed ("encoded"), described by a small plain header.

var sig7z = []byte{'7', 'z', 0xBC, 0xAF, 0x27, 0x1C}

// Is7z reports a 7z signature at the start of data.
func Is7z(data []byte) bool { return bytes.HasPrefix(data, sig7z) }

// Property ids.
const (
	id7End             = 0x00
	id7Header          = 0x01
	id7ArchiveProps    = 0x02
	id7MainStreams     = 0x04
	id7FilesInfo       = 0x05
	id7PackInfo        = 0x06
	id7UnpackInfo      = 0x07
	id7SubStreams      = 0x08
	id7Size            = 0x09
	id7CRC             = 0x0A
	id7Folder          = 0x0B
	id7CodersUnpack    = 0x0C
	id7NumUnpackStream = 0x0D
	id7EmptyStream     = 0x0E
	id7EmptyFile       = 0x0F
	id7Name            = 0x11
	id7EncodedHeader   = 0x17
)

// Coder ids.
var (
	coder7Copy  = []byte{0x00}
	coder7LZMA  = []byte{0x03, 0x01, 0x01}
	coder7LZMA2 = []byte{0x21}
	coder7AES   = []byte{0x06, 0xF1, 0x07, 0x01}
)

// max7zHeader bounds a 7z header, decoded or not: a million file names
// fit in far less. A decoded header is also bounded by its packed size:
// names compress about 10:1, and an archive of archives that each decode
// megabytes from a few bytes would cost seconds of CPU per message.
const (
	max7zHeader     = 8 << 20
	max7zRatio      = 100
	max7zRatioFloor = 64 << 10
)

// Read7z lists at most max members of the 7z archive in data, decoding at
// most maxDecoded bytes of compressed header (Archive.Decoded says how
// many). The caller's budget is what bounds a message's archives together:
// each 7z of 82 KB may decode an 8 MB header within the ratio, 68 ms of
// CPU and 25 MB allocated, and a message can hold hundreds, in a zip too.
func Read7z(data []byte, max int, maxDecoded int64) Archive {
	if len(data) < 32 || !Is7z(data) {
		return Archive{Truncated: true}
	}
	offset := binary.LittleEndian.Uint64(data[12:])
	size := binary.LittleEndian.Uint64(data[20:])
	if offset > uint64(len(data)-32) || size > uint64(len(data)-32)-offset || size > max7zHeader {
		return Archive{Truncated: true}
	}
	header := data[32+offset : 32+offset+size]
	var decoded int64
	if len(header) > 0 && header[0] == id7EncodedHeader {
		r := &reader{b: header[1:]}
		s := r.streamsInfo()
		if r.bad || len(s.folders) == 0 {
			return Archive{Truncated: true}
		}
		f := s.folders[0]
		if f.encrypted {
			return Archive{HeadersEncrypted: true}
		}
		if maxDecoded < 0 || f.unpackSize > uint64(maxDecoded) {
			return Archive{Truncated: true, OverBudget: true}
		}
		var ok bool
		header, ok = decodeFolder(data, s, f)
		decoded = int64(len(header)) // all of it allocated, read or not
		if !ok {
			return Archive{Truncated: true, Decoded: decoded}
		}
	}
	if len(header) == 0 || header[0] != id7Header {
		return Archive{Truncated: true, Decoded: decoded}
	}
	a := readHeader7(&reader{b: header[1:]}, max)
	a.Decoded = decoded
	return a
}

// folder7 is what the names need of a folder: its coders, whether one
// encrypts, and its output size.
type folder7 struct {
	coders     []coder7
	unpackSize uint64
	encrypted  bool
	crc        bool // its output's CRC is given
}

type coder7 struct {
	id, props []byte
}

type streams7 struct {
	packPos   uint64
	packSizes []uint64
	folders   []folder7
}

// decodeFolder unpacks a one-coder folder (Copy, LZMA or LZMA2: what
// 7-Zip writes headers with) from the archive's first packed stream. What
// it returns is as long as the folder's output, whether all of it could
// be read (ok) or not; nil when it read nothing.
func decodeFolder(data []byte, s streams7, f folder7) ([]byte, bool) {
	if len(f.coders) != 1 || len(s.packSizes) == 0 || f.unpackSize > max7zHeader {
		return nil, false
	}
	start, n := 32+s.packPos, s.packSizes[0]
	if s.packPos > uint64(len(data)-32) || n > uint64(len(data))-start ||
		f.unpackSize > max7zRatioFloor+max7zRatio*n {
		return nil, false
	}
	packed := bytes.NewReader(data[start : start+n])
	var r io.Reader
	c := f.coders[0]
	switch {
	case bytes.Equal(c.id, coder7Copy):
		r = packed
	case bytes.Equal(c.id, coder7LZMA) && len(c.props) == 5:
		// The .lzma header lzma.NewReader reads: properties, dictionary
		// size, then the unpacked size.
		var h [13]byte
		copy(h[:], c.props)
		binary.LittleEndian.PutUint64(h[5:], f.unpackSize)
		lr, err := lzma.NewReader(io.MultiReader(bytes.NewReader(h[:]), packed))
		if err != nil {
			return nil, false
		}
		r = lr
	case bytes.Equal(c.id, coder7LZMA2) && len(c.props) == 1 && c.props[0] <= 40:
		p := c.props[0]
		dict := (2 | int(p&1)) << (p/2 + 11)
		lr, err := lzma.Reader2Config{DictCap: min(dict, max7zHeader)}.NewReader2(packed)
		if err != nil {
			return nil, false
		}
		r = lr
	default:
		return nil, false
	}
	// Read into its declared size: io.ReadAll's growing copies allocated
	// twice as much again.
	out := make([]byte, f.unpackSize)
	_, err := io.ReadFull(r, out)
	return out, err == nil
}

func readHeader7(r *reader, max int) Archive {
	var a Archive
	var main streams7
	for {
		switch id := r.number(); {
		case r.bad:
			return Archive{Truncated: true}
		case id == id7ArchiveProps:
			for r.number() != id7End && !r.bad {
				r.skip(r.number())
			}
		case id == id7MainStreams:
			main = r.streamsInfo()
		case id == id7FilesInfo:
			// The streams come before the files (7zFormat.txt): a file
			// with data is encrypted when a folder is.
			encrypted := false
			for _, f := range main.folders {
				encrypted = encrypted || f.encrypted
			}
			a = r.filesInfo(max, encrypted)
		case id == id7End:
			if r.bad {
				return Archive{Truncated: true}
			}
			return a
		default:
			return Archive{Truncated: true}
		}
	}
}

// number reads a 7z NUMBER: the leading one bits of the first byte say how
// many bytes follow, little-endian, the rest of it is the high part.
func (r *reader) number() uint64 {
	first := r.byte()
	var v uint64
	mask := byte(0x80)
	for i := range 8 {
		if first&mask == 0 {
			return v | uint64(first&(mask-1))<<(8*i)
		}
		v |= uint64(r.byte()) << (8 * i)
		mask >>= 1
	}
	return v
}

// count reads a number that counts things each at least one byte long:
// more than the bytes left is a lie.
func (r *reader) count() int {
	n := r.number()
	if n > uint64(len(r.b))+1 {
		r.bad = true
		return 0
	}
	return int(n)
}

// bits reads a bit vector of n bits, most significant first; all-defined
// vectors are written as one byte 1 when allowed. n past eight bits a
// byte left is a lie: a CRC count is a sum of counts, each up to the
// header's length, and a vector of it for a 16 KB header was 23 MB (for
// a 2 MB one, hundreds of GB).
func (r *reader) bits(n int, allowAll bool) []bool {
	if n > 8*len(r.b) {
		r.bad = true
		return nil
	}
	v := make([]bool, n)
	if allowAll && r.byte() != 0 {
		for i := range v {
			v[i] = true
		}
		return v
	}
	var c byte
	for i := range v {
		if i%8 == 0 {
			c = r.byte()
		}
		v[i] = c&(0x80>>(i%8)) != 0
	}
	return v
}

// digests skips n CRCs, reporting which were defined.
func (r *reader) digests(n int) []bool {
	defined := r.bits(n, true)
	for _, d := range defined {
		if d {
			r.skip(4)
		}
	}
	return defined
}

func (r *reader) streamsInfo() streams7 {
	var s streams7
	for !r.bad {
		switch r.number() {
		case id7End:
			return s
		case id7PackInfo:
			s.packPos = r.number()
			n := r.count()
			for id := r.number(); id != id7End && !r.bad; id = r.number() {
				switch id {
				case id7Size:
					for range n {
						s.packSizes = append(s.packSizes, r.number())
					}
				case id7CRC:
					r.digests(n)
				default:
					r.bad = true
				}
			}
		case id7UnpackInfo:
			s.folders = r.unpackInfo()
		case id7SubStreams:
			r.subStreams(s.folders)
		default:
			r.bad = true
		}
	}
	return s
}

func (r *reader) unpackInfo() []folder7 {
	if r.number() != id7Folder {
		r.bad = true
		return nil
	}
	folders := make([]folder7, r.count())
	if r.byte() != 0 { // external
		r.bad = true
		return nil
	}
	outs := make([]int, len(folders))
	for i := range folders {
		folders[i], outs[i] = r.folder()
	}
	if r.number() != id7CodersUnpack {
		r.bad = true
		return nil
	}
	for i := range folders {
		// The folder's output is its last coder's unbound output; 7-Zip's
		// header folders have one, and the main ones' size is unused.
		for range min(outs[i], len(r.b)) {
			folders[i].unpackSize = r.number()
		}
	}
	for id := r.number(); id != id7End && !r.bad; id = r.number() {
		if id != id7CRC {
			r.bad = true
			break
		}
		for i, d := range r.digests(len(folders)) {
			folders[i].crc = d
		}
	}
	return folders
}

// folder reads one folder and returns it with its number of outputs.
func (r *reader) folder() (folder7, int) {
	var f folder7
	ins, outs := 0, 0
	for range r.count() {
		flags := r.byte()
		c := coder7{id: r.skip(uint64(flags & 0x0F))}
		in, out := 1, 1
		if flags&0x10 != 0 {
			in, out = r.count(), r.count()
		}
		if flags&0x20 != 0 {
			c.props = r.skip(r.number())
		}
		if flags&0x80 != 0 || r.bad {
			r.bad = true
			return f, 0
		}
		f.encrypted = f.encrypted || bytes.Equal(c.id, coder7AES)
		f.coders = append(f.coders, c)
		ins, outs = ins+in, outs+out
	}
	// Each number is a byte at least, so no more are read than bytes are
	// left: outs and ins are sums of counts each up to the header's
	// length, and read to the full, a 40 KB header of 8,000 coders cost
	// 1.2 s of CPU, a 400 KB one minutes. So below and in unpackInfo and
	// subStreams.
	for range min(outs-1, len(r.b)) { // bind pairs
		r.number()
		r.number()
	}
	if packed := ins - (outs - 1); packed > 1 {
		for range min(packed, len(r.b)) {
			r.number()
		}
	}
	return f, outs
}

func (r *reader) subStreams(folders []folder7) {
	streams := make([]int, len(folders))
	for i := range streams {
		streams[i] = 1
	}
	for id := r.number(); id != id7End && !r.bad; id = r.number() {
		switch id {
		case id7NumUnpackStream:
			for i := range streams {
				streams[i] = r.count()
			}
		case id7Size:
			for _, n := range streams {
				for range min(n-1, len(r.b)) {
					r.number()
				}
			}
		case id7CRC:
			// The streams whose CRC their folder does not give already.
			total := 0
			for i, n := range streams {
				if n != 1 || !folders[i].crc {
					total += n
				}
			}
			r.digests(total)
		default:
			r.bad = true
		}
	}
}

func (r *reader) filesInfo(max int, encrypted bool) Archive {
	var a Archive
	n := r.count()
	var empty, emptyFile []bool
	var names []string
	for id := r.number(); id != id7End && !r.bad; id = r.number() {
		prop := &reader{b: r.skip(r.number())}
		switch id {
		case id7EmptyStream:
			empty = prop.bits(n, false)
		case id7EmptyFile:
			emptyFile = prop.bits(countTrue(empty), false)
		case id7Name:
			if prop.byte() != 0 { // external
				return Archive{Truncated: true}
			}
			names = utf16Names(prop.b, n)
		}
		if prop.bad {
			r.bad = true
		}
	}
	if r.bad {
		return Archive{Truncated: true}
	}
	e := 0
	for i, name := range names {
		if i == max {
			a.Truncated = true
			break
		}
		entry := Entry{Name: name, Encrypted: encrypted}
		if i < len(empty) && empty[i] {
			entry.Dir = e >= len(emptyFile) || !emptyFile[e]
			entry.Encrypted = false
			e++
		}
		a.Entries = append(a.Entries, entry)
	}
	return a
}

func countTrue(v []bool) int {
	n := 0
	for _, b := range v {
		if b {
			n++
		}
	}
	return n
}

// utf16Names splits NUL-terminated UTF-16LE names, at most n.
func utf16Names(b []byte, n int) []string {
	var names []string
	var cur []uint16
	for i := 0; i+1 < len(b) && len(names) < n; i += 2 {
		u := uint16(b[i]) | uint16(b[i+1])<<8
		if u == 0 {
			names = append(names, string(utf16.Decode(cur)))
			cur = cur[:0]
			continue
		}
		cur = append(cur, u)
	}
	return names
}
