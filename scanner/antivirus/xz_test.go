package antivirus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/mxgrid/mxgrid/scanner"
)

// xzOf is data as an .xz file of blocks of at most blockSize bytes
// (0: one block), with an 8 MiB dictionary as xz writes by default.
func xzOf(t testing.TB, data []byte, blockSize int64) []byte {
	t.Helper()
	return xzWith(t, data, xz.WriterConfig{DictCap: 8 << 20, BlockSize: blockSize})
}

func xzWith(t testing.TB, data []byte, cfg xz.WriterConfig) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := cfg.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil || w.Close() != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// xzDeclaring is xzOf(data) whose block header declares the LZMA2
// dictionary size byte dict (40: 4 GiB), its CRC made again.
func xzDeclaring(t testing.TB, data []byte, dict byte) []byte {
	t.Helper()
	b := xzOf(t, data, 0)
	h := b[xzStreamHeaderLen:]
	n := (int(h[0]) + 1) * 4
	at := bytes.Index(h[:n], []byte{xzFilterLZMA2, 1})
	if at < 0 {
		t.Fatal("no LZMA2 filter in the block header")
	}
	h[at+2] = dict
	binary.LittleEndian.PutUint32(h[n-4:], crc32.ChecksumIEEE(h[:n-4]))
	return b
}

// jsXZ is "var x = 1;\n" as xz -9 writes it, declaring a 64 MiB dictionary.
const jsXZ = "/Td6WFoAAATm1rRGAgAhARwAAAAQz1jMAQAKdmFyIHggPSAxOwoAAN/Yx+2UB9O/AAEjC8Ib/QkftvN9AQAAAAAEWVo="

// TestXZDictionaryIsNotAllocated: an .xz whose block declares a 1.5 GiB
// (or 4 GiB) dictionary. github.com/ulikunitz/xz allocates what the
// header declares; the engine gives a block no more dictionary than it
// may read out of the file, so the executable inside is found for the
// cost of a small one.
func TestXZDictionaryIsNotAllocated(t *testing.T) {
	for _, dict := range []byte{37, 40} {
		t.Run(fmt.Sprint(xzDictSize(dict)), func(t *testing.T) {
			raw := withAttachment("invoice.txz", "application/x-xz", xzDeclaring(t, tarOf(t, mem("setup.exe", peFile())), dict))
			res, allocated := checkAllocates(t, newCheck(t, nil), scanner.Parse([]byte(raw)))
			if !strings.Contains(res.Reject, "setup.exe") {
				t.Errorf("result %+v, want setup.exe refused", res)
			}
			if allocated > 8<<20 && !raceEnabled {
				t.Errorf("the scan allocated %d bytes", allocated)
			}
		})
	}
}

// TestXZReadsWhatItsWriterWrote: every check type, one block or many,
// streams end to end with padding between them.
func TestXZReadsWhatItsWriterWrote(t *testing.T) {
	data := bytes.Repeat([]byte("the quick brown fox\n"), 500)
	for _, check := range []byte{xz.None, xz.CRC32, xz.CRC64, xz.SHA256} {
		for _, blockSize := range []int64{0, 1000} {
			one := xzWith(t, data, xz.WriterConfig{DictCap: 1 << 16, BlockSize: blockSize, CheckSum: check, NoCheckSum: check == xz.None})
			file := append(append(bytes.Clone(one), 0, 0, 0, 0), one...)
			b := budget{expanded: 8 << 20, pool: newPool(8 << 20)}
			got, err := expand(newXZReader(file, b.expanded, &b), int64(len(file)), 0, "f", &b, 100)
			if err != nil || !bytes.Equal(got, append(bytes.Clone(data), data...)) {
				t.Errorf("check %d, blocks of %d: %d bytes, %v", check, blockSize, len(got), err)
			}
		}
	}
}

// FuzzXZ reads arbitrary bytes as an .xz file with 1 MiB to expand: no
// panic, and nothing past the budget, dictionaries included.
func FuzzXZ(f *testing.F) {
	f.Add(xzOf(f, []byte("hello"), 0))
	f.Add(append(xzOf(f, nil, 0), xzOf(f, bytes.Repeat([]byte("ab"), 2000), 512)...))
	f.Add(unb64(f, jsXZ))
	f.Add(xzDeclaring(f, []byte("hello"), 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		const budgetBytes = 1 << 20
		b := budget{expanded: budgetBytes, pool: newPool(budgetBytes)}
		out, _ := expand(newXZReader(data, b.expanded, &b), int64(len(data)), 0, "f", &b, 100)
		if len(out) > budgetBytes || b.expanded < 0 {
			t.Fatalf("%d bytes out, %d of the budget left", len(out), b.expanded)
		}
	})
}

// FuzzXZBlockHeader: a header read whole lies within the bytes given,
// and declares a dictionary LZMA2 can.
func FuzzXZBlockHeader(f *testing.F) {
	f.Add(xzOf(f, []byte("hello"), 0)[xzStreamHeaderLen:])
	f.Add(unb64(f, jsXZ)[xzStreamHeaderLen:])
	f.Fuzz(func(t *testing.T, b []byte) {
		blk, err := parseXZBlockHeader(b)
		if err != nil {
			if !errors.Is(err, errXZCorrupt) && !errors.Is(err, errUnscannable) {
				t.Fatalf("error %v is neither corrupt nor unscannable", err)
			}
			return
		}
		if blk.headerLen > len(b) || blk.headerLen%4 != 0 || blk.dict < 4096 || blk.dict > 0xFFFFFFFF {
			t.Fatalf("%+v from %d bytes", blk, len(b))
		}
	})
}
