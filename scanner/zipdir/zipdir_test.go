package zipdir

import (
	"archive/zip"
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

// archive builds a zip of n stored members named m0, m1, ..., each holding
// its own name, after prefix.
func archive(t testing.TB, prefix string, n int) []byte {
	t.Helper()
	buf := bytes.NewBufferString(prefix)
	zw := zip.NewWriter(buf)
	zw.SetOffset(int64(len(prefix)))
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, name)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// junkPrefixed is an archive written as if it started at offset 0, with
// bytes then put in front of it: archive/zip finds it from the end record.
func junkPrefixed(t testing.TB, n int) []byte {
	return append([]byte("%PDF-1.7 not a zip\n"), archive(t, "", n)...)
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name          string
		data          []byte
		max           int
		wantMembers   int
		wantTruncated bool
	}{
		{"small archive", archive(t, "", 3), 10, 3, false},
		{"exactly the limit", archive(t, "", 10), 10, 10, false},
		{"over the limit", archive(t, "", 50), 10, 10, true},
		{"written after other bytes", archive(t, "MZ junk before ", 50), 10, 10, true},
		{"prepended without offsets", junkPrefixed(t, 50), 7, 7, true},
		{"zip64: more than 65535 members", archive(t, "", 70_000), 1000, 1000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			zr, truncated, err := Open(tt.data, tt.max)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if truncated != tt.wantTruncated || len(zr.File) != tt.wantMembers {
				t.Fatalf("truncated %v with %d members, want %v with %d", truncated, len(zr.File), tt.wantTruncated, tt.wantMembers)
			}
			// The members kept are the archive's first ones, and read.
			for i, f := range zr.File {
				want := fmt.Sprintf("m%d", i)
				rc, err := f.Open()
				if err != nil {
					t.Fatalf("member %d: %v", i, err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if f.Name != want || string(got) != want || err != nil {
					t.Fatalf("member %d = %q holding %q (%v), want %q", i, f.Name, got, err, want)
				}
			}
		})
	}
}

func TestOpenRefusesWhatArchiveZipRefuses(t *testing.T) {
	for _, data := range [][]byte{
		nil,
		[]byte("PK\x03\x04 not really"),
		bytes.Repeat([]byte("PK\x01\x02"), 100), // headers, no end record
	} {
		if zr, _, err := Open(data, 10); err == nil {
			t.Errorf("Open(%q) = %d members, want an error", data[:min(len(data), 16)], len(zr.File))
		}
	}
}

// TestOpenBoundsDirectoryMemory is the reason for the package: archive/zip
// keeps a File for every directory header, several times the archive's
// size, and Open keeps the first few only.
func TestOpenBoundsDirectoryMemory(t *testing.T) {
	data := archive(t, "", 100_000)
	allocated := func(open func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		open()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	unbounded := allocated(func() {
		if _, err := zip.NewReader(bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	})
	bounded := allocated(func() {
		if _, _, err := Open(data, 1000); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("archive %d bytes: archive/zip allocated %d, Open with 1000 entries %d", len(data), unbounded, bounded)
	if unbounded < uint64(len(data)) {
		t.Fatalf("archive/zip allocated only %d bytes for a %d-byte directory: the test no longer shows the problem", unbounded, len(data))
	}
	if bounded > uint64(len(data))/10 {
		t.Errorf("Open allocated %d bytes for a %d-byte archive, want at most a tenth of it", bounded, len(data))
	}
}

func FuzzOpen(f *testing.F) {
	f.Add(archive(f, "", 3), 2)
	f.Add(junkPrefixed(f, 4), 3)
	f.Add([]byte("PK\x01\x02PK\x05\x06"), 0)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max = max&0xFF + 1
		zr, _, err := Open(data, max)
		if err == nil && len(zr.File) > max {
			t.Fatalf("%d members read with a limit of %d", len(zr.File), max)
		}
	})
}

func TestLocalFiles(t *testing.T) {
	two := append(archive(t, "", 2), archive(t, "", 1)...)
	noDirectory := archive(t, "", 2)
	noDirectory = noDirectory[:bytes.Index(noDirectory, sigDirHeader)]
	nested := storedZip(t, archive(t, "", 1), true)
	tests := []struct {
		name string
		data []byte
		max  int
		want string
	}{
		{"two archives end to end", two, 10, "m0,m1,m0"},
		{"no central directory", noDirectory, 10, "m0,m1"},
		{"at most one", two, 1, "m0"},
		// A stored member's data is skipped when its header gives its
		// size: its own members are not the archive's.
		{"a stored zip inside", nested, 10, "inner.zip"},
		{"a header cut short", noDirectory[:20], 10, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			for _, f := range LocalFiles(tt.data, tt.max) {
				names = append(names, f.Name)
			}
			if got := strings.Join(names, ","); got != tt.want {
				t.Errorf("LocalFiles = %q, want %q", got, tt.want)
			}
		})
	}
}

// storedZip is a zip holding inner stored as "inner.zip": with its sizes
// in the local header (sized), or after its data (bit 3) as archive/zip
// writes a member it streams.
func storedZip(t *testing.T, inner []byte, sized bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var w io.Writer
	var err error
	if sized {
		w, err = zw.CreateRaw(&zip.FileHeader{Name: "inner.zip", Method: zip.Store, CRC32: crc32.ChecksumIEEE(inner),
			CompressedSize64: uint64(len(inner)), UncompressedSize64: uint64(len(inner))})
	} else {
		w, err = zw.CreateHeader(&zip.FileHeader{Name: "inner.zip", Method: zip.Store})
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Write(inner)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUnlisted(t *testing.T) {
	open := func(data []byte) *zip.Reader {
		zr, _, err := Open(data, 100)
		if err != nil {
			t.Fatal(err)
		}
		return zr
	}
	first := archive(t, "", 2)
	two := append(bytes.Clone(first), archive(t, "", 1)...)
	// A stored zip whose sizes follow its data (bit 3): only the central
	// directory says where its data ends.
	nested := storedZip(t, archive(t, "", 3), false)
	tests := []struct {
		name string
		data []byte
		zr   *zip.Reader
		want string
	}{
		{"the first of two archives end to end, a name shared", two, open(two), "m0,m1"},
		{"no central directory", first[:bytes.Index(first, sigDirHeader)], nil, "m0,m1"},
		{"a stored zip's own members", nested, open(nested), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			for _, f := range Unlisted(tt.data, tt.zr, 10) {
				names = append(names, f.Name)
			}
			if got := strings.Join(names, ","); got != tt.want {
				t.Errorf("Unlisted = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzLocalFiles: whatever the bytes, at most max members, each header
// inside the archive and its data a suffix of it, in the order they lie;
// Unlisted gives a subset of them.
// TestPackedStoredWithDescriptor: a stored member whose sizes follow its
// data (bit 3) is its data up to the next signature, not the rest of the
// archive: a message of many small members read each one's successors
// too, quadratic in their number.
func TestPackedStoredWithDescriptor(t *testing.T) {
	data := archive(t, "", 200)
	data = data[:bytes.Index(data, sigDirHeader)]
	files := LocalFiles(data, 1000)
	if len(files) != 200 {
		t.Fatalf("%d members, want 200", len(files))
	}
	total := 0
	for i, lf := range files {
		if lf.Flags&8 == 0 || lf.Method != 0 {
			t.Fatalf("member %d: flags %#x method %d, want a stored member with a data descriptor", i, lf.Flags, lf.Method)
		}
		got := lf.Packed()
		if want := fmt.Sprintf("m%d", i); string(got) != want {
			t.Errorf("member %d: packed %.20q, want %q", i, got, want)
		}
		total += len(got)
	}
	if total > len(data) {
		t.Errorf("the members' data add up to %d bytes of a %d-byte archive", total, len(data))
	}
}

func FuzzLocalFiles(f *testing.F) {
	f.Add(append(archive(f, "", 2), archive(f, "", 1)...), 4)
	f.Add([]byte("PK\x03\x04"), 1)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max = max&0xFF + 1
		files := LocalFiles(data, max)
		if len(files) > max {
			t.Fatalf("%d members with a limit of %d", len(files), max)
		}
		last := -1
		for _, lf := range files {
			if p := lf.Packed(); !bytes.HasPrefix(lf.Data, p) {
				t.Fatalf("member %q: packed data is not where its data starts", lf.Name)
			}
			if lf.Offset <= last || lf.Offset+localHeaderLen > len(data) || !bytes.HasSuffix(data, lf.Data) {
				t.Fatalf("member %q at %d (previous at %d) lies outside the %d-byte archive", lf.Name, lf.Offset, last, len(data))
			}
			last = lf.Offset
			if alt := lf.UnicodePath(); alt == lf.Name && alt != "" || !utf8.ValidString(alt) || strings.IndexByte(alt, 0) >= 0 {
				t.Fatalf("member %q: Unicode Path %q", lf.Name, alt)
			}
		}
		zr, _, _ := Open(data, max)
		if unlisted := Unlisted(data, zr, max); len(unlisted) > len(files) {
			t.Fatalf("%d unlisted members of %d", len(unlisted), len(files))
		}
	})
}
