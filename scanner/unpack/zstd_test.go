package unpack

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/mxgrid/mxgrid/internal/testenv"
)

func TestZstdWindow(t *testing.T) {
	single := testenv.ZstdAll(t, []byte("hello"))
	tests := []struct {
		name string
		data []byte
		want uint64
	}{
		{"zstd -19", testenv.Base64(t, testenv.ExeTarZstd19), 8 << 20},
		{"a single segment's size, at least 1 KiB", single, 1024},
		{"the largest of two frames", append(bytes.Clone(single), testenv.Base64(t, testenv.ExeTarZstd19)...), 8 << 20},
		{"after a skippable frame", append([]byte{0x50, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 'h', 'i'}, testenv.Base64(t, testenv.JSZstd)...), 2 << 20},
		{"1.5 GiB", testenv.ZstdDeclaring(t, []byte("x"), 20<<3|4), 3 << 29},
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

// FuzzZstd reads arbitrary bytes as a .zst file with 1 MiB to expand: no
// panic, and nothing past the budget, the decoder's window included.
func FuzzZstd(f *testing.F) {
	f.Add(testenv.Zstd(f, []byte("hello")))
	f.Add(append(testenv.ZstdAll(f, []byte("hello")), testenv.Zstd(f, bytes.Repeat([]byte("ab"), 2000))...))
	f.Add(testenv.Base64(f, testenv.ExeTarZstd19))
	f.Add(testenv.ZstdDeclaring(f, []byte("hello"), 20<<3|4))
	f.Fuzz(func(t *testing.T, data []byte) {
		const budget = 1 << 20
		left := int64(budget)
		if w, err := zstdWindow(data); err == nil && w < zstd.MinWindowSize {
			t.Fatalf("window %d", w)
		}
		zr, err := newZstdReader(data, &left)
		if err != nil {
			return
		}
		defer zr.Close()
		out, _ := io.ReadAll(io.LimitReader(zr, left))
		if len(out) > budget || left < 0 {
			t.Fatalf("%d bytes out, %d of the budget left", len(out), left)
		}
	})
}
