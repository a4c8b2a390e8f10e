package archdir

import (
	"bytes"
	"encoding/binary"
)

var (
	sigRAR5 = []byte("Rar!\x1a\x07\x01\x00")
	sigRAR4 = []byte("Rar!\x1a\x07\x00")
)

// IsRAR reports a RAR signature at the start of data.
func IsRAR(data []byte) bool {
	return bytes.HasPrefix(data, sigRAR5) || bytes.HasPrefix(data, sigRAR4)
}

// ReadRAR lists at most max members of the RAR archive in data. Headers that
// do not parse end the list (Truncated), as they end it for unrar.
func ReadRAR(data []byte, max int) Archive {
	switch {
	case bytes.HasPrefix(data, sigRAR5):
		return read5(data[len(sigRAR5):], max)
	case bytes.HasPrefix(data, sigRAR4):
		return read4(data[len(sigRAR4):], max)
	}
	return Archive{Truncated: true}
}

// RAR 5 header types and flags (www.rarlab.com/technote.htm).
const (
	type5File       = 2
	type5Encryption = 4
	type5End        = 5

	flag5Extra = 0x01
	flag5Data  = 0x02

	file5Dir  = 0x01
	file5Time = 0x02
	file5CRC  = 0x04

	extra5Encryption = 0x01
)

// vint reads a RAR 5 variable-length integer (7 bits a byte, low first).
func (r *reader) vint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func read5(b []byte, max int) Archive {
	var a Archive
	for len(b) > 0 {
		// CRC32, header size, then the header: type, flags, [extra
		// size], [data size], the type's fields, the extra area.
		r := reader{b: b}
		r.skip(4)
		size := r.vint()
		header := r.skip(size)
		if r.bad || size == 0 {
			a.Truncated = true
			return a
		}
		rest := r.b
		h := reader{b: header}
		typ, flags := h.vint(), h.vint()
		var extraSize, dataSize uint64
		if flags&flag5Extra != 0 {
			extraSize = h.vint()
		}
		if flags&flag5Data != 0 {
			dataSize = h.vint()
		}
		switch typ {
		case type5Encryption:
			a.HeadersEncrypted = true
			return a
		case type5End:
			return a
		case type5File:
			if len(a.Entries) == max {
				a.Truncated = true
				return a
			}
			fileFlags := h.vint()
			h.vint() // unpacked size
			h.vint() // attributes
			if fileFlags&file5Time != 0 {
				h.skip(4)
			}
			if fileFlags&file5CRC != 0 {
				h.skip(4)
			}
			h.vint() // compression
			h.vint() // host OS
			name := h.skip(h.vint())
			if h.bad || uint64(len(header)) < extraSize {
				a.Truncated = true
				return a
			}
			a.Entries = append(a.Entries, Entry{
				Name:      string(name),
				Dir:       fileFlags&file5Dir != 0,
				Encrypted: hasRecord5(header[uint64(len(header))-extraSize:], extra5Encryption),
			})
		}
		if h.bad || uint64(len(rest)) < dataSize {
			a.Truncated = true
			return a
		}
		b = rest[dataSize:]
	}
	return a
}

// hasRecord5 reports a record of the type in a RAR 5 extra area: records
// are size, type, data, the size counting type and data.
func hasRecord5(extra []byte, want uint64) bool {
	r := reader{b: extra}
	for len(r.b) > 0 {
		rec := reader{b: r.skip(r.vint())}
		if r.bad {
			return false
		}
		if typ := rec.vint(); typ == want && !rec.bad {
			return true
		}
	}
	return false
}

// RAR 1.5-4 block types and flags.
const (
	type4Main = 0x73
	type4File = 0x74
	type4End  = 0x7B

	main4Password  = 0x0080 // headers encrypted
	file4Encrypted = 0x0004
	file4DirMask   = 0x00E0
	file4Large     = 0x0100 // 64-bit sizes follow the name size
	file4Unicode   = 0x0200 // name is "ascii\x00encoded unicode"
	block4Long     = 0x8000 // a data area follows the header
)

func read4(b []byte, max int) Archive {
	var a Archive
	for len(b) >= 7 {
		// CRC16, type, flags, header size; a file header goes on with
		// packed size, unpacked size, OS, CRC, time, version, method,
		// name size, attributes, [high sizes], name.
		typ := b[2]
		flags := binary.LittleEndian.Uint16(b[3:])
		size := int(binary.LittleEndian.Uint16(b[5:]))
		if size < 7 || size > len(b) {
			a.Truncated = true
			return a
		}
		header := b[:size]
		var data uint64
		if flags&block4Long != 0 && size >= 11 {
			data = uint64(binary.LittleEndian.Uint32(header[7:]))
		}
		switch typ {
		case type4Main:
			if flags&main4Password != 0 {
				a.HeadersEncrypted = true
				return a
			}
		case type4End:
			return a
		case type4File:
			if len(a.Entries) == max {
				a.Truncated = true
				return a
			}
			nameAt := 32
			if flags&file4Large != 0 {
				nameAt += 8
			}
			if size < nameAt {
				a.Truncated = true
				return a
			}
			if flags&file4Large != 0 {
				data |= uint64(binary.LittleEndian.Uint32(header[32:])) << 32
			}
			nameSize := int(binary.LittleEndian.Uint16(header[26:]))
			if nameAt+nameSize > size {
				a.Truncated = true
				return a
			}
			name := header[nameAt : nameAt+nameSize]
			if flags&file4Unicode != 0 {
				name, _, _ = bytes.Cut(name, []byte{0})
			}
			a.Entries = append(a.Entries, Entry{
				Name:      string(name),
				Dir:       flags&file4DirMask == file4DirMask,
				Encrypted: flags&file4Encrypted != 0,
			})
		}
		rest := b[size:]
		if uint64(len(rest)) < data {
			a.Truncated = true
			return a
		}
		b = rest[data:]
	}
	return a
}
