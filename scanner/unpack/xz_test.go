package unpack

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/mxgrid/mxgrid/internal/testenv"
)

// TestXZReadsWhatItsWriterWrote: every check type, one block or many,
// streams end to end with padding between them.
func TestXZReadsWhatItsWriterWrote(t *testing.T) {
	data := bytes.Repeat([]byte("the quick brown fox\n"), 500)
	for _, check := range []byte{xz.None, xz.CRC32, xz.CRC64, xz.SHA256} {
		for _, blockSize := range []int64{0, 1000} {
			one := testenv.XZWith(t, data, xz.WriterConfig{DictCap: 1 << 16, BlockSize: blockSize, CheckSum: check, NoCheckSum: check == xz.None})
			file := append(append(bytes.Clone(one), 0, 0, 0, 0), one...)
			left := int64(8 << 20)
			got, err := readAll(t, file, left, &left)
			if err != nil || !bytes.Equal(got, append(bytes.Clone(data), data...)) {
				t.Errorf("check %d, blocks of %d: %d bytes, %v", check, blockSize, len(got), err)
			}
		}
	}
}

// readAll reads what Open decodes from data, at most limit bytes, its
// decoder paid from *left.
func readAll(t testing.TB, data []byte, limit int64, left *int64) ([]byte, error) {
	t.Helper()
	s, err := Open(data, "f", limit, left)
	defer s.Close()
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(s, limit))
}

// FuzzXZ reads arbitrary bytes as an .xz file with 1 MiB to expand: no
// panic, and nothing past the budget, dictionaries included.
func FuzzXZ(f *testing.F) {
	f.Add(testenv.XZ(f, []byte("hello"), 0))
	f.Add(append(testenv.XZ(f, nil, 0), testenv.XZ(f, bytes.Repeat([]byte("ab"), 2000), 512)...))
	f.Add(testenv.Base64(f, testenv.JSXZ))
	f.Add(testenv.XZDeclaring(f, []byte("hello"), 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		const budget = 1 << 20
		left := int64(budget)
		out, _ := io.ReadAll(io.LimitReader(newXZReader(data, left, &left), budget))
		if len(out) > budget || left < 0 {
			t.Fatalf("%d bytes out, %d of the budget left", len(out), left)
		}
	})
}

// FuzzXZBlockHeader: a header read whole lies within the bytes given,
// and declares a dictionary LZMA2 can.
func FuzzXZBlockHeader(f *testing.F) {
	f.Add(testenv.XZ(f, []byte("hello"), 0)[xzStreamHeaderLen:])
	f.Add(testenv.Base64(f, testenv.JSXZ)[xzStreamHeaderLen:])
	f.Fuzz(func(t *testing.T, b []byte) {
		blk, err := parseXZBlockHeader(b)
		if err != nil {
			if !errors.Is(err, errXZCorrupt) && !errors.Is(err, ErrUnscannable) {
				t.Fatalf("error %v is neither corrupt nor unscannable", err)
			}
			return
		}
		if blk.headerLen > len(b) || blk.headerLen%4 != 0 || blk.dict < 4096 || blk.dict > 0xFFFFFFFF {
			t.Fatalf("%+v from %d bytes", blk, len(b))
		}
	})
}
