package archdir

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"reflect"
	"runtime"
	"testing"
	"unicode/utf16"

	"github.com/ulikunitz/xz/lzma"
)

// The fixtures are written here from 7-Zip's DOC/7zFormat.txt; the reader
// was checked by hand against archives made by 7-Zip (plain, LZMA-encoded
// and encrypted headers).

// num7 writes a 7z NUMBER: as many leading one bits in the first byte as
// bytes follow (little-endian), the rest of the first byte the high part.
func num7(v uint64) []byte {
	for n := 0; n < 8; n++ {
		if v < 1<<(8*n+7-n) {
			b := []byte{byte(0xFF<<(8-n)) | byte(v>>(8*n))}
			for i := range n {
				b = append(b, byte(v>>(8*i)))
			}
			return b
		}
	}
	return append([]byte{0xFF}, binary.LittleEndian.AppendUint64(nil, v)...)
}

type entry7 struct {
	name string
	dir  bool
	data []byte // nil and not dir: an empty file
}

// header7 is a plain 7z header (kHeader ...) for files whose data is packed
// in one folder by coder (its flags, id and properties: Copy, or AES with
// the bytes taken as ciphertext), at the start of the packed area.
func header7(files []entry7, coder []byte) (header, packed []byte) {
	h := []byte{id7Header}
	var sizes []uint64
	for _, f := range files {
		if len(f.data) > 0 {
			sizes = append(sizes, uint64(len(f.data)))
			packed = append(packed, f.data...)
		}
	}
	if len(sizes) > 0 {
		h = append(h, id7MainStreams, id7PackInfo)
		h = append(h, num7(0)...)
		h = append(h, num7(1)...)
		h = append(h, id7Size)
		h = append(h, num7(uint64(len(packed)))...)
		h = append(h, id7End, id7UnpackInfo, id7Folder, 1, 0, 1)
		h = append(h, coder...)
		h = append(h, id7CodersUnpack)
		h = append(h, num7(uint64(len(packed)))...)
		h = append(h, id7End, id7SubStreams, id7NumUnpackStream)
		h = append(h, num7(uint64(len(sizes)))...)
		h = append(h, id7Size)
		for _, s := range sizes[:len(sizes)-1] {
			h = append(h, num7(s)...)
		}
		h = append(h, id7End, id7End)
	}
	h = append(h, id7FilesInfo)
	h = append(h, num7(uint64(len(files)))...)
	var empty, emptyFile []bool
	for _, f := range files {
		empty = append(empty, len(f.data) == 0)
		if len(f.data) == 0 {
			emptyFile = append(emptyFile, !f.dir)
		}
	}
	prop := func(id byte, data []byte) {
		h = append(h, id)
		h = append(h, num7(uint64(len(data)))...)
		h = append(h, data...)
	}
	if len(emptyFile) > 0 {
		prop(id7EmptyStream, bitVector(empty))
		prop(id7EmptyFile, bitVector(emptyFile))
	}
	names := []byte{0}
	for _, f := range files {
		for _, u := range utf16.Encode([]rune(f.name + "\x00")) {
			names = binary.LittleEndian.AppendUint16(names, u)
		}
	}
	prop(id7Name, names)
	h = append(h, id7End, id7End)
	return h, packed
}

func bitVector(v []bool) []byte {
	b := make([]byte, (len(v)+7)/8)
	for i, on := range v {
		if on {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	return b
}

// archive7 lays out signature header, packed data and header; with
// encode, the header is LZMA-compressed behind an encoded header, as
// 7-Zip writes it.
func archive7(t testing.TB, files []entry7, coder []byte, encode bool) []byte {
	t.Helper()
	header, packed := header7(files, coder)
	return layout7(t, header, packed, encode, 0)
}

// layout7 is archive7 for a given header and packed data; an encoded
// header's stream is padded to at least minStream bytes.
func layout7(t testing.TB, header, packed []byte, encode bool, minStream int) []byte {
	t.Helper()
	if encode {
		var b bytes.Buffer
		w, err := lzma.WriterConfig{Size: int64(len(header))}.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(header)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		props, stream := b.Bytes()[:5], b.Bytes()[13:]
		stream = append(stream, make([]byte, max(minStream-len(stream), 0))...)
		enc := []byte{id7EncodedHeader, id7PackInfo}
		enc = append(enc, num7(uint64(len(packed)))...)
		enc = append(enc, num7(1)...)
		enc = append(enc, id7Size)
		enc = append(enc, num7(uint64(len(stream)))...)
		enc = append(enc, id7End, id7UnpackInfo, id7Folder, 1, 0, 1, 0x23, 3, 1, 1, 5)
		enc = append(enc, props...)
		enc = append(enc, id7CodersUnpack)
		enc = append(enc, num7(uint64(len(header)))...)
		enc = append(enc, id7End, id7End)
		packed = append(packed, stream...)
		header = enc
	}
	b := append([]byte{}, sig7z...)
	b = append(b, 0, 4, 0, 0, 0, 0) // version, start header CRC (not checked)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(packed)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(header)))
	b = append(b, 0, 0, 0, 0) // next header CRC
	b = append(b, packed...)
	return append(b, header...)
}

func mustHeader7(files []entry7, coder []byte) []byte {
	h, _ := header7(files, coder)
	return h
}

func TestRead7z(t *testing.T) {
	files := []entry7{
		{name: "invoice.exe", data: []byte("MZ...")},
		{name: "docs", dir: true},
		{name: `docs/readme.txt`, data: []byte("hello")},
		{name: "empty.js"},
	}
	want := []Entry{{Name: "invoice.exe"}, {Name: "docs", Dir: true}, {Name: "docs/readme.txt"}, {Name: "empty.js"}}
	aes := []byte{0x24, 0x06, 0xF1, 0x07, 0x01, 2, 0x03, 0x07} // AES with a two-byte property
	encrypted := []Entry{{Name: "invoice.exe", Encrypted: true}, {Name: "docs", Dir: true}, {Name: "docs/readme.txt", Encrypted: true}, {Name: "empty.js"}}
	copyCoder := []byte{0x01, 0x00}
	plain := archive7(t, files, copyCoder, false)
	// What decoding an encoded header costs: the plain header's size.
	header, _ := header7(files, copyCoder)
	decoded := int64(len(header))
	tests := []struct {
		name   string
		data   []byte
		max    int
		budget int64 // header bytes Read7z may decode
		want   Archive
	}{
		{"plain header", plain, 10, 0, Archive{Entries: want}},
		{"LZMA-encoded header, as 7-Zip writes it", archive7(t, files, copyCoder, true), 10, decoded, Archive{Entries: want, Decoded: decoded}},
		{"encoded header past the budget", archive7(t, files, copyCoder, true), 10, decoded - 1, Archive{Truncated: true, OverBudget: true}},
		{"at most two", plain, 2, 0, Archive{Entries: want[:2], Truncated: true}},
		{"members encrypted", archive7(t, files, aes, true), 10, max7zHeader, Archive{Entries: encrypted, Decoded: int64(len(mustHeader7(files, aes)))}},
		{"header cut short", plain[:len(plain)-3], 10, max7zHeader, Archive{Truncated: true}},
		{"signature only", plain[:32], 10, max7zHeader, Archive{Truncated: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Read7z(tt.data, tt.max, tt.budget); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Read7z = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzRead7z(f *testing.F) {
	files := []entry7{{name: "a.exe", data: []byte("MZ")}, {name: "d", dir: true}}
	f.Add(archive7(f, files, []byte{0x01, 0x00}, false), 5)
	f.Add(archive7(f, files, []byte{0x01, 0x00}, true), 5)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max &= 0xFF
		if a := Read7z(data, max, max7zHeader); len(a.Entries) > max {
			t.Fatalf("%d entries with a limit of %d", len(a.Entries), max)
		}
	})
}

var update = flag.Bool("update", false, "rewrite "+headerBombFile)

// headerBombFile is a 7z of 82 KB whose compressed header decodes to
// max7zHeader bytes, within max7zRatio of its packed size: the antivirus
// and rules tests check that each message pays for such headers once.
// It is written by go test ./scanner/archdir -run TestHeaderBomb7z -args -update.
const headerBombFile = "testdata/header-bomb.7z"

func TestHeaderBomb7z(t *testing.T) {
	header, packed := header7([]entry7{{name: "a.txt"}}, []byte{0x01, 0x00})
	header = append(header, make([]byte, max7zHeader-len(header))...)
	bomb := layout7(t, header, packed, true, (max7zHeader-max7zRatioFloor)/max7zRatio+1)
	if *update {
		if err := os.WriteFile(headerBombFile, bomb, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if file, err := os.ReadFile(headerBombFile); err != nil || !bytes.Equal(file, bomb) {
		t.Fatalf("%s is not what this test writes (%v): run it with -args -update", headerBombFile, err)
	}
	want := Archive{Entries: []Entry{{Name: "a.txt"}}, Decoded: max7zHeader}
	if got := Read7z(bomb, 10, max7zHeader); !reflect.DeepEqual(got, want) {
		t.Errorf("Read7z = %+v, want %+v", got, want)
	}
}

// number7 writes v, below 1<<21, as a three-byte 7z NUMBER whatever its
// size, so that a header's layout does not depend on its values.
func number7(v int) []byte {
	return []byte{0xC0 | byte(v>>16)&0x1F, byte(v), byte(v >> 8)}
}

// TestSummedCountsAreBoundedByTheHeader: the counts a 7z header gives per
// coder or folder are each bounded by the bytes left, but the reader
// summed them: k coders each giving as many outputs as bytes follow it
// had it read about 2.5k² numbers (8,000 coders in 40 KB: 1.2 s of CPU, a
// 400 KB header minutes), and f folders each giving as many substreams
// had it allocate a CRC vector of 1.5f² bools (23 MB for 16 KB; for a
// 2 MB header, or an encoded one of 20 KB, hundreds of GB: the process
// killed). A count is read no further than the bytes left.
func TestSummedCountsAreBoundedByTheHeader(t *testing.T) {
	const k = 8000
	coders := []byte{id7Header, id7MainStreams, id7UnpackInfo, id7Folder, 1, 0}
	coders = append(coders, number7(k)...)
	for i := range k {
		coders = append(coders, 0x10, 1) // one input, and outputs:
		coders = append(coders, number7((k-i-1)*5+1)...)
	}
	substreams := []byte{id7Header, id7MainStreams, id7UnpackInfo, id7Folder}
	substreams = append(substreams, number7(k)...)
	substreams = append(substreams, 0)                  // not external
	substreams = append(substreams, make([]byte, k)...) // folders of no coder
	substreams = append(substreams, id7CodersUnpack, id7End, id7SubStreams, id7NumUnpackStream)
	for i := range k {
		substreams = append(substreams, number7((k-i)*3)...)
	}
	substreams = append(substreams, id7CRC, 0, id7End, id7End)
	for _, header := range [][]byte{coders, substreams} {
		data := layout7(t, header, nil, false, 0)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got := Read7z(data, 10, max7zHeader)
		runtime.ReadMemStats(&after)
		if !reflect.DeepEqual(got, Archive{Truncated: true}) {
			t.Errorf("Read7z = %+v, want it truncated", got)
		}
		// A folder or coder of a few bytes is a struct of tens.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64*uint64(len(data)) {
			t.Errorf("reading a %d KB header allocated %d KB", len(data)>>10, alloc>>10)
		}
	}
}
