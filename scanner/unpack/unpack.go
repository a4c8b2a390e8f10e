// Package unpack opens the compressions mail sends one file in (gzip,
// bzip2, xz, Zstandard) and walks tar archives: for the built-in
// antivirus, which scans every file that comes out, and the attachment
// rules, which judge their names and pages. A decoder's memory (a bzip2
// block's tables, an xz dictionary, a Zstandard window) is bounded here,
// whatever the file declares, and paid from the caller's expansion budget
// before it is allocated; how much is read out, and what it costs, is
// the caller's (the antivirus' ratio and node-wide pool, the rules' own
// budget).
package unpack

import (
	"archive/tar"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"path"
	"strings"
	"sync"
)

var (
	// ErrBudget: the caller's expansion budget is spent, by what a
	// decoder decoded or by the memory it needs.
	ErrBudget = errors.New("archive expansion budget spent")
	// ErrUnscannable is content the recipient's archiver reads and the
	// engine does not: never scanned, as past a limit.
	ErrUnscannable   = errors.New("not read by the engine")
	errNotCompressed = errors.New("not compressed")
)

// Format is a compression of one file.
type Format uint8

const (
	None Format = iota
	Gzip
	Bzip2
	XZ
	Zstd
)

// Compression is the format data is compressed in, by its header.
func Compression(data []byte) Format {
	switch {
	case IsGzip(data):
		return Gzip
	case IsBzip2(data):
		return Bzip2
	case IsXZ(data):
		return XZ
	case IsZstd(data):
		return Zstd
	}
	return None
}

// IsGzip checks for gzip's magic.
func IsGzip(data []byte) bool {
	return len(data) >= 2 && data[0] == 0x1F && data[1] == 0x8B
}

// tarExts are the extensions that say a compressed file holds a tar:
// invoice.tgz holds invoice.tar.
var tarExts = [...][]string{Gzip: {".tgz"}, Bzip2: {".tbz2", ".tbz"}, XZ: {".txz"}, Zstd: {".tzst"}}

// gzipReaders are reused across files and messages: a decompressor
// holds a 32 KiB window, and a message can be thousands of tiny gzip
// files (eight uuencoded in each of a thousand text parts), each opened
// before the caller's member budget is looked at: 1 MB of them allocated
// 320 MB.
var gzipReaders = sync.Pool{New: func() any { return new(gzip.Reader) }}

// Stream is the decoder of one compressed file. Close it.
type Stream struct {
	io.Reader
	Format Format
	// Name is the file's: the one its gzip header gives, else the outer
	// name without its extension (a tar for .tgz and the like), as
	// Windows 11, 7-Zip and WinRAR name it (bzip2, xz and Zstandard keep
	// no name).
	Name string
	// Size is what the stream declares it decodes to (gzip's trailer,
	// modulo 2^32), 0 when it declares nothing.
	Size int64
	gz   *gzip.Reader
	zs   zstdReader
}

// Open opens data, a compressed file attached or found as outer, as
// Compression reads it. Its decoder's memory is paid from the expansion
// budget *left before it is allocated (ErrBudget when it does not fit),
// and an xz dictionary is at most limit, the most the caller reads. The
// Stream's Name is set even when it fails, but for a gzip header that
// does not read.
func Open(data []byte, outer string, limit int64, left *int64) (Stream, error) {
	f := Compression(data)
	s := Stream{Format: f}
	if f != None {
		s.Name = innerName(outer, tarExts[f])
	}
	switch f {
	case Gzip:
		s.gz = gzipReaders.Get().(*gzip.Reader)
		if err := s.gz.Reset(bytes.NewReader(data)); err != nil {
			s.Name = ""
			return s, err
		}
		if s.gz.Name != "" {
			s.Name = s.gz.Name
		}
		s.Size = int64(binary.LittleEndian.Uint32(data[len(data)-4:]))
		s.Reader = s.gz
	case Bzip2:
		// The decoder allocates 400 kB per 100 kB of block size the
		// stream declares, 3.6 MB for most: a thousand tiny .bz2
		// members would otherwise cost 3.6 GB of allocations.
		tables := int64(data[3]-'0') * 400_000
		if tables > *left {
			return s, ErrBudget
		}
		*left -= tables
		s.Reader = bzip2.NewReader(bytes.NewReader(data))
	case XZ:
		s.Reader = newXZReader(data, limit, left)
	case Zstd:
		zr, err := newZstdReader(data, left)
		if err != nil {
			return s, err
		}
		s.zs, s.Reader = zr, zr
	default:
		return s, errNotCompressed
	}
	return s, nil
}

// Close releases the decoder.
func (s *Stream) Close() {
	if s.gz != nil {
		gzipReaders.Put(s.gz)
		s.gz = nil
	}
	if s.zs.Decoder != nil {
		s.zs.Close()
		s.zs.Decoder = nil
	}
	s.Reader = nil
}

// innerName names the file a compressed file called name holds when the
// format keeps no name: name without its extension, a tar for the
// extensions in tars (".tgz").
func innerName(name string, tars []string) string {
	ext := path.Ext(name)
	inner := strings.TrimSuffix(path.Base(strings.ReplaceAll(name, `\`, "/")), ext)
	for _, t := range tars {
		if strings.EqualFold(ext, t) {
			return inner + ".tar"
		}
	}
	return inner
}

// Files calls fn with each regular file of the tar archive r reads, and
// a reader of its content (a sparse file's expanded), in order, until fn
// returns false or the archive ends. The error is the archive's.
func Files(r io.Reader, fn func(h *tar.Header, content io.Reader) bool) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeGNUSparse {
			continue
		}
		if !fn(h, tr) {
			return nil
		}
	}
}

// IsBzip2 checks for a bzip2 stream: "BZh", the block size (1 to 9, in
// 100 kB) and the magic of a first block or of the stream's end.
func IsBzip2(data []byte) bool {
	return len(data) >= 10 && string(data[:3]) == "BZh" && data[3] >= '1' && data[3] <= '9' &&
		(string(data[4:10]) == "1AY&SY" || string(data[4:10]) == "\x17rE8P\x90")
}

// IsTar checks for a tar header. POSIX and GNU headers carry the magic
// at offset 257; a V7 header, older than both, has none, only its
// checksum, and libarchive (tar.exe, Windows 11's Explorer) opens it as
// a tar all the same.
func IsTar(data []byte) bool {
	if len(data) >= 262 && string(data[257:262]) == "ustar" {
		return true
	}
	if len(data) < 512 || data[0] == 0 {
		return false
	}
	want, ok := tarOctal(data[148:156])
	if !ok {
		return false
	}
	// The checksum is the header's byte sum, its own field read as blanks.
	sum := uint64(8 * ' ')
	for i, b := range data[:512] {
		if i < 148 || i >= 156 {
			sum += uint64(b)
		}
	}
	return sum == want
}

// tarOctal reads a tar header's numeric field: octal digits between
// blanks and NULs. It is strconv.ParseUint of the trimmed field in base 8
// without the error, which allocated twice for every leaf of 512 bytes
// or more that is not a tar, nearly all mail's text.
func tarOctal(field []byte) (n uint64, ok bool) {
	field = bytes.Trim(field, " \x00")
	if len(field) == 0 {
		return 0, false
	}
	for _, c := range field {
		if c < '0' || c > '7' {
			return 0, false
		}
		n = n*8 + uint64(c-'0')
	}
	return n, true
}
