package archdir

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
)

// The fixtures are written here from RARLAB's format notes (technote.htm
// for RAR 5, the RAR 2.9 notes for RAR 4); the parser was checked by hand
// against archives made by rar 5-7 and libarchive's test files.

type member struct {
	name           string
	dir, encrypted bool
	data           []byte
}

func rar5(headersEncrypted bool, members ...member) []byte {
	b := append([]byte{}, sigRAR5...)
	block := func(header, data []byte) {
		b = append(b, 0, 0, 0, 0) // CRC32, not checked
		b = binary.AppendUvarint(b, uint64(len(header)))
		b = append(b, header...)
		b = append(b, data...)
	}
	if headersEncrypted {
		// Type 4, then version, flags, KDF count, salt: the rest of the
		// archive is ciphertext.
		block(append([]byte{type5Encryption, 0, 0, 0, 15}, make([]byte, 16)...), []byte("ciphertext"))
		return b
	}
	block([]byte{1, 0, 0}, nil) // main archive header
	for _, m := range members {
		var extra []byte
		if m.encrypted {
			rec := append([]byte{extra5Encryption, 0, 0, 15}, make([]byte, 48)...)
			extra = append(binary.AppendUvarint(nil, uint64(len(rec))), rec...)
		}
		h := []byte{type5File}
		h = binary.AppendUvarint(h, flag5Data|flag5Extra*boolToUint(len(extra) > 0))
		if len(extra) > 0 {
			h = binary.AppendUvarint(h, uint64(len(extra)))
		}
		h = binary.AppendUvarint(h, uint64(len(m.data)))
		fileFlags := uint64(file5CRC)
		if m.dir {
			fileFlags |= file5Dir
		}
		h = binary.AppendUvarint(h, fileFlags)
		h = binary.AppendUvarint(h, uint64(len(m.data))) // unpacked size
		h = binary.AppendUvarint(h, 0x20)                // attributes
		h = append(h, 1, 2, 3, 4)                        // data CRC32
		h = append(h, 0, 0)                              // compression, host OS
		h = binary.AppendUvarint(h, uint64(len(m.name)))
		h = append(h, m.name...)
		h = append(h, extra...)
		block(h, m.data)
	}
	block([]byte{type5End, 0, 0}, nil)
	return b
}

func boolToUint(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}

func rar4(headersEncrypted bool, members ...member) []byte {
	b := append([]byte{}, sigRAR4...)
	block := func(typ byte, flags uint16, fields, data []byte) {
		b = append(b, 0, 0, typ) // CRC16, not checked
		b = binary.LittleEndian.AppendUint16(b, flags)
		b = binary.LittleEndian.AppendUint16(b, uint16(7+len(fields)))
		b = append(b, fields...)
		b = append(b, data...)
	}
	var mainFlags uint16
	if headersEncrypted {
		mainFlags = main4Password
	}
	block(type4Main, mainFlags, make([]byte, 6), nil)
	if headersEncrypted {
		b = append(b, "ciphertext"...)
		return b
	}
	for _, m := range members {
		flags := uint16(block4Long)
		if m.dir {
			flags |= file4DirMask
		}
		if m.encrypted {
			flags |= file4Encrypted
		}
		f := binary.LittleEndian.AppendUint32(nil, uint32(len(m.data))) // packed
		f = binary.LittleEndian.AppendUint32(f, uint32(len(m.data)))    // unpacked
		f = append(f, 2)                                                // Windows
		f = append(f, 1, 2, 3, 4, 5, 6, 7, 8, 29, 0x30)                 // CRC, time, version, method
		f = binary.LittleEndian.AppendUint16(f, uint16(len(m.name)))
		f = append(f, 0x20, 0, 0, 0) // attributes
		f = append(f, m.name...)
		block(type4File, flags, f, m.data)
	}
	block(type4End, 0x4000, nil, nil)
	return b
}

func TestReadRAR(t *testing.T) {
	members := []member{
		{name: "invoice.exe", data: []byte("MZ...")},
		{name: `docs\readme.txt`, data: []byte("hello")},
		{name: "docs", dir: true},
		{name: "secret.js", encrypted: true, data: []byte("ciphertext")},
	}
	want := []Entry{{Name: "invoice.exe"}, {Name: `docs\readme.txt`}, {Name: "docs", Dir: true}, {Name: "secret.js", Encrypted: true}}
	for _, format := range []struct {
		name  string
		write func(bool, ...member) []byte
	}{{"RAR 5", rar5}, {"RAR 4", rar4}} {
		whole := format.write(false, members...)
		tests := []struct {
			name string
			data []byte
			max  int
			want Archive
		}{
			{"every member", whole, 10, Archive{Entries: want}},
			{"at most two", whole, 2, Archive{Entries: want[:2], Truncated: true}},
			{"cut inside the second member's data", whole[:bytes.Index(whole, []byte("hello"))+2], 10, Archive{Entries: want[:2], Truncated: true}},
			{"headers encrypted", format.write(true), 10, Archive{HeadersEncrypted: true}},
			{"signature only", whole[:8], 10, Archive{}},
		}
		for _, tt := range tests {
			t.Run(format.name+": "+tt.name, func(t *testing.T) {
				if got := ReadRAR(tt.data, tt.max); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Read = %+v, want %+v", got, tt.want)
				}
			})
		}
	}
}

func FuzzReadRAR(f *testing.F) {
	f.Add(rar5(false, member{name: "a.exe", data: []byte("MZ")}, member{name: "b", encrypted: true}), 5)
	f.Add(rar4(false, member{name: "a.exe", data: []byte("MZ")}), 5)
	f.Add(rar5(true), 1)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max &= 0xFF
		if a := ReadRAR(data, max); len(a.Entries) > max {
			t.Fatalf("%d entries with a limit of %d", len(a.Entries), max)
		}
	})
}
