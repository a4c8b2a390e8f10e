package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Archives and compressed files, as their tools write them, for the
// tests of the antivirus, the attachment rules and scanner/unpack.

// TarFile is one regular file of a Tar.
type TarFile struct {
	Name string
	Data []byte
}

// Tar is a POSIX tar of files.
func Tar(t testing.TB, files ...TarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: 0o644, Size: int64(len(f.Data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Gzip is data as a gzip file whose header names it name ("": none).
func Gzip(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Name = name
	writeAll(t, zw, data)
	return buf.Bytes()
}

// writeAll writes data through a compressor and closes it.
func writeAll(t testing.TB, w io.WriteCloser, data []byte) {
	t.Helper()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// Base64 decodes s, a file written by a tool and pasted into a test.
func Base64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// XZ is data as an .xz file of blocks of at most blockSize bytes (0: one
// block), with an 8 MiB dictionary as xz writes by default.
func XZ(t testing.TB, data []byte, blockSize int64) []byte {
	t.Helper()
	return XZWith(t, data, xz.WriterConfig{DictCap: 8 << 20, BlockSize: blockSize})
}

// XZWith is data as an .xz file written with cfg.
func XZWith(t testing.TB, data []byte, cfg xz.WriterConfig) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := cfg.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, data)
	return buf.Bytes()
}

// XZDeclaring is XZ(data) whose block header declares the LZMA2
// dictionary size byte dict (40: 4 GiB), its CRC made again.
func XZDeclaring(t testing.TB, data []byte, dict byte) []byte {
	t.Helper()
	const streamHeaderLen, filterLZMA2 = 12, 0x21
	b := XZ(t, data, 0)
	h := b[streamHeaderLen:]
	n := (int(h[0]) + 1) * 4
	at := bytes.Index(h[:n], []byte{filterLZMA2, 1})
	if at < 0 {
		t.Fatal("no LZMA2 filter in the block header")
	}
	h[at+2] = dict
	binary.LittleEndian.PutUint32(h[n-4:], crc32.ChecksumIEEE(h[:n-4]))
	return b
}

// Zstd is data as a Zstandard frame with a window descriptor, as
// tar | zstd writes it (the library fits the window to small data).
func Zstd(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithSingleSegment(false))
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, data)
	return buf.Bytes()
}

// ZstdDeclaring is Zstd(data) whose frame declares the window of the
// window descriptor byte desc.
func ZstdDeclaring(t testing.TB, data []byte, desc byte) []byte {
	t.Helper()
	b := Zstd(t, data)
	b[5] = desc
	return b
}

// ZstdAll is data as one single-segment frame, its size for a window.
func ZstdAll(t testing.TB, data []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}

// Files as the tools themselves wrote them, in base64.
const (
	// JSXZ is "var x = 1;\n" as xz -9 writes it, declaring a 64 MiB
	// dictionary.
	JSXZ = "/Td6WFoAAATm1rRGAgAhARwAAAAQz1jMAQAKdmFyIHggPSAxOwoAAN/Yx+2UB9O/AAEjC8Ib/QkftvN9AQAAAAAEWVo="
	// ExeTarZstd19 (a tar of an executable) and JSZstd (a script) were
	// written by zstd 1.5 from standard input: windows of 8 and 2 MiB.
	ExeTarZstd19 = "KLUv/QRolQIAooMMErDrDEBXIyCHEaO2ssnAt8CcAo7H2CnFfjPk2rMPvFk0by0qdMfFSO+9S+4EU1jPpRYLIFAvMg75BZ5ISAF4ZxgNMPy9OQ3mCYMG2E2wC2tSJek="
	JSZstd       = "KLUv/QRYWQAAdmFyIHggPSAxOwrB8Rv3"
)
