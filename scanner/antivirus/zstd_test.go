package antivirus

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/mxgrid/mxgrid/scanner"
)

// zstdOf is data as a Zstandard frame with a window descriptor, as
// tar | zstd writes it (the library fits the window to small data).
func zstdOf(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithSingleSegment(false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil || w.Close() != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zstdDeclaring is zstdOf(data) whose frame declares the window of the
// window descriptor byte desc.
func zstdDeclaring(t testing.TB, data []byte, desc byte) []byte {
	t.Helper()
	b := zstdOf(t, data)
	b[5] = desc
	return b
}

// Written by zstd 1.5 from standard input: windows of 8 and 2 MiB.
const (
	exeTarZstd19 = "KLUv/QRolQIAooMMErDrDEBXIyCHEaO2ssnAt8CcAo7H2CnFfjPk2rMPvFk0by0qdMfFSO+9S+4EU1jPpRYLIFAvMg75BZ5ISAF4ZxgNMPy9OQ3mCYMG2E2wC2tSJek="
	jsZstd       = "KLUv/QRYWQAAdmFyIHggPSAxOwrB8Rv3"
)

// TestZstdWindowIsNotAllocated: a frame declaring a window past the
// reference decoder's default limit (128 MiB) is reported unscanned
// without the window allocated, however much a message may expand: the
// library would allocate 256 MiB.
func TestZstdWindowIsNotAllocated(t *testing.T) {
	c := newCheck(t, func(c *Config) { c.ZipMaxExpanded, c.ZipExpandedInFlight = 4<<30, 4<<30 })
	for _, desc := range []byte{18 << 3, 20<<3 | 4} { // 256 MiB, 1.5 GiB
		t.Run(fmt.Sprint(desc), func(t *testing.T) {
			raw := withAttachment("invoice.tzst", "application/zstd", zstdDeclaring(t, tarOf(t, mem("readme.txt", []byte("hi"))), desc))
			res, allocated := checkAllocates(t, c, scanner.Parse([]byte(raw)))
			if got := strings.Join(symbolNames(res), ","); got != SymbolArchiveLimit || !strings.Contains(res.Symbols[0].Detail, "zstd window") {
				t.Errorf("result %+v, want the window reported unscanned", res)
			}
			if allocated > 8<<20 && !raceEnabled {
				t.Errorf("the scan allocated %d bytes", allocated)
			}
		})
	}
}

func TestZstdWindow(t *testing.T) {
	single := zstdOfAll(t, []byte("hello"))
	tests := []struct {
		name string
		data []byte
		want uint64
	}{
		{"zstd -19", unb64(t, exeTarZstd19), 8 << 20},
		{"a single segment's size, at least 1 KiB", single, 1024},
		{"the largest of two frames", append(bytes.Clone(single), unb64(t, exeTarZstd19)...), 8 << 20},
		{"after a skippable frame", append([]byte{0x50, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 'h', 'i'}, unb64(t, jsZstd)...), 2 << 20},
		{"1.5 GiB", zstdDeclaring(t, []byte("x"), 20<<3|4), 3 << 29},
	}
	for _, tt := range tests {
		if got, err := zstdWindow(tt.data); err != nil || got != tt.want {
			t.Errorf("%s: %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
	if _, err := zstdWindow([]byte{0x28, 0xB5, 0x2F, 0xFD}); !errors.Is(err, errZstdCorrupt) {
		t.Errorf("a magic alone: %v", err)
	}
}

// zstdOfAll is data as one single-segment frame, its size for a window.
func zstdOfAll(t testing.TB, data []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}

// FuzzZstd reads arbitrary bytes as a .zst file with 1 MiB to expand: no
// panic, and nothing past the budget, the decoder's window included.
func FuzzZstd(f *testing.F) {
	f.Add(zstdOf(f, []byte("hello")))
	f.Add(append(zstdOfAll(f, []byte("hello")), zstdOf(f, bytes.Repeat([]byte("ab"), 2000))...))
	f.Add(unb64(f, exeTarZstd19))
	f.Add(zstdDeclaring(f, []byte("hello"), 20<<3|4))
	f.Fuzz(func(t *testing.T, data []byte) {
		const budgetBytes = 1 << 20
		b := budget{expanded: budgetBytes, pool: newPool(budgetBytes)}
		if w, err := zstdWindow(data); err == nil && w < zstd.MinWindowSize {
			t.Fatalf("window %d", w)
		}
		zr, err := newZstdReader(data, &b)
		if err != nil {
			return
		}
		defer zr.Close()
		out, _ := expand(zr, int64(len(data)), 0, "f", &b, 100)
		if len(out) > budgetBytes || b.expanded < 0 {
			t.Fatalf("%d bytes out, %d of the budget left", len(out), b.expanded)
		}
	})
}
