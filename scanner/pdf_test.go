package scanner

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func deflated(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// pdfWith wraps objects in a PDF's header and trailer; cross-reference
// offsets do not matter to the link reader, as they do not to readers that
// rebuild a broken table.
func pdfWith(objects ...string) []byte {
	return []byte("%PDF-1.7\n" + strings.Join(objects, "\n") + "\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
}

func stream(dict, data string) string {
	return "5 0 obj\n<< " + dict + " >>\nstream\r\n" + data + "\r\nendstream\nendobj"
}

func TestPDFLinks(t *testing.T) {
	padding := strings.Repeat("q 1 0 0 1 0 0 cm Q\n", pdfChunk/19)
	tests := []struct {
		name   string
		pdf    []byte
		budget int
		want   []string
	}{
		{"link annotation, literal string with escapes", pdfWith(`4 0 obj << /Type /Annot /Subtype /Link /A << /S /URI /URI (https://login.evil.example/a\)b\\c\101) >> >> endobj`), maxPDFInflated,
			[]string{`https://login.evil.example/a)b\cA`}},
		{"hexadecimal string", pdfWith(`4 0 obj << /A << /S /URI /URI <68747470733A2F2F6865782E6578616D706C652F> >> >> endobj`), maxPDFInflated,
			[]string{"https://hex.example/"}},
		{"UTF-16 string", pdfWith(`4 0 obj << /URI <FEFF0068007400740070003A002F002F0075002E006500780061006D0070006C0065> >> endobj`), maxPDFInflated,
			[]string{"http://u.example"}},
		{"in a compressed object stream", pdfWith(stream("/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode", deflated(t, "4 0 << /S /URI /URI (https://objstm.example/login) >>"))), maxPDFInflated,
			[]string{"https://objstm.example/login"}},
		{"across the boundary of two inflated chunks", pdfWith(stream("/Filter /FlateDecode", deflated(t, padding[:len(padding)-5]+"<</URI (https://split.example/x)>>"))), maxPDFInflated,
			[]string{"https://split.example/x"}},
		{"compressed, but nothing left of the budget", pdfWith(stream("/Filter /FlateDecode", deflated(t, "/URI (https://late.example/)"))), 0,
			nil},
		{"a reference, not a string", pdfWith(`4 0 obj << /URI 7 0 R >> endobj`), maxPDFInflated, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			budget := tt.budget
			if got := pdfLinks(tt.pdf, maxPDFLinks, &budget); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("pdfLinks = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestPDFLinksAreMessageLinks: a PDF printed by Chromium from a page with
// one link, attached to a mail with no link of its own.
func TestPDFLinksAreMessageLinks(t *testing.T) {
	pdf, err := os.ReadFile("testdata/pdf/chromium-link.pdf")
	if err != nil {
		t.Fatal(err)
	}
	raw := "From: a@example.org\r\nSubject: Document\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nPlease review the attached document.\r\n" +
		"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=document.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(pdf) + "\r\n--b--\r\n"
	m := Parse([]byte(raw))
	if len(m.URLs) != 1 || m.URLs[0].Host != "login.phish-example.test" || !m.URLs[0].InFile {
		t.Fatalf("links %+v", m.URLs)
	}
}

// TestPDFLinksReadEachStringOnce: a /URI string whose characters produce
// nothing (a hex string of non-hex characters, which "/URI <" itself is)
// is read to maxPDFStringScan, not to the end of the file; read to the
// end, each of these 2,000 strings read 4 MB on average.
func TestPDFLinksReadEachStringOnce(t *testing.T) {
	pdf := []byte("%PDF-1.7\n" + strings.Repeat("/URI <"+strings.Repeat(" z", 2000), 2000))
	budget := 0
	if links := pdfLinks(pdf, maxPDFLinks, &budget); len(links) != 0 {
		t.Fatalf("links %q", links)
	}
}

// TestPDFLinksSkipGapsOnce: the keys of a run without hex digits ("/URI <"
// repeated) read it once between them (see hexGap), and each still reads
// the string a reader would, within maxPDFStringScan. Read again from
// each key, 2 MB of "/URI <" took 8 s of CPU to parse.
func TestPDFLinksSkipGapsOnce(t *testing.T) {
	tests := []struct {
		name string
		pdf  string
		want []string
	}{
		{"each key reads past the gap", "/URI </URI < /URI <68>", []string{"h", "h", "h"}},
		{"the window ends in the gap", "/URI <" + strings.Repeat("z", maxPDFStringScan-1) + "68 /URI <69>", []string{"i"}},
		{"the window ends at its first digit", "/URI <" + strings.Repeat("z", maxPDFStringScan-2) + "68 /URI <69>", []string{"`", "i"}},
		{"a closed empty string", "/URI <zz> /URI <zz/URI (a) 6>", []string{"\xa6", "a"}},
	}
	for _, tt := range tests {
		pdf := []byte("%PDF-1.7\n" + tt.pdf)
		if got := appendURIs(nil, pdf, maxPDFLinks); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: links %q, want %q", tt.name, got, tt.want)
		}
		if got, want := appendURIs(nil, pdf, maxPDFLinks), everyKeyURIs(pdf, maxPDFLinks); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: links %q, reading every key's string %q", tt.name, got, want)
		}
	}
}

// everyKeyURIs is appendURIs reading each key's string whole, without
// the gap it knows of.
func everyKeyURIs(b []byte, limit int) []string {
	var links []string
	for len(links) < limit {
		i := bytes.Index(b, pdfURIKey)
		if i < 0 {
			break
		}
		b = b[i+len(pdfURIKey):]
		if s, ok := pdfString(b, nil); ok && s != "" {
			links = append(links, s)
		}
	}
	return links
}

func FuzzPDFLinks(f *testing.F) {
	f.Add(pdfWith(`<< /URI (https://a.example/\(x\)) >>`))
	f.Add(pdfWith(stream("/Filter /FlateDecode", deflated(f, "/URI <68747470>"))))
	f.Add([]byte("/URI </URI <zz> /URI <z/URI (a) 6>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		budget := 1 << 20
		links := pdfLinks(data, 4, &budget)
		if len(links) > 4 || budget < 0 {
			t.Fatalf("%d links, budget %d", len(links), budget)
		}
		if got, want := appendURIs(nil, data, 4), everyKeyURIs(data, 4); !reflect.DeepEqual(got, want) {
			t.Fatalf("links %q, reading every key's string %q", got, want)
		}
		for _, l := range links {
			if len(l) > 4*maxPDFString {
				t.Fatalf("a link of %d bytes", len(l))
			}
		}
	})
}

func TestPDFActions(t *testing.T) {
	padding := strings.Repeat("q 1 0 0 1 0 0 cm Q\n", pdfChunk/19)
	tests := []struct {
		name                   string
		pdf                    []byte
		budget                 int
		wantLaunch, wantScript bool
	}{
		{"launch action", pdfWith(`2 0 obj << /S /Launch /Win << /F (cmd.exe) /P (/c calc) >> >> endobj`), maxPDFInflated, true, false},
		{"JavaScript on opening", pdfWith(`1 0 obj << /Type /Catalog /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >> endobj`), maxPDFInflated, false, true},
		{"names escaped", pdfWith(`1 0 obj << /OpenAction << /S /#4Aava#53cript /JS 5 0 R >> /AA << /O << /S /L#61unch /F (x.exe) >> >> >> endobj`), maxPDFInflated, true, true},
		{"in a compressed object stream", pdfWith(stream("/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode", deflated(t, "4 0 << /S /Launch /F (invoice.exe) >>"))), maxPDFInflated, true, false},
		{"across the boundary of two inflated chunks", pdfWith(stream("/Filter /FlateDecode", deflated(t, padding[:len(padding)-4]+"<</S /JavaScript /JS (x)>>"))), maxPDFInflated, false, true},
		{"compressed, but nothing left of the budget", pdfWith(stream("/Filter /FlateDecode", deflated(t, "<</S /Launch>>"))), 0, false, false},
		{"a longer name", pdfWith(`4 0 obj << /JavaScriptStyle 1 /Launcher 2 >> endobj`), maxPDFInflated, false, false},
		{"a link, nothing run", pdfWith(`4 0 obj << /A << /S /URI /URI (https://example.org/) >> >> endobj`), maxPDFInflated, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			budget := tt.budget
			if launch, script := PDFActions(tt.pdf, &budget); launch != tt.wantLaunch || script != tt.wantScript {
				t.Errorf("PDFActions = %v, %v, want %v, %v", launch, script, tt.wantLaunch, tt.wantScript)
			}
		})
	}
}

// FuzzPDFActions: whatever the bytes, the inflate budget is never
// overspent, and an action found in the plain bytes is reported.
func FuzzPDFActions(f *testing.F) {
	f.Add(pdfWith(`1 0 obj << /OpenAction << /S /#4Aava#53cript /JS 5 0 R >> >> endobj`))
	f.Add(pdfWith(stream("/Filter /FlateDecode", deflated(f, "4 0 << /S /Launch /F (invoice.exe) >>"))))
	f.Fuzz(func(t *testing.T, data []byte) {
		budget := 1 << 16
		launch, js := PDFActions(data, &budget)
		if budget < 0 {
			t.Fatalf("budget overspent: %d", budget)
		}
		if hasPDFName(data, pdfLaunchKey) && !launch || hasPDFName(data, pdfJSKey) && !js {
			t.Fatalf("an action in the plain bytes not reported: launch %v, javascript %v", launch, js)
		}
	})
}

// TestManySmallStreamsAllocateLittle: a PDF of thousands of Flate
// streams of a few bytes each is read for links and actions with one
// decompressor and one chunk buffer, not a 32 KiB window and a 32 KiB
// buffer per stream (650 times the size of the PDF in allocations,
// 11 GiB for a 16 MB message in the parser and as much in the rules).
func TestManySmallStreamsAllocateLittle(t *testing.T) {
	objs := make([]string, 10_000)
	obj := stream("/Filter /FlateDecode", deflated(t, "BT (hello) Tj ET"))
	for i := range objs {
		objs[i] = obj
	}
	pdf := pdfWith(objs...)
	for _, tt := range []struct {
		name string
		read func(budget *int)
	}{
		{"pdfLinks", func(budget *int) { pdfLinks(pdf, maxPDFLinks, budget) }},
		{"PDFActions", func(budget *int) { PDFActions(pdf, budget) }},
	} {
		var before, after runtime.MemStats
		budget := maxPDFInflated
		runtime.ReadMemStats(&before)
		tt.read(&budget)
		runtime.ReadMemStats(&after)
		if used := maxPDFInflated - budget; used != len(objs)*len("BT (hello) Tj ET") {
			t.Errorf("%s inflated %d bytes, want every stream's", tt.name, used)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 && !raceEnabled {
			t.Errorf("%s allocated %d bytes for a PDF of %d", tt.name, got, len(pdf))
		}
	}
}

// TestManySmallPDFsAllocateLittle: the PDFs of a message share
// decompressors. A thousand text parts may each carry eight uuencoded
// PDFs of one tiny stream: a decompressor and a chunk buffer for each
// PDF allocated 650 MB in the parser and as much in the rules for 1 MB
// of mail.
func TestManySmallPDFsAllocateLittle(t *testing.T) {
	obj := stream("/Filter /FlateDecode", deflated(t, "BT (hello) Tj ET"))
	pdfs := make([][]byte, 2000)
	for i := range pdfs {
		pdfs[i] = pdfWith(obj)
	}
	for _, tt := range []struct {
		name string
		read func(pdf []byte, budget *int)
	}{
		{"pdfLinks", func(pdf []byte, budget *int) { pdfLinks(pdf, maxPDFLinks, budget) }},
		{"PDFActions", func(pdf []byte, budget *int) { PDFActions(pdf, budget) }},
	} {
		var before, after runtime.MemStats
		budget := maxPDFInflated
		runtime.ReadMemStats(&before)
		for _, pdf := range pdfs {
			tt.read(pdf, &budget)
		}
		runtime.ReadMemStats(&after)
		if used := maxPDFInflated - budget; used != len(pdfs)*len("BT (hello) Tj ET") {
			t.Errorf("%s inflated %d bytes, want every PDF's", tt.name, used)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 && !raceEnabled {
			t.Errorf("%s allocated %d bytes for %d PDFs", tt.name, got, len(pdfs))
		}
	}
}

func TestPDFText(t *testing.T) {
	for _, tc := range []struct {
		name string
		pdf  []byte
		want string
	}{
		{"uncompressed Tj", pdfWith(stream("/Length 60", "BT /F1 12 Tf 72 720 Td (Amount charged: USD 399.99) Tj 0 -16 Td (Call +1 808 555 0199) Tj ET")),
			"Amount charged: USD 399.99 Call +1 808 555 0199"},
		{"compressed, kerned TJ and escapes", pdfWith(stream("/Filter /FlateDecode", deflated(t, `BT [(If you did )-20(not auth)12(orize this)] TJ T* (payment \(call us\)) ' ET`))),
			"If you did not authorize this payment (call us)"},
		{"strings no operator shows", pdfWith(`<< /Title (Invoice) /Author (Accounts) >>`, stream("/Length 9", "[(a) (b)] 0 d")), ""},
		{"glyph numbers of a CMap font", pdfWith(stream("/Length 30", "BT (\x00\x12\x00\x05\x00\x33) Tj ET")), ""},
		{"arrays left open before a TJ", pdfWith(stream("/Length 40", "BT [[ [ [(Call )-5(now)] TJ [(x) ET")), "Call now"},
	} {
		budget := 1 << 20
		if got := PDFText(tc.pdf, 4096, &budget); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// BenchmarkPDFTextUnclosedArrays: a stream of '[' without a ']' costs a
// pass, not the 8 KiB search window at each (2 MiB: 218 ms before, 2.4 ms
// after).
func BenchmarkPDFTextUnclosedArrays(b *testing.B) {
	data := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("["), 2<<20)...)
	for b.Loop() {
		budget := 8 << 20
		PDFText(data, 64<<10, &budget)
	}
}

func FuzzPDFText(f *testing.F) {
	f.Add(pdfWith(stream("/Length 20", "BT (a) Tj [(b)-3(c)] TJ ET")))
	f.Add(pdfWith(stream("/Filter /FlateDecode", deflated(f, "(x) ' (y) \" [(z\\)] TJ"))))
	f.Fuzz(func(t *testing.T, data []byte) {
		budget := 1 << 20
		if s := PDFText(data, 256, &budget); len(s) > 256 || budget < 0 {
			t.Fatalf("%d bytes of text, budget %d", len(s), budget)
		}
	})
}
