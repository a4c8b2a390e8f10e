package scanner

import (
	"bufio"
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

func TestHeaderExtent(t *testing.T) {
	for _, tc := range []struct {
		name, msg    string
		end, body    int
		unterminated bool
		tooLarge     bool
	}{
		{"empty line", "A: 1\r\nB: 2\r\n\r\nbody\r\n", 12, 14, false, false},
		{"bare LF", "A: 1\nB: 2\n\nbody\n", 10, 11, false, false},
		{"folded field", "A: 1\r\n 2\r\n\tthree\r\n\r\nx", 18, 20, false, false},
		{"header only, no empty line", "A: 1\r\nB: 2", 10, 10, false, false},
		{"no header", "\r\nbody", 0, 2, false, false},
		{"empty message", "", 0, 0, false, false},
		{"space in a name", "A: 1\r\nX Mailer: 1\r\nFrom: x\r\n\r\n", 6, 6, true, false},
		{"no colon", "A: 1\r\nhello\r\n\r\n", 6, 6, true, false},
		{"empty name", "A: 1\r\n: x\r\n\r\n", 6, 6, true, false},
		{"first line folded", " A: 1\r\n\r\n", 0, 0, true, false},
		{"control in a name", "A\x01: 1\r\n\r\n", 0, 0, true, false},
		{"space before the colon", "Subject : x\r\n\r\n", 13, 15, false, false},
		{"colon past 998 octets", strings.Repeat("A", 1000) + ": x\r\n\r\n", 0, 0, true, false},
		{"fields over the limit", strings.Repeat("A: 1\r\n", MaxHeaderFields+1) + "\r\n", MaxHeaderFields * 6, MaxHeaderFields * 6, false, true},
		{"fields at the limit", strings.Repeat("A: 1\r\n", MaxHeaderFields) + "\r\n", MaxHeaderFields * 6, MaxHeaderFields*6 + 2, false, false},
		{"one line over the byte limit", "A: " + strings.Repeat("x", MaxHeaderBytes) + "\r\n\r\n", 0, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ext, err := findHeaderExtent(bufio.NewReader(strings.NewReader(tc.msg)), 0)
			if err != nil {
				t.Fatal(err)
			}
			if int(ext.end) != tc.end || int(ext.body) != tc.body || ext.unterminated != tc.unterminated || ext.tooLarge != tc.tooLarge {
				t.Errorf("end %d body %d unterminated %v tooLarge %v; want %d %d %v %v",
					ext.end, ext.body, ext.unterminated, ext.tooLarge, tc.end, tc.body, tc.unterminated, tc.tooLarge)
			}
		})
	}
}

// What findHeaderExtent counts as the header, textproto.ReadHeader must
// parse without an error and whole: the fields scanned are the fields
// relayed.
func FuzzHeaderExtentAgreesWithReadHeader(f *testing.F) {
	for _, s := range []string{
		"A: 1\r\nB: 2\r\n\r\nbody", "A: 1\r\n 2\r\nX Mailer: 1\r\n\r\n", " A\r\n", "A:\r\n\t\r\n\r\n",
		"Subject : x\r\n\r\n", "A: 1\n\n", "A: 1\r\r\n\r\n", "\x80: 1\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ext, err := findHeaderExtent(bufio.NewReaderSize(bytes.NewReader(raw), 16), 0)
		if err != nil {
			t.Fatal(err)
		}
		if ext.end > ext.body || ext.body > int64(len(raw)) {
			t.Fatalf("end %d body %d of %d bytes", ext.end, ext.body, len(raw))
		}
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw[:ext.end])))
		if err != nil {
			t.Fatalf("ReadHeader refuses what the extent counted as header %q: %v", raw[:ext.end], err)
		}
		// Every line the extent counted as a field start is one field.
		lines := 0
		for i, l := range bytes.SplitAfter(raw[:ext.end], []byte("\n")) {
			if len(l) > 0 && (i == 0 || l[0] != ' ' && l[0] != '\t') {
				lines++
			}
		}
		if h.Len() != lines {
			t.Fatalf("ReadHeader parsed %d fields from %q, the extent %d", h.Len(), raw[:ext.end], lines)
		}
	})
}

// 8 MB of "X: y" lines cost 620 MB of heap when the header was read
// without a bound.
func TestHeaderBombParsesInBoundedMemory(t *testing.T) {
	raw := []byte(strings.Repeat("X: y\r\n", 8<<20/6) + "\r\nbody\r\n")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := NewParser(nil).Parse(raw)
	runtime.ReadMemStats(&after)
	if !m.HeaderTooLarge || m.Header.Len() > MaxHeaderFields {
		t.Errorf("HeaderTooLarge %v with %d fields, want true and at most %d", m.HeaderTooLarge, m.Header.Len(), MaxHeaderFields)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 && !raceEnabled {
		t.Errorf("parsing an 8 MB header allocated %d MB, want < 32", got>>20)
	}
}

// The header of a MIME part or of an attached message is bounded as the
// message's is: the walk stops there and the message is marked, since
// what follows was not read.
func TestPartHeaderBombParsesInBoundedMemory(t *testing.T) {
	bomb := strings.Repeat("X: y\r\n", 8<<20/6)
	for _, tc := range []struct{ name, msg string }{
		{"part header", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" + bomb +
			"\r\npart\r\n--b\r\nContent-Type: application/octet-stream; name=a.exe\r\n\r\nMZ\r\n--b--\r\n"},
		{"attached message header", "Content-Type: message/rfc822\r\n\r\n" + bomb + "\r\nbody\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.msg)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			m := NewParser(nil).Parse(raw)
			runtime.ReadMemStats(&after)
			if !m.HeaderTooLarge {
				t.Errorf("HeaderTooLarge false for a %s of %d fields", tc.name, strings.Count(bomb, "\n"))
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 && !raceEnabled {
				t.Errorf("parsing an 8 MB %s allocated %d MB, want < 32", tc.name, got>>20)
			}
		})
	}
}

// A part's Content-Type may be a megabyte of parameters (up to the part
// header's 1 MiB), each read into the parameter map: tens of milliseconds
// and tens of megabytes a read. go-message reads it when it makes the
// part, and the walk read it again; a message of 24 such parts cost 3.4 s
// and 3 GB. The walk takes the type go-message read. (go-message now reads
// MaxHeaderParams parameters of a field; each may still be long.)
func TestPartContentTypeIsReadOnce(t *testing.T) {
	var ct strings.Builder
	ct.WriteString("application/octet-stream")
	for i := range message.MaxHeaderParams {
		fmt.Fprintf(&ct, "; k%d*=iso-8859-1''%s", i, strings.Repeat("%41", 3000)) // decoded twice each
	}
	allocs := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	var h message.Header
	h.Set("Content-Type", ct.String())
	once := allocs(func() { h.ContentType() })
	parse := func(ct string) uint64 {
		raw := []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: " + ct + "\r\n\r\nx\r\n--b--\r\n")
		return allocs(func() { NewParser(nil).Parse(raw) })
	}
	// Less what the message costs with a field as long that costs
	// nothing to read: the header reader's buffers.
	cheap := "application/octet-stream; k=" + strings.Repeat("A", ct.Len()-28)
	if extra := parse(ct.String()) - parse(cheap); extra > once*3/2 {
		t.Errorf("a %d KB Content-Type added %d KB to the message's parse, reading the field once %d KB: read more than once", ct.Len()>>10, extra>>10, once>>10)
	}
}

// A part's field of more parameters than go-message reads is a finding
// the size of the others the parser stops at, not broken MIME; and the
// file names behind them are still found: a boundary or a name
// go-message looks for past its limit, a repeated name by rawParams over
// the whole field.
func TestTooManyParamsTooComplex(t *testing.T) {
	var pad strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&pad, "; k%d*=iso-8859-1''%%41", i)
	}
	raw := "Content-Type: multipart/mixed" + pad.String() + "; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: application/octet-stream" + pad.String() + "; name=a.exe\r\n" +
		"Content-Disposition: attachment; filename=a.txt" + pad.String() + "; filename=b.js\r\n\r\nx\r\n--b--\r\n"
	m := NewParser(nil).Parse([]byte(raw))
	var syms []string
	for _, s := range m.Symbols {
		syms = append(syms, s.Name)
	}
	if !slices.Equal(syms, []string{SymbolMIMETooComplex}) {
		t.Errorf("symbols %q, want MIME_TOO_COMPLEX alone", syms)
	}
	if len(m.Parts) != 2 {
		t.Fatalf("%d parts, want the multipart and its attachment", len(m.Parts))
	}
	if p := m.Parts[1]; !slices.Equal(append([]string{p.Filename}, p.AltNames...), []string{"a.txt", "b.js", "a.exe"}) {
		t.Errorf("names %q and %q, want a.txt, b.js and a.exe", p.Filename, p.AltNames)
	}
}

// An attached message marked quoted-printable (or base64) is walked in
// two readings, decoded and as it came, and each holds the next level's,
// so ten levels of text that both readings read as a message were walked
// a thousand times: a 1 MB message took 1.4 s of CPU and 708 MB to parse.
// The bytes held for the readings are decoded bytes the message keeps,
// within max_decoded_bytes.
func TestNestedEncodedMessagesReadWithinDecodedBytes(t *testing.T) {
	m := "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat(strings.Repeat("x", 76)+"\r\n", 100<<10/78) +
		"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n"
	for range 10 {
		m = "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + m
	}
	raw := []byte(m)
	lim := DefaultLimits()
	lim.MaxPartBytes, lim.MaxDecodedBytes = 1<<20, 1<<20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	msg := NewParser(nil).WithLimits(lim).Parse(raw)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 16*uint64(lim.MaxDecodedBytes) && !raceEnabled {
		t.Errorf("parsing %d KB of nested messages allocated %d MB, want < 16 MB", len(raw)>>10, got>>20)
	}
	if !slices.ContainsFunc(msg.Symbols, func(s Symbol) bool { return s.Name == SymbolMIMETooComplex }) {
		t.Errorf("symbols %v, want MIME_TOO_COMPLEX: not every reading was read", msg.Symbols)
	}
}

// A part's repeated Content-Type and Content-Disposition fields are read
// for their file names. Each was read whole: 700 fields of 60 RFC 2231
// parameters in Latin-1 in each of 24 parts, a 22 MB message, took 1.4 s
// and 1.5 GB to parse, under the parameter limit of each field. They are
// read for the name's parameters alone, the rest of each searched once
// for other values of the name.
func TestRepeatedFieldsReadForTheirNames(t *testing.T) {
	var pad strings.Builder
	for i := range 60 {
		fmt.Fprintf(&pad, "; k%d*=iso-8859-1''%%41", i)
	}
	field := "Content-Type: text/plain" + pad.String() + "; name*=iso-8859-1''b%2Etxt\r\n"
	part := func(repeats int) []byte {
		return []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; name=a.txt\r\n" +
			strings.Repeat(field, repeats) + "Content-Type: text/plain; name=d.txt; x=1; name=c.js\r\n\r\nx\r\n--b--\r\n")
	}
	allocs := func(raw []byte) (uint64, *Message) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := NewParser(nil).Parse(raw)
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc, m
	}
	one, m := allocs(part(1))
	if p := m.Parts[1]; !slices.Equal(append([]string{p.Filename}, p.AltNames...), []string{"a.txt", "b.txt", "d.txt", "c.js"}) {
		t.Errorf("names %q and %q, want a.txt, b.txt, d.txt and c.js", p.Filename, p.AltNames)
	}
	many, _ := allocs(part(501))
	if perField := (many - one) / 500; perField > 8*uint64(len(field)) {
		t.Errorf("a repeated %d-byte field allocated %d bytes to read, want at most 8 times its size (the header reader's share included)", len(field), perField)
	}
}

// A part may give maxRawNames names in each of its MaxHeaderFields
// fields, and each name kept was searched for among those kept before it:
// a part of 32,000 distinct names (a 600 KB header) took 5 s of CPU to
// parse, and a message holds many such parts. Every distinct name is
// still kept, in order, a repeated one once.
func TestManyNamesOfAPartAreKept(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n")
	want := []string{"n0.txt"}
	for range MaxHeaderFields - 1 {
		b.WriteString("Content-Disposition: attachment")
		b.WriteString("; filename=n0.txt")
		for range maxRawNames - 1 {
			name := fmt.Sprintf("n%d.txt", len(want))
			want = append(want, name)
			b.WriteString("; filename=" + name)
		}
		b.WriteString("\r\n")
	}
	b.WriteString("\r\nx\r\n--b--\r\n")
	m := NewParser(nil).Parse([]byte(b.String()))
	if len(m.Parts) != 2 {
		t.Fatalf("%d parts, want the multipart and its attachment", len(m.Parts))
	}
	if got := m.Parts[1].Names(); !slices.Equal(got, want) {
		t.Errorf("%d names kept, want the %d distinct ones in order", len(got), len(want))
	}
}
