// Package zipdir opens zip archives from untrusted mail with the central
// directory bounded.
//
// archive/zip parses every central-directory header before it returns,
// and keeps a File of a few hundred bytes for each 46-byte header: a
// directory of empty entries costs several times the archive's size in
// heap, and a zip nested in a zip multiplies that by the expansion budget.
// The entry count in the end record does not bound it either: the reader
// reads until a header fails to parse and compares the count modulo 65536
// only. Open therefore lets archive/zip see at most maxEntries headers.
package zipdir

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf8"
)

// Record signatures and fixed lengths (APPNOTE 4.3.12, 4.3.16, 4.3.14-15).
var (
	sigDirHeader = []byte("PK\x01\x02")
	sigDirEnd    = []byte("PK\x05\x06")
	sigDir64Loc  = []byte("PK\x06\x07")
	sigDir64End  = []byte("PK\x06\x06")
)

const (
	dirHeaderLen = 46
	dirEndLen    = 22
	dir64LocLen  = 20
	dir64EndLen  = 56
	maxComment   = 0xFFFF
)

// ErrNoDirectory reports an archive whose central directory could not be
// located although it has more headers than the caller allows.
var ErrNoDirectory = errors.New("zip: central directory not found")

// Open opens data as a zip archive in which at most maxEntries entries of
// the central directory are read. truncated reports that the archive has
// more and only the first maxEntries were kept. As with archive/zip, a
// reader is returned with zip.ErrInsecurePath.
func Open(data []byte, maxEntries int) (zr *zip.Reader, truncated bool, err error) {
	// archive/zip only keeps a header that starts with its signature, so
	// the signatures in data bound what it can allocate, wherever it
	// decides the directory starts.
	if bytes.Count(data, sigDirHeader) <= maxEntries {
		zr, err = zip.NewReader(bytes.NewReader(data), int64(len(data)))
		return zr, false, err
	}
	view, ok := firstEntries(data, maxEntries)
	if !ok {
		return nil, false, ErrNoDirectory
	}
	zr, err = zip.NewReader(view, view.Size())
	return zr, true, err
}

// UnicodePath returns the name 7-Zip, WinRAR and libarchive extract f
// under in place of its own, or "": that of its Info-ZIP Unicode Path
// extra field (0x7075, APPNOTE 4.6.9), read as 7-Zip reads it
// (CItem::GetUnicodeString): for a name not flagged UTF-8, from the first
// such field, of version 0 or 1, whose CRC is the name's, in UTF-8
// without a NUL. archive/zip ignores the field, so a member stored as
// invoice.txt and named invoice.js there was judged as a text file.
func UnicodePath(f *zip.File) string { return unicodePath(f.Name, f.Flags, f.Extra) }

// UnicodePath is UnicodePath of a member read from its local header,
// whose extra field 7-Zip reads as it reads the directory's.
func (f LocalFile) UnicodePath() string { return unicodePath(f.Name, f.Flags, f.Extra) }

func unicodePath(stored string, flags uint16, extra []byte) string {
	if flags&0x800 != 0 {
		return ""
	}
	for len(extra) >= 4 {
		id, size := binary.LittleEndian.Uint16(extra), int(binary.LittleEndian.Uint16(extra[2:]))
		if size > len(extra)-4 {
			return ""
		}
		field := extra[4 : 4+size]
		extra = extra[4+size:]
		if id != 0x7075 {
			continue
		}
		if len(field) < 5 || field[0] > 1 || binary.LittleEndian.Uint32(field[1:]) != crc32.ChecksumIEEE([]byte(stored)) {
			return ""
		}
		name := string(field[5:])
		if name == stored || !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
			return ""
		}
		return name
	}
	return ""
}

// HasEnd reports an end-of-central-directory record where one can be: in
// the last 22 bytes plus the longest archive comment (APPNOTE 4.3.16). Zip
// readers (7-Zip, Windows Explorer, archive/zip) find an archive from it,
// so one behind prepended bytes opens for the recipient although its start
// is not "PK\x03\x04".
func HasEnd(data []byte) bool {
	return bytes.Contains(data[max(0, len(data)-dirEndLen-maxComment):], sigDirEnd)
}

// firstEntries is data cut after its first n directory headers and closed
// with an end record of its own, so that archive/zip stops there. The view
// starts at the archive's base (bytes prepended to it are left out), which
// puts the directory where the new end record says it is and leaves
// archive/zip no other place to look.
func firstEntries(data []byte, n int) (*view, bool) {
	base, start, ok := locate(data)
	if !ok {
		return nil, false
	}
	end, count := start, 0
	for count < min(n, 0xFFFE) { // below the zip64 markers
		l, ok := headerLen(data[end:])
		if !ok || end+l-start == 0xFFFF {
			break
		}
		end += l
		count++
	}
	var rec [dirEndLen]byte
	copy(rec[:], sigDirEnd)
	binary.LittleEndian.PutUint16(rec[8:], uint16(count))
	binary.LittleEndian.PutUint16(rec[10:], uint16(count))
	binary.LittleEndian.PutUint32(rec[12:], uint32(end-start))
	binary.LittleEndian.PutUint32(rec[16:], uint32(start-base))
	return &view{body: data[base:end], end: rec}, true
}

// locate finds the archive's base offset and the start of its central
// directory as archive/zip does: the last end record whose comment fits in
// the final 64 KiB, the zip64 end record when the locator precedes it, and
// the base implied by the directory's size and offset.
func locate(data []byte) (base, start int, ok bool) {
	endAt := -1
	for i := len(data) - dirEndLen; i >= max(0, len(data)-dirEndLen-maxComment); i-- {
		if bytes.HasPrefix(data[i:], sigDirEnd) {
			if i+dirEndLen+int(binary.LittleEndian.Uint16(data[i+20:])) > len(data) {
				return 0, 0, false
			}
			endAt = i
			break
		}
	}
	if endAt < 0 {
		return 0, 0, false
	}
	rec := data[endAt:]
	size := uint64(binary.LittleEndian.Uint32(rec[12:]))
	offset := uint64(binary.LittleEndian.Uint32(rec[16:]))
	dirEnd := endAt
	if loc := endAt - dir64LocLen; loc >= 0 && bytes.HasPrefix(data[loc:], sigDir64Loc) {
		at := binary.LittleEndian.Uint64(data[loc+8:])
		if at > uint64(len(data)-dir64EndLen) || !bytes.HasPrefix(data[at:], sigDir64End) {
			return 0, 0, false
		}
		size = binary.LittleEndian.Uint64(data[at+40:])
		offset = binary.LittleEndian.Uint64(data[at+48:])
		dirEnd = int(at)
	}
	if size > uint64(dirEnd) || offset > uint64(dirEnd)-size {
		return 0, 0, false
	}
	base = dirEnd - int(size) - int(offset)
	start = base + int(offset)
	// A wrong end record that a zero base repairs is read with a zero
	// base, as archive/zip reads it.
	if base > 0 {
		if _, ok := headerLen(data[offset:]); ok {
			base, start = 0, int(offset)
		}
	}
	return base, start, true
}

// headerLen is the length of the central-directory header at the start of
// b, if one is there whole.
func headerLen(b []byte) (int, bool) {
	if len(b) < dirHeaderLen || !bytes.HasPrefix(b, sigDirHeader) {
		return 0, false
	}
	l := dirHeaderLen + int(binary.LittleEndian.Uint16(b[28:])) +
		int(binary.LittleEndian.Uint16(b[30:])) + int(binary.LittleEndian.Uint16(b[32:]))
	if l > len(b) {
		return 0, false
	}
	return l, true
}

// view is an archive's bytes followed by a replacement end record,
// without copying the bytes.
type view struct {
	body []byte
	end  [dirEndLen]byte
}

func (v *view) Size() int64 { return int64(len(v.body) + dirEndLen) }

func (v *view) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("zipdir: negative offset")
	}
	n := 0
	if off < int64(len(v.body)) {
		n = copy(p, v.body[off:])
	}
	if n < len(p) {
		if at := off + int64(n) - int64(len(v.body)); at < dirEndLen {
			n += copy(p[n:], v.end[at:])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// sigLocal starts a member's local header (APPNOTE 4.3.7).
var sigLocal = []byte("PK\x03\x04")

const localHeaderLen = 30

// LocalFile is a member as its local header gives it.
type LocalFile struct {
	Name   string
	Flags  uint16
	Method uint16
	Extra  []byte
	// Data is the archive from the member's data to its end: a local
	// header with general purpose bit 3 set gives no sizes (they follow
	// the data), so where the data ends is the decompressor's to find.
	Data []byte
	// CompressedSize and UncompressedSize are the sizes the header
	// gives, 0 with bit 3.
	CompressedSize, UncompressedSize uint64
	// Offset is where the local header starts in the archive.
	Offset int
}

// sigDescriptor starts a data descriptor, the sizes that follow a member's
// data when bit 3 is set (APPNOTE 4.3.9; the signature is optional there,
// but every archiver writes it).
var sigDescriptor = []byte("PK\x07\x08")

// Packed is the member's data as stored: CompressedSize bytes when the
// header gives them; a Deflate stream without them runs to Data's end
// (the decompressor stops at its own end); stored data without them ends
// at the next signature, where 7-Zip and Info-ZIP end it too. Taking the
// rest of the archive there made each such member a copy of all the
// members after it: 160 MB read for one message of small ones.
func (f LocalFile) Packed() []byte {
	switch {
	case f.CompressedSize > 0:
		return f.Data[:min(f.CompressedSize, uint64(len(f.Data)))]
	case f.Flags&8 == 0 || f.Method != 0:
		return f.Data
	}
	for at := 0; ; {
		i := bytes.Index(f.Data[at:], []byte("PK"))
		if i < 0 {
			return f.Data
		}
		at += i
		if sig := f.Data[at:min(at+4, len(f.Data))]; bytes.Equal(sig, sigDescriptor) || bytes.Equal(sig, sigLocal) || bytes.Equal(sig, sigDirHeader) {
			return f.Data[:at]
		}
		at += 2
	}
}

// Unlisted are the local files of data that zr, the archive read from its
// central directory (nil if it could not be), does not list, nor holds in
// a listed member's data (a stored zip's own members), at most max. A
// member is listed by where its data starts, not by its name: the first of
// two zips end to end may name its .exe as the second names its PDF.
func Unlisted(data []byte, zr *zip.Reader, max int) []LocalFile {
	type span struct{ from, to int64 }
	var spans []span
	if zr != nil {
		for _, f := range zr.File {
			if off, err := f.DataOffset(); err == nil {
				spans = append(spans, span{off, off + int64(f.CompressedSize64)})
			}
		}
	}
	var files []LocalFile
	for _, lf := range LocalFiles(data, max+len(spans)) {
		at, dataAt := int64(lf.Offset), int64(len(data)-len(lf.Data))
		listed := false
		for _, sp := range spans {
			listed = listed || dataAt == sp.from || at >= sp.from && at < sp.to
		}
		if !listed && len(files) < max {
			files = append(files, lf)
		}
	}
	return files
}

// LocalFiles lists the members of data by their local headers, from the
// first on, at most max. 7-Zip and WinRAR read an archive so when its
// central directory is missing, and read the first of two archives put
// end to end, where archive/zip and Explorer read the directory at the
// end: the last.
func LocalFiles(data []byte, max int) []LocalFile {
	var files []LocalFile
	for pos := 0; len(files) < max; {
		i := bytes.Index(data[pos:], sigLocal)
		if i < 0 {
			break
		}
		h := data[pos+i:]
		if len(h) < localHeaderLen {
			break
		}
		nameLen := int(binary.LittleEndian.Uint16(h[26:]))
		extraLen := int(binary.LittleEndian.Uint16(h[28:]))
		if localHeaderLen+nameLen+extraLen > len(h) {
			break
		}
		f := LocalFile{
			Name:   string(h[localHeaderLen : localHeaderLen+nameLen]),
			Flags:  binary.LittleEndian.Uint16(h[6:]),
			Method: binary.LittleEndian.Uint16(h[8:]),
			Extra:  h[localHeaderLen+nameLen : localHeaderLen+nameLen+extraLen],
			Data:   h[localHeaderLen+nameLen+extraLen:],
			Offset: pos + i,
		}
		pos += i + localHeaderLen + nameLen + extraLen
		if f.Flags&8 == 0 {
			f.CompressedSize = uint64(binary.LittleEndian.Uint32(h[18:]))
			f.UncompressedSize = uint64(binary.LittleEndian.Uint32(h[22:]))
			// A member's data is skipped, so that a stored zip in it
			// is its member, not the outer archive's.
			pos += int(min(f.CompressedSize, uint64(len(data)-pos)))
		}
		files = append(files, f)
	}
	return files
}
