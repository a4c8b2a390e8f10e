package antivirus

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/mxgrid/mxgrid/scanner/unpack"
	"github.com/mxgrid/mxgrid/scanner/zipdir"
)

// bombFloor is the decompressed size below which no ratio counts as a bomb:
// tiny members of repetitive text compress absurdly well and harm no one.
const bombFloor = 1 << 20

// errZipBomb stops the walk of an archive whose member expands beyond the
// ratio limit.
var errZipBomb = errors.New("zip bomb")

// budget is what one message may cost in archive work, shared by every
// archive in it, so many small archives cannot add up to a big one.
type budget struct {
	files    int   // members left to look at
	expanded int64 // bytes left to decompress
	pool     *pool // the node's bytes in flight, shared by every scan
	held     int64 // what this message holds of pool
	unspent  int64 // what of held no member has decompressed yet
}

// errPoolSpent stops a member read when the node's scans together hold
// zip_expanded_in_flight.
var errPoolSpent = errors.New("archive bytes in flight on this node spent")

// reserve makes sure the message holds n bytes of the pool that no member
// has used yet, n being what an archive declares it expands to: taken in
// one go before it is expanded, so that scans arriving together take
// turns rather than each expanding part of its archive. It waits its
// turn until wait ends at most (see pool for when one that holds some
// may wait).
func (b *budget) reserve(wait context.Context, n int64) bool {
	n = min(n, b.expanded) - b.unspent
	if n <= 0 {
		return true
	}
	ok := b.pool.take(wait, b.held, n)
	if ok {
		b.held += n
		b.unspent += n
	}
	return ok
}

// pooledReader charges the message's budget.pool each byte it returns:
// what the archive declared was reserved before, and a member that
// expands past it (its archive lied, or declares nothing) takes more
// only while the pool has it free.
type pooledReader struct {
	r io.Reader
	b *budget
}

func (pr pooledReader) Read(p []byte) (int, error) {
	n, err := pr.r.Read(p)
	if n > 0 {
		from := min(int64(n), pr.b.unspent)
		pr.b.unspent -= from
		if more := int64(n) - from; more > 0 {
			if !pr.b.pool.tryTake(more) {
				return 0, errPoolSpent
			}
			pr.b.held += more
		}
	}
	return n, err
}

// declared is what archive/zip will let f, a member of an archive of
// size bytes, expand to (it refuses to read past the size the directory
// gives), within the ratio limit; nothing for a member readMember refuses
// by its declared sizes alone. Its compressed size is believed only as
// far as the archive has bytes: a 1 KB zip declaring 64 MB had it
// reserved and a buffer of it allocated.
func declared(f *zip.File, size, maxRatio int64) int64 {
	if declaresBomb(f, maxRatio) {
		return 0
	}
	limit := ratioLimit(int64(min(f.CompressedSize64, uint64(size))), maxRatio)
	return int64(min(f.UncompressedSize64, uint64(limit)))
}

func declaresBomb(f *zip.File, maxRatio int64) bool {
	return f.UncompressedSize64 > bombFloor && f.CompressedSize64 > 0 &&
		f.UncompressedSize64/f.CompressedSize64 > uint64(maxRatio)
}

// ratioLimit is the most a member of compressed bytes may expand to
// before it is a bomb.
func ratioLimit(compressed, maxRatio int64) int64 {
	if compressed > (math.MaxInt64-bombFloor)/maxRatio {
		return math.MaxInt64
	}
	return compressed*maxRatio + bombFloor
}

// readMember decompresses f within the ratio and budget limits. It returns
// errZipBomb when the member expands past maxRatio (measured on the bytes
// actually produced, not on the sizes the archive declares, which lie), and
// unpack.ErrBudget when the message's expansion budget is spent, errPoolSpent
// when the node's.
func readMember(f *zip.File, size int64, b *budget, maxRatio int64) ([]byte, error) {
	// The declared sizes are checked first: a bomb that admits it is one
	// costs nothing to reject.
	if declaresBomb(f, maxRatio) {
		return nil, fmt.Errorf("%w: %s declares %d bytes from %d", errZipBomb, f.Name, f.UncompressedSize64, f.CompressedSize64)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("open member %s: %w", f.Name, err)
	}
	defer rc.Close()
	return expand(rc, int64(f.CompressedSize64), declared(f, size, maxRatio), f.Name, b, maxRatio)
}

// expand reads what r decompresses from compressed bytes, within the ratio
// and budget limits, as readMember says. size is what the archive declares
// (0: nothing): the member is read into a buffer of that size, within the
// limits, rather than one grown as it fills, which allocated twice the
// member and held up to that at once while the pool counted it once.
func expand(r io.Reader, compressed, size int64, name string, b *budget, maxRatio int64) ([]byte, error) {
	bombAt := ratioLimit(compressed, maxRatio)
	limit := min(bombAt, b.expanded)
	// One more byte than the member, to read its end without growing.
	buf := make([]byte, 0, min(max(size, 511), limit)+1)
	data, err := readAll(pooledReader{io.LimitReader(r, limit+1), b}, buf, limit+1)
	if errors.Is(err, errPoolSpent) {
		return nil, err
	}
	b.expanded -= min(int64(len(data)), b.expanded)
	if int64(len(data)) > limit {
		if limit == bombAt {
			return nil, fmt.Errorf("%w: %s expands past %d:1", errZipBomb, name, maxRatio)
		}
		return data[:limit], unpack.ErrBudget
	}
	if err != nil {
		// A CRC mismatch or corrupt stream: scan what came out anyway.
		return data, fmt.Errorf("read member %s: %w", name, err)
	}
	return data, nil
}

// readAll is io.ReadAll into buf, of a reader that returns at most most
// bytes. A full buffer is doubled, to at most most: grown by append, a
// quarter at a time past 256 KiB, a member that expanded past what its
// archive declared allocated five times its size.
func readAll(r io.Reader, buf []byte, most int64) ([]byte, error) {
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= most {
				return buf, nil // all r may return: its next read is io.EOF
			}
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), most))
			copy(grown, buf)
			buf = grown
		}
	}
}

// openZip opens data as a zip archive, reading no more of its central
// directory than the message's member budget can still use: archive/zip
// holds a few hundred bytes per directory entry, so a small archive of
// empty entries, or one nested in another, would cost many times its size.
// archive/zip reports names with ".." or absolute paths as ErrInsecurePath
// but still returns a usable reader; we never write members to disk, so
// such names are only scanned.
func (s *scan) openZip(data []byte, where string) (*zip.Reader, error) {
	zr, truncated, err := zipdir.Open(data, s.budget.files+1)
	if truncated {
		s.symbol(SymbolArchiveLimit, fmt.Sprintf("%s: more than %d archive members", where, s.c.cfg.ZipMaxFiles))
	}
	if errors.Is(err, zip.ErrInsecurePath) {
		return zr, nil
	}
	return zr, err
}

// ooxmlHasMacros reports an Office Open XML package carrying a VBA project:
// macro-enabled documents store it as a vbaProject.bin part ([MS-OFFMACRO]).
func ooxmlHasMacros(zr *zip.Reader) bool {
	for _, f := range zr.File {
		if strings.HasSuffix(strings.ToLower(f.Name), "vbaproject.bin") {
			return true
		}
	}
	return false
}
