package testenv

import (
	"encoding/binary"
	"strings"
)

// The reference BinHex 4.0 encoder (RFC 1741 appendix A), for the tests
// of the scanner's decoder and of the checks that read what it decodes.
// It is written from the RFC alone, apart from the decoder it tests.

// binhexAlphabet are the 64 characters of the six-bit encoding, value 0
// first (RFC 1741 appendix A).
const binhexAlphabet = "!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"

// BinHex is data as the data fork of a BinHex 4.0 file called name, as it
// appears in a mail: the "(This file must be converted with BinHex 4.0)"
// line, then the encoding between colons in 64-character lines.
func BinHex(name string, data []byte) string {
	return BinHexText(BinHexStream(name, data, nil))
}

// BinHexStream is the byte stream BinHex 4.0 encodes, before its runs are
// compressed: the header (name length, name, version 0, type, creator,
// flags, the forks' lengths), the data fork and the resource fork, each
// followed by its CRC.
func BinHexStream(name string, data, rsrc []byte) []byte {
	s := append([]byte{byte(len(name))}, name...)
	s = append(s, 0)
	s = append(s, "TEXTttxt"...) // type and creator
	s = binary.BigEndian.AppendUint16(s, 0)
	s = binary.BigEndian.AppendUint32(s, uint32(len(data)))
	s = binary.BigEndian.AppendUint32(s, uint32(len(rsrc)))
	s = binary.BigEndian.AppendUint16(s, binhexCRC(s))
	s = append(s, data...)
	s = binary.BigEndian.AppendUint16(s, binhexCRC(data))
	s = append(s, rsrc...)
	return binary.BigEndian.AppendUint16(s, binhexCRC(rsrc))
}

// binhexCRC is the CRC BinHex gives each section: CCITT, polynomial
// 0x1021, starting from 0 (CRC-16/XMODEM).
func binhexCRC(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// BinHexText encodes stream as BinHex 4.0 text: runs of three to 255
// equal bytes become the byte, 0x90 and the count, a 0x90 of the data
// becomes 0x90 0x00, and the result is written six bits a character.
func BinHexText(stream []byte) string {
	var rle []byte
	lit := func(c byte) {
		rle = append(rle, c)
		if c == 0x90 {
			rle = append(rle, 0)
		}
	}
	for i := 0; i < len(stream); {
		n := 1
		for i+n < len(stream) && stream[i+n] == stream[i] && n < 255 {
			n++
		}
		lit(stream[i])
		switch {
		case n >= 3:
			rle = append(rle, 0x90, byte(n))
		case n == 2:
			lit(stream[i])
		}
		i += n
	}
	var s strings.Builder
	s.WriteString("(This file must be converted with BinHex 4.0)\r\n:")
	col := 1
	put := func(v uint32) {
		s.WriteByte(binhexAlphabet[v&63])
		if col++; col == 64 {
			s.WriteString("\r\n")
			col = 0
		}
	}
	for i := 0; i < len(rle); i += 3 {
		group := append(rle[i:min(i+3, len(rle)):min(i+3, len(rle))], 0, 0)
		v := uint32(group[0])<<16 | uint32(group[1])<<8 | uint32(group[2])
		// The last group writes only the characters that hold its bytes.
		for k := range min(len(rle)-i, 3) + 1 {
			put(v >> (18 - 6*k))
		}
	}
	s.WriteString(":\r\n")
	return s.String()
}
