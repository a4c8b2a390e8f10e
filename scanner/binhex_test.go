package scanner

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/internal/testenv"
)

// binhexNoColon is BinHex text cut short: the closing colon and what
// follows it gone, as in a message cut in the middle of the data.
func binhexNoColon(stream []byte) string {
	return strings.TrimSuffix(testenv.BinHexText(stream), ":\r\n")
}

func TestBinHexFiles(t *testing.T) {
	pe := append([]byte("MZ"), bytes.Repeat([]byte{0, 1, 2, 0xff}, 40)...)
	// Runs longer than one count can say, a 0x90 alone, a pair, a run of
	// 0x90: the encoder compresses them all.
	runs := append(append(append(make([]byte, 300), 1, 0x90, 2, 2), bytes.Repeat([]byte{0x90}, 7)...), "MZ"...)
	// Bytes no run shortens, so a cut in the stream is a cut in the file.
	plain := make([]byte, 90)
	for i := range plain {
		plain[i] = byte(2*i + 1)
	}
	// In the stream of a file named "x.exe": the header's CRC at 25, the
	// data from 27.
	const xData = 1 + len("x.exe") + 1 + 18 + 2
	badCRCs := testenv.BinHexStream("x.exe", pe, nil)
	badCRCs[xData-2] ^= 0xff
	badCRCs[xData+len(pe)] ^= 0xff
	longLength := testenv.BinHexStream("a.js", []byte("var x;"), nil)
	longLength[0] |= 0x40
	testTextFiles(t, binhexFiles, []textFilesCase{
		{"one file between text", "see below\r\n" + testenv.BinHex("invoice.exe", pe) + "regards\r\n", 1 << 20, []embeddedFile{{"invoice.exe", pe}}},
		{"runs and a literal 0x90, LF only", strings.ReplaceAll(testenv.BinHex("runs.bin", runs), "\r\n", "\n"), 1 << 20, []embeddedFile{{"runs.bin", runs}}},
		{"wrong CRCs are no reason to skip the file", testenv.BinHexText(badCRCs), 1 << 20, []embeddedFile{{"x.exe", pe}}},
		{"data cut short", binhexNoColon(testenv.BinHexStream("x.exe", plain, nil)[:xData+60]), 1 << 20, []embeddedFile{{"x.exe", plain[:60]}}},
		{"header cut short", binhexNoColon(testenv.BinHexStream("x.exe", plain, nil)[:xData-3]), 1 << 20, nil},
		{"garbage after the line", binhexMagic + "\r\n:~~~ not BinHex ~~~\r\n", 1 << 20, nil},
		{"no data after the line", "x\r\n" + binhexMagic + "\r\nregards\r\n", 1 << 20, nil},
		{"prose that quotes the line", "Run it: " + binhexMagic + "\r\n" + strings.SplitN(testenv.BinHex("a.exe", pe), "\r\n", 2)[1], 1 << 20, nil},
		{"path separators kept in the name", testenv.BinHex(`..\..\Startup/run:invoice.exe`, pe), 1 << 20, []embeddedFile{{`..\..\Startup/run:invoice.exe`, pe}}},
		// Thunderbird reads the name's length from the byte's low six bits.
		{"name length byte past 63", testenv.BinHexText(longLength), 1 << 20, []embeddedFile{{"a.js", []byte("var x;")}}},
		{"only a resource fork", testenv.BinHexText(testenv.BinHexStream("app", nil, pe)), 1 << 20, []embeddedFile{{"app", pe}}},
		{"two files", testenv.BinHex("a.js", []byte("var x;")) + "--\r\n" + testenv.BinHex("b.txt", []byte("hi")), 1 << 20,
			[]embeddedFile{{"a.js", []byte("var x;")}, {"b.txt", []byte("hi")}}},
		{"cut at the budget", testenv.BinHex("big.bin", pe), 10, []embeddedFile{{"big.bin", pe[:10]}}},
		{"budget spent by the first file", testenv.BinHex("a.js", []byte("var x;")) + testenv.BinHex("b.exe", pe), 6,
			[]embeddedFile{{"a.js", []byte("var x;")}}},
		{"at most maxTextFiles and the one that tells there are more", strings.Repeat(testenv.BinHex("a", []byte("x")), maxTextFiles+2), 1 << 20,
			slices.Repeat([]embeddedFile{{"a", []byte("x")}}, maxTextFiles+1)},
	})
}

func TestBinHexPart(t *testing.T) {
	pe := append([]byte("MZ"), bytes.Repeat([]byte{0, 1, 2, 0xff}, 40)...)
	data := strings.SplitN(testenv.BinHex("invoice.exe", pe), "\r\n", 2)[1]
	testTextFiles(t, binhexPart("scan.hqx"), []textFilesCase{
		{"with the line", testenv.BinHex("invoice.exe", pe), 1 << 20, []embeddedFile{{"invoice.exe", pe}}},
		// RFC 1741 needs no line before the data in a part.
		{"data alone", data, 1 << 20, []embeddedFile{{"invoice.exe", pe}}},
		{"no name in the header", testenv.BinHex("", pe), 1 << 20, []embeddedFile{{"scan.hqx", pe}}},
		{"no BinHex", "hello\r\n", 1 << 20, nil},
		{"budget spent", data, 0, nil},
	})
}

// FuzzBinHexFiles: any text decodes within the budget, never more files
// than the bound, and an encoded file round-trips.
func FuzzBinHexFiles(f *testing.F) {
	f.Add([]byte(testenv.BinHex("a.exe", []byte("payload\x90\x90\x90\x00\x00\x00\x00"))), []byte("payload"), 100)
	f.Add([]byte(binhexMagic+"\n:\x90!!!!!!!!!!!!!!!!!!!!!!!!!!!!r2rrrrrrrrrrrrrrrr\n"), []byte{0x90}, 5)
	fuzzTextFiles(f, binhexFiles, testenv.BinHex)
}
