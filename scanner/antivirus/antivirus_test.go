package antivirus

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/scanner"
)

// Fixtures are built in code: they stay small in the repository, and the
// EICAR string is never stored whole.

func peFile() []byte {
	b := make([]byte, 0x80)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3C:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	return b
}

func oleFile(withMacros bool) []byte {
	b := append([]byte{}, magicOLE...)
	b = append(b, make([]byte, 504)...)
	b = append(b, utf16le("Root Entry")...)
	if withMacros {
		b = append(b, utf16le("Macros")...)
		b = append(b, utf16le("_VBA_PROJECT")...)
	}
	return b
}

type member struct {
	name      string
	data      []byte
	encrypted bool
	extra     []byte
}

func mem(name string, data []byte) member    { return member{name: name, data: data} }
func locked(name string, data []byte) member { return member{name: name, data: data, encrypted: true} }

func zipOf(t testing.TB, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		fh := &zip.FileHeader{Name: m.name, Method: zip.Deflate, Extra: m.extra}
		if m.encrypted {
			fh.Flags |= 0x1
		}
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarOf is a tar of members (their encryption aside: tar has none).
func tarOf(t testing.TB, members ...member) []byte {
	t.Helper()
	files := make([]testenv.TarFile, len(members))
	for i, m := range members {
		files[i] = testenv.TarFile{Name: m.name, Data: m.data}
	}
	return testenv.Tar(t, files...)
}

// v7 turns a one-member tarOf archive into a V7 tar: no magic, no
// version, the header's checksum made again.
func v7(tarball []byte) []byte {
	b := bytes.Clone(tarball)
	clear(b[257:265])
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func b64(data []byte) string {
	s := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s + "\r\n")
	return b.String()
}

// yenc is data yEnc-encoded as name, one line, with its =ybegin and =yend
// lines.
func yenc(name string, data []byte) string {
	var enc []byte
	for _, b := range data {
		switch c := b + 42; c {
		case 0, '\n', '\r', '=':
			enc = append(enc, '=', c+64)
		default:
			enc = append(enc, c)
		}
	}
	return fmt.Sprintf("=ybegin line=128 size=%d name=%s\r\n%s\r\n=yend size=%[1]d\r\n", len(data), name, enc)
}

// jsBzip2 is "var x = 1;\n" as Python's bz2.compress writes it (Go writes
// no bzip2).
const jsBzip2 = "QlpoOTFBWSZTWfyyExIAAATZgAAQQAAgCiAAEUAgACIGmj1CDJiFhz2gF4u5IpwoSH5ZCYkA"

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// withAttachment is a multipart/mixed message with a text part and one
// base64 attachment.
func withAttachment(name, ctype string, data []byte) string {
	disp := "attachment"
	if name != "" {
		disp += fmt.Sprintf("; filename=\"%s\"", name)
	}
	return "From: a@example.org\r\nTo: b@example.net\r\nSubject: files\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n" +
		"--b1\r\nContent-Type: " + ctype + "\r\nContent-Disposition: " + disp + "\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		b64(data) + "--b1--\r\n"
}

// manyParams is n parameters to pad a field with.
func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "; x%d=1", i)
	}
	return b.String()
}

func newCheck(t testing.TB, mod func(*Config)) *Check {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func run(t testing.TB, c *Check, raw string) scanner.Result {
	t.Helper()
	res, err := c.Check(context.Background(), &scanner.Envelope{}, scanner.Parse([]byte(raw)))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return res
}

func symbolNames(r scanner.Result) []string {
	var names []string
	for _, s := range r.Symbols {
		names = append(names, s.Name)
	}
	return names
}

func TestCheck(t *testing.T) {
	eicarZip := func(t testing.TB) []byte { return zipOf(t, mem("readme.txt", []byte("hi")), mem("eicar.com", eicar)) }
	uuPDF := "From: a@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n" +
		"--b\r\nContent-Type: application/pdf; name=scan.pdf\r\nContent-Disposition: attachment; filename=scan.pdf\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n" +
		"begin 644 scan.pdf\r\n" +
		"M35H`````````````````````````````````````````````````````````\r\n" +
		"M````````````````````0````%!%````````````````````````````````\r\n" +
		"F````````````````````````````````````````````````````\r\n`\r\nend\r\n--b--\r\n"
	tests := []struct {
		name        string
		mod         func(*Config)
		raw         func(t testing.TB) string
		wantVirus   string
		wantReject  string // substring
		wantSymbols []string
	}{
		{
			name: "clean text",
			raw:  func(testing.TB) string { return "From: a@example.org\r\nSubject: hi\r\n\r\nHello there.\r\n" },
		},
		{
			name:      "EICAR in a plain part",
			raw:       func(testing.TB) string { return "Subject: t\r\n\r\n" + string(eicar) + "\r\n" },
			wantVirus: VirusEICAR,
		},
		{
			name:      "EICAR in a base64 attachment",
			raw:       func(testing.TB) string { return withAttachment("test.txt", "text/plain", eicar) },
			wantVirus: VirusEICAR,
		},
		{
			name:      "EICAR in a zip",
			raw:       func(t testing.TB) string { return withAttachment("files.zip", "application/zip", eicarZip(t)) },
			wantVirus: VirusEICAR,
		},
		{
			name: "EICAR in a zip in a zip",
			raw: func(t testing.TB) string {
				return withAttachment("outer.zip", "application/zip", zipOf(t, mem("inner.zip", eicarZip(t))))
			},
			wantVirus: VirusEICAR,
		},
		{
			name: "EICAR nested past zip_max_depth is reported, not scanned",
			mod:  func(c *Config) { c.ZipMaxDepth = 1 },
			raw: func(t testing.TB) string {
				return withAttachment("outer.zip", "application/zip", zipOf(t, mem("inner.zip", eicarZip(t))))
			},
			wantSymbols: []string{SymbolArchiveLimit},
		},
		{
			name: "EICAR in an attached message",
			raw: func(testing.TB) string {
				inner := "Subject: inner\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(eicar)
				return "Subject: fwd\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n" + inner + "--x--\r\n"
			},
			wantVirus: VirusEICAR,
		},
		{
			// Thunderbird reads an attached message as it is, whatever its
			// transfer encoding says (its MimeMessage has no decoder).
			name: "EICAR in an attached message marked base64 but sent in clear",
			raw: func(testing.TB) string {
				inner := "Subject: inner\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(eicar)
				return "Subject: fwd\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n" +
					"Content-Transfer-Encoding: base64\r\n\r\n" + inner + "--x--\r\n"
			},
			wantVirus: VirusEICAR,
		},
		{
			// Other readers decode one that is encoded: both are read.
			name: "EICAR in an attached message encoded in base64",
			raw: func(testing.TB) string {
				inner := "Subject: inner\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(eicar)
				return "Subject: fwd\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n" +
					"Content-Transfer-Encoding: base64\r\n\r\n" + b64([]byte(inner)) + "--x--\r\n"
			},
			wantVirus: VirusEICAR,
		},
		{
			// RFC 2046 5.1.5: a digest's part without a Content-Type is
			// message/rfc822, as Thunderbird and Python's email read it.
			name: "EICAR in an untyped message of a digest",
			raw: func(testing.TB) string {
				inner := "Subject: inner\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(eicar)
				return "Subject: digest\r\nContent-Type: multipart/digest; boundary=x\r\n\r\n--x\r\n\r\n" + inner + "--x--\r\n"
			},
			wantVirus: VirusEICAR,
		},
		{
			// Thunderbird passes over a line of an attached message's
			// header that is no field (an mbox "From " line among them)
			// and shows the message and its attachments.
			name: "EICAR in an attached message whose header has a line that is no field",
			raw: func(testing.TB) string {
				inner := "Subject: inner\r\njunk\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(eicar)
				return "Subject: fwd\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n" + inner + "--x--\r\n"
			},
			wantVirus: VirusEICAR,
		},
		{
			name: "EICAR in an attached message saved with its mbox From line",
			raw: func(testing.TB) string {
				inner := "From a@example.org Mon Jan  1 00:00:00 2024\r\nSubject: inner\r\nContent-Type: application/octet-stream\r\n" +
					"Content-Transfer-Encoding: base64\r\n\r\n" + b64(eicar)
				return "Subject: fwd\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n" + inner + "--x--\r\n"
			},
			wantVirus: VirusEICAR,
		},
		{
			// Thunderbird shows message/news as it shows message/rfc822.
			name: "EICAR in an attached message typed message/news",
			raw: func(testing.TB) string {
				inner := "Subject: inner\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(eicar)
				return "Subject: fwd\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/news\r\n\r\n" + inner + "--x--\r\n"
			},
			wantVirus: VirusEICAR,
		},
		{
			// Readers find a zip from its end: bytes before it do not
			// stop the recipient opening it, nor may they stop the scan.
			name: "executable in a zip behind prepended bytes",
			raw: func(t testing.TB) string {
				return withAttachment("invoice.zip", "application/zip", append([]byte("junk"), zipOf(t, mem("setup.exe", peFile()))...))
			},
			wantReject:  "setup.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "EICAR in a zip appended to a PDF",
			raw: func(t testing.TB) string {
				return withAttachment("invoice.pdf", "application/pdf", append([]byte("%PDF-1.4\n"), eicarZip(t)...))
			},
			wantVirus: VirusEICAR,
		},
		{
			name: "zip bomb by ratio",
			raw: func(t testing.TB) string {
				return withAttachment("logs.zip", "application/zip", zipOf(t, mem("zeros.bin", make([]byte, 8<<20))))
			},
			wantVirus: VirusZipBomb,
		},
		{
			// RFC 2045 6.8: characters outside the base64 alphabet are
			// ignored, as mail readers ignore them; stopping at one left
			// the zip without its central directory, its members unread.
			name: "EICAR in a zip whose base64 has a stray character",
			raw: func(t testing.TB) string {
				z := eicarZip(t)
				raw := withAttachment("files.zip", "application/zip", z)
				line := b64(z)[:76]
				return strings.Replace(raw, line, line[:40]+"!"+line[40:], 1)
			},
			wantVirus: VirusEICAR,
		},
		{
			// Thunderbird decodes base64 four characters at a time and
			// goes on past a padded group; encoding/base64 stopped at
			// the first, so a zip encoded as one padded byte and the rest
			// was a "P" to the scanner and an archive to the recipient.
			name: "executable in a zip whose base64 is padded after its first byte",
			raw: func(t testing.TB) string {
				z := zipOf(t, mem("setup.exe", peFile()))
				return strings.Replace(withAttachment("invoice.zip", "application/zip", z), b64(z), b64(z[:1])+b64(z[1:]), 1)
			},
			wantReject:  "setup.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// Thunderbird and Outlook show an opaque-signed message's
			// content, attachments and all, whatever its signature.
			name: "executable in a zip in an opaque-signed S/MIME message",
			raw: func(t testing.TB) string {
				return testenv.OpaqueSigned(withAttachment("invoice.zip", "application/zip", zipOf(t, mem("setup.exe", peFile()))), false)
			},
			wantReject:  "setup.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "EICAR in an opaque-signed S/MIME message in BER",
			raw: func(t testing.TB) string {
				return testenv.OpaqueSigned(withAttachment("files.zip", "application/zip", zipOf(t, mem("eicar.com", eicar))), true)
			},
			wantVirus: VirusEICAR,
		},
		{
			// Windows 11 opens RAR; the engine cannot unpack it, but RAR
			// keeps member names in plain headers (archdir's tests build
			// such archives field by field).
			name: "executable in a RAR, judged by its name",
			raw: func(testing.TB) string {
				rar := "Rar!\x1a\a\x00\x00\x00s\x00\x00\r\x00\x00\x00\x00\x00\x00\x00\x00\x00t\x00\x803\x00\x06\x00\x00\x00\x06\x00\x00\x00\x02" +
					"\x01\x02\x03\x04\x05\x06\a\b\x1d0\x13\x00 \x00\x00\x00invoice\\invoice.exepacked\x00\x00{\x00@\a\x00"
				return withAttachment("invoice.rar", "application/vnd.rar", []byte(rar))
			},
			wantReject:  "invoice.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// The same for 7z, whose header archdir reads (decoding it
			// when 7-Zip compressed it).
			name: "executable in a 7z, judged by its name",
			raw: func(testing.TB) string {
				sz := "7z\xbc\xaf'\x1c\x00\x04\x00\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x007\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00packed" +
					"\x01\x04\x06\x00\x01\t\x06\x00\a\v\x01\x00\x01\x01\x00\f\x06\x00\b\r\x01\t\x00\x00\x05\x01\x11\x19\x00" +
					"i\x00n\x00v\x00o\x00i\x00c\x00e\x00.\x00e\x00x\x00e\x00\x00\x00\x00\x00"
				return withAttachment("invoice.7z", "application/x-7z-compressed", []byte(sz))
			},
			wantReject:  "invoice.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "executable in a .gz, named by the gzip header",
			raw: func(t testing.TB) string {
				return withAttachment("invoice.pdf.gz", "application/gzip", testenv.Gzip(t, "invoice.exe", peFile()))
			},
			wantReject:  "invoice.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script in a .tgz",
			raw: func(t testing.TB) string {
				return withAttachment("docs.tgz", "application/x-gtar", testenv.Gzip(t, "", tarOf(t, mem("docs/readme.txt", []byte("hi")), mem("docs/open.js", []byte("WScript.Shell")))))
			},
			wantReject:  "docs/open.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// Windows 11 opens .bz2 and .tar.bz2 too (libarchive).
			name: "script in a .bz2",
			raw: func(t testing.TB) string {
				return withAttachment("invoice.js.bz2", "application/x-bzip2", testenv.Base64(t, jsBzip2))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// Its decoder's 3.6 MB of tables count as expanded bytes: a
			// thousand tiny .bz2 members cost 3.6 GB otherwise.
			name: "bzip2 tables past the expansion budget",
			mod:  func(c *Config) { c.ZipMaxExpanded = 1 << 20 },
			raw: func(t testing.TB) string {
				return withAttachment("invoice.js.bz2", "application/x-bzip2", testenv.Base64(t, jsBzip2))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolArchiveLimit, SymbolBlockedType},
		},
		{
			name: "executable in a .tbz2",
			raw: func(t testing.TB) string {
				return withAttachment("invoice.tbz2", "application/x-bzip2", testenv.Base64(t, "QlpoOTFBWSZTWSq82LkAAHJfgMyAQAFngAACAJBiAF5ACAggAFRCanpDCM1MD1QSSINBkMIyYnAchB3kCESasYGu7ZoEMDFeXpPk4RPgyT2DTe57BbO0N5AZF30EgZmRfi7kinChIFV5sXI="))
			},
			wantReject:  "setup.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// Windows 11 opens .xz, .txz and .tar.xz too (libarchive).
			name: "EICAR in a .xz",
			raw: func(t testing.TB) string {
				return withAttachment("files.xz", "application/x-xz", testenv.XZ(t, eicar, 0))
			},
			wantVirus: VirusEICAR,
		},
		{
			// Its 64 MiB dictionary is not allocated for 11 bytes.
			name: "script in a .xz written by xz -9",
			raw: func(t testing.TB) string {
				return withAttachment("invoice.js.xz", "application/x-xz", testenv.Base64(t, testenv.JSXZ))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "executable in a .txz of two streams, the second of many blocks",
			raw: func(t testing.TB) string {
				txz := append(testenv.XZ(t, nil, 0), testenv.XZ(t, tarOf(t, mem("readme.txt", randomBytes(3000)), mem("setup.exe", peFile())), 1024)...)
				return withAttachment("invoice.txz", "application/x-xz", txz)
			},
			wantReject:  "setup.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// xz -T2 --block-size=4096: three blocks, their sizes in
			// their headers.
			name: "executable in a .tar.xz written by xz in blocks",
			raw: func(t testing.TB) string {
				return withAttachment("invoice.tar.xz", "application/x-xz", testenv.Base64(t, "/Td6WFoAAATm1rRGA8BrgCAhARYAAAAA3ibwVuAP/wBjXQA5mUrwMZRl6terfpodUvoqr8G3zSOI1qq6lilYkUDeKnPQyoqEpML8dD03ijA3A2nt+CChVo29e34c3ezrNz5Kjfr16lh1i5Jqrl+kDIWXb17+yzqAHFdhKTI11e29x0h5uwAAAOz4qSZshGOqA8AhgCAhARYAAAAAt7Fo3+AP/wAZXQAAb/3//6O3/0c+SBVyOWFRuJIo5qOEnilGAAAAAKXw6iWU09MmA8AZgBAhARYAAAAABiCBIeAH/wARXQAAb/3//6O3/0c+SBVwlKlgAAAAAABH4yckGGj7OAADgwGAIDmAIDGAECj0xFUUFzswAwAAAAAEWVo="))
			},
			wantReject:  "setup.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// xz --x86: a BCJ filter before LZMA2, which xz and 7-Zip
			// read and the engine does not.
			name: "a .xz with a BCJ filter is reported unscanned",
			raw: func(t testing.TB) string {
				return withAttachment("invoice.xz", "application/x-xz", testenv.Base64(t, "/Td6WFoAAATm1rRGAgEEACEBFgANhjUfAQAKdmFyIHggPSAxOwoAAN/Yx+2UB9O/AAEjC8Ib/QkftvN9AQAAAAAEWVo="))
			},
			wantSymbols: []string{SymbolArchiveLimit},
		},
		{
			// A decoder's dictionary and tables count as expanded bytes.
			name: "xz dictionary past the expansion budget",
			mod:  func(c *Config) { c.ZipMaxExpanded = 16 << 10 },
			raw: func(t testing.TB) string {
				return withAttachment("invoice.js.xz", "application/x-xz", testenv.Base64(t, testenv.JSXZ))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolArchiveLimit, SymbolBlockedType},
		},
		{
			// 150 KB of numbers twice, in one LZMA2 chunk, with 256 KiB
			// to expand: the block reaches back further than the
			// dictionary the engine gives it (half of what is left to
			// expand), not than the 8 MiB it declares, with which the
			// recipient's xz reads it whole.
			name: "an xz block past the dictionary it was given is reported unscanned",
			mod:  func(c *Config) { c.ZipMaxExpanded = 256 << 10 },
			raw: func(t testing.TB) string {
				var numbers []byte
				for i := 0; len(numbers) < 150<<10; i++ {
					numbers = fmt.Appendf(numbers, "%08d\n", i*7919)
				}
				return withAttachment("numbers.txt.xz", "application/x-xz", testenv.XZ(t, append(numbers, numbers...), 0))
			},
			wantSymbols: []string{SymbolArchiveLimit},
		},
		{
			// Windows 11 opens .zst, .tzst and .tar.zst too (libarchive).
			name: "EICAR in a .zst",
			raw: func(t testing.TB) string {
				return withAttachment("files.zst", "application/zstd", testenv.Zstd(t, eicar))
			},
			wantVirus: VirusEICAR,
		},
		{
			name: "executable in a .tar.zst written by zstd -19",
			raw: func(t testing.TB) string {
				return withAttachment("invoice.tar.zst", "application/zstd", testenv.Base64(t, testenv.ExeTarZstd19))
			},
			wantReject:  "setup.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// The second frame's window (4 KiB) is the larger: the
			// decoder is paid for it, and reads it.
			name: "executable in the second frame of a .tzst",
			raw: func(t testing.TB) string {
				tzst := append(testenv.ZstdAll(t, nil), testenv.Zstd(t, tarOf(t, mem("setup.exe", peFile())))...)
				return withAttachment("invoice.tzst", "application/zstd", tzst)
			},
			wantReject:  "setup.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// A decoder's window and buffers count as expanded bytes.
			name: "zstd window past the expansion budget",
			mod:  func(c *Config) { c.ZipMaxExpanded = 1 << 20 },
			raw: func(t testing.TB) string {
				return withAttachment("invoice.js.zst", "application/zstd", testenv.Base64(t, testenv.JSZstd))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolArchiveLimit, SymbolBlockedType},
		},
		{
			name: "EICAR in a tar",
			raw: func(t testing.TB) string {
				return withAttachment("files.tar", "application/x-tar", tarOf(t, mem("eicar.com", eicar)))
			},
			wantVirus: VirusEICAR,
		},
		{
			name: "gzip bomb by ratio",
			raw: func(t testing.TB) string {
				return withAttachment("logs.gz", "application/gzip", testenv.Gzip(t, "logs.txt", make([]byte, 8<<20)))
			},
			wantVirus: VirusZipBomb,
		},
		{
			name: "expansion budget",
			mod:  func(c *Config) { c.ZipMaxExpanded = 1000 },
			raw: func(t testing.TB) string {
				return withAttachment("data.zip", "application/zip", zipOf(t, mem("random.bin", randomBytes(5000))))
			},
			wantSymbols: []string{SymbolArchiveLimit},
		},
		{
			name: "too many members",
			mod:  func(c *Config) { c.ZipMaxFiles = 10 },
			raw: func(t testing.TB) string {
				var ms []member
				for i := range 50 {
					ms = append(ms, mem(fmt.Sprintf("f%d.txt", i), []byte("x")))
				}
				return withAttachment("many.zip", "application/zip", zipOf(t, ms...))
			},
			wantSymbols: []string{SymbolArchiveLimit},
		},
		{
			name: "encrypted member",
			raw: func(t testing.TB) string {
				return withAttachment("secret.zip", "application/zip", zipOf(t, locked("doc.txt", []byte("xx"))))
			},
			wantSymbols: []string{SymbolEncrypted},
		},
		{
			// Windows Explorer and 7-Zip extract Deflate64 (method 9),
			// archive/zip does not: what is inside went unscanned, and a
			// member that does not decode is only AV_ARCHIVE_BROKEN.
			name: "executable in a zip in a Deflate64 member is reported unscanned",
			raw: func(t testing.TB) string {
				var buf bytes.Buffer
				zw := zip.NewWriter(&buf)
				zw.RegisterCompressor(9, func(w io.Writer) (io.WriteCloser, error) { return nopWriteCloser{w}, nil })
				w, err := zw.CreateHeader(&zip.FileHeader{Name: "inner.zip", Method: 9})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write(zipOf(t, mem("setup.exe", peFile()))); err != nil || zw.Close() != nil {
					t.Fatal(err)
				}
				return withAttachment("invoice.zip", "application/zip", buf.Bytes())
			},
			wantSymbols: []string{SymbolArchiveLimit},
		},
		{
			name: "encrypted executable is blocked by its name",
			raw: func(t testing.TB) string {
				return withAttachment("secret.zip", "application/zip", zipOf(t, locked("setup.exe", []byte("xx"))))
			},
			wantReject:  "setup.exe",
			wantSymbols: []string{SymbolBlockedType, SymbolEncrypted},
		},
		{
			name: "double extension",
			raw: func(testing.TB) string {
				return withAttachment("invoice.pdf.exe", "application/pdf", []byte("not really"))
			},
			wantReject:  "invoice.pdf.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "double extension hidden by spaces, name RFC 2047 encoded",
			raw: func(testing.TB) string {
				enc := "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte("Rechnung.pdf     .scr")) + "?="
				return withAttachment(enc, "application/octet-stream", []byte("x"))
			},
			wantReject:  "Rechnung.pdf",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name:        "PE named as a PDF: the name lies",
			raw:         func(testing.TB) string { return withAttachment("invoice.pdf", "application/pdf", peFile()) },
			wantReject:  "executable",
			wantSymbols: []string{SymbolBlockedType, SymbolNameMismatch},
		},
		{
			name:        "PE without a name",
			raw:         func(testing.TB) string { return withAttachment("", "application/octet-stream", peFile()) },
			wantReject:  "part 2",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "PE inside a zip",
			raw: func(t testing.TB) string {
				return withAttachment("photos.zip", "application/zip", zipOf(t, mem("photo.jpg", peFile())))
			},
			wantReject:  "photo.jpg",
			wantSymbols: []string{SymbolBlockedType, SymbolNameMismatch},
		},
		{
			name:        "PE passes when executables are not blocked, but the lie still counts",
			mod:         func(c *Config) { c.BlockedTypes = nil },
			raw:         func(testing.TB) string { return withAttachment("invoice.pdf", "application/pdf", peFile()) },
			wantSymbols: []string{SymbolNameMismatch},
		},
		{
			name:        "OLE document with a VBA project",
			raw:         func(testing.TB) string { return withAttachment("report.doc", "application/msword", oleFile(true)) },
			wantReject:  "office macro",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "OLE document without macros",
			raw:  func(testing.TB) string { return withAttachment("report.doc", "application/msword", oleFile(false)) },
		},
		{
			name: "OOXML with vbaProject.bin",
			raw: func(t testing.TB) string {
				doc := zipOf(t, mem("[Content_Types].xml", []byte("<Types/>")), mem("word/document.xml", []byte("<w/>")), mem("word/vbaProject.bin", oleFile(true)))
				return withAttachment("report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", doc)
			},
			wantReject:  "office macro",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "OOXML without macros",
			raw: func(t testing.TB) string {
				doc := zipOf(t, mem("[Content_Types].xml", []byte("<Types/>")), mem("word/document.xml", []byte("<w/>")))
				return withAttachment("report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", doc)
			},
		},
		{
			name:        "script by name",
			raw:         func(testing.TB) string { return withAttachment("invoice.js", "text/plain", []byte("var x = 1;")) },
			wantReject:  "script",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// 7-Zip, WinRAR and libarchive extract a member under the
			// name of its Unicode Path field, archive/zip reads the other.
			name: "script in a zip named by its Unicode Path field",
			raw: func(t testing.TB) string {
				z := zipOf(t, member{name: "invoice.txt", data: []byte("var x = 1;"), extra: testenv.UnicodePathExtra("invoice.txt", "invoice.js")})
				return withAttachment("invoice.zip", "application/zip", z)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// 7-Zip reads the field in the local header of a member the
			// central directory does not list, as in the directory.
			name: "script in a zip with no central directory named by its Unicode Path field",
			raw: func(t testing.TB) string {
				z := zipOf(t, member{name: "invoice.txt", data: []byte("var x = 1;"), extra: testenv.UnicodePathExtra("invoice.txt", "invoice.js")})
				return withAttachment("invoice.zip", "application/zip", z[:bytes.Index(z, []byte("PK\x01\x02"))])
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolArchiveBroken, SymbolBlockedType},
		},
		{
			name: "a Unicode Path field for another name is not read",
			raw: func(t testing.TB) string {
				z := zipOf(t, member{name: "invoice.txt", data: []byte("var x = 1;"), extra: testenv.UnicodePathExtra("other.txt", "invoice.js")})
				return withAttachment("invoice.zip", "application/zip", z)
			},
		},
		{
			// Thunderbird shows a uuencoded block as an attachment.
			name: "executable uuencoded in the text",
			raw: func(testing.TB) string {
				return "From: a@example.org\r\nSubject: t\r\n\r\nSee below.\r\n\r\nbegin 644 invoice.exe\r\n" +
					"M35H`````````````````````````````````````````````````````````\r\n" +
					"M````````````````````0````%!%````````````````````````````````\r\n" +
					"F````````````````````````````````````````````````````\r\n`\r\nend\r\n"
			},
			wantReject:  "invoice.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// Thunderbird reads an x-sun-attachment part as Sun MailTool's
			// attachments ("----------" between them) and uudecodes one
			// whose X-Sun-Encoding-Info is uuencode.
			name: "executable uuencoded in a Sun attachment",
			raw: func(testing.TB) string {
				return "From: a@example.org\r\nSubject: t\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
					"Content-Type: x-sun-attachment\r\n\r\n----------\r\nX-Sun-Data-Type: default-app\r\n" +
					"X-Sun-Data-Name: invoice.exe\r\nX-Sun-Encoding-Info: uuencode\r\n\r\nbegin 644 invoice.exe\r\n" +
					"M35H`````````````````````````````````````````````````````````\r\n" +
					"M````````````````````0````%!%````````````````````````````````\r\n" +
					"F````````````````````````````````````````````````````\r\n`\r\nend\r\n--b--\r\n"
			},
			wantReject:  "invoice.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// Thunderbird takes "begin", a mode and a blank for a uuencoded
			// file whatever follows, no name at all too.
			name: "EICAR uuencoded without a name in the text",
			raw: func(testing.TB) string {
				return "From: a@example.org\r\nSubject: t\r\n\r\nSee below.\r\n\r\nbegin 644 \r\n" +
					"M6#5/(5`E0$%06S1<4%I8-30H4%XI-T-#*3=])$5)0T%2+5-404Y$05)$+4%.\r\n" +
					"75$E625)54RU415-4+49)3$4A)$@K2\"H`\r\n`\r\nend\r\n"
			},
			wantVirus: VirusEICAR,
		},
		{
			// Readers decode a part whose transfer encoding is uuencode;
			// go-message leaves it encoded, so its content went unseen.
			name:        "executable in a part with Content-Transfer-Encoding x-uuencode",
			raw:         func(testing.TB) string { return uuPDF },
			wantReject:  "executable",
			wantSymbols: []string{SymbolBlockedType, SymbolNameMismatch},
		},
		{
			// Thunderbird decodes "uue" as uuencode and "x-yencode" as
			// yEnc too (mimeleaf.cpp); go-message knows neither.
			name:        "executable in a part with Content-Transfer-Encoding uue",
			raw:         func(testing.TB) string { return strings.Replace(uuPDF, "x-uuencode", "uue", 1) },
			wantReject:  "executable",
			wantSymbols: []string{SymbolBlockedType, SymbolNameMismatch},
		},
		{
			name: "executable in a part with Content-Transfer-Encoding x-yencode",
			raw: func(testing.TB) string {
				return "From: a@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
					"--b\r\nContent-Type: application/pdf; name=scan.pdf\r\nContent-Disposition: attachment; filename=scan.pdf\r\nContent-Transfer-Encoding: x-yencode\r\n\r\n" +
					yenc("scan.pdf", peFile()) + "--b--\r\n"
			},
			wantReject:  "executable",
			wantSymbols: []string{SymbolBlockedType, SymbolNameMismatch},
		},
		{
			name: "executable in a part with Content-Transfer-Encoding x-uuencode and a parameter",
			raw: func(testing.TB) string {
				return strings.Replace(uuPDF, "Content-Transfer-Encoding: x-uuencode", "Content-Transfer-Encoding: x-uuencode; mode=644", 1)
			},
			wantReject:  "executable",
			wantSymbols: []string{SymbolBlockedType, SymbolNameMismatch},
		},
		{
			// Thunderbird shows a yEnc-encoded block in untyped text (no
			// Content-Type) as an attachment too.
			name: "executable yEnc-encoded in the text",
			raw: func(testing.TB) string {
				return "From: a@example.org\r\nSubject: t\r\n\r\nSee below.\r\n" + yenc("invoice.exe", peFile())
			},
			wantReject:  "invoice.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		// Thunderbird shows a BinHex block in untyped text as an
		// attachment too, and decodes an application/mac-binhex40 part
		// (RFC 1741) to open it: the file inside is judged as if attached.
		{
			name: "executable BinHex-encoded in the text",
			raw: func(testing.TB) string {
				return "From: a@example.org\r\nSubject: t\r\n\r\nSee below.\r\n\r\n" + testenv.BinHex("invoice.exe", peFile())
			},
			wantReject:  "invoice.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name:      "EICAR BinHex-encoded in the text",
			raw:       func(testing.TB) string { return "Subject: t\r\n\r\n" + testenv.BinHex("readme.txt", eicar) },
			wantVirus: VirusEICAR,
		},
		{
			name: "executable in an application/mac-binhex40 part",
			raw: func(testing.TB) string {
				return withAttachment("invoice.hqx", "application/mac-binhex40", []byte(testenv.BinHex("invoice.exe", peFile())))
			},
			wantReject:  "invoice.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "EICAR in an application/mac-binhex40 part",
			raw: func(testing.TB) string {
				return withAttachment("readme.hqx", "application/mac-binhex40", []byte(testenv.BinHex("readme.txt", eicar)))
			},
			wantVirus: VirusEICAR,
		},
		// Thunderbird reads a Content-Type's type as its first token, up
		// to a ';', a ',' or a blank, and its parameters from after the
		// first ';' or ','; mime.ParseMediaType refuses the field.
		{
			name: "executable behind a comment after the multipart's type",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.exe", "application/octet-stream", peFile()),
					`multipart/mixed; boundary="b1"`, `multipart/mixed (mail); boundary="b1"`, 1)
			},
			wantReject:  "invoice.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "EICAR behind a comma before the boundary",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("readme.txt", "text/plain", eicar),
					`multipart/mixed; boundary="b1"`, `multipart/mixed, boundary="b1"`, 1)
			},
			wantVirus: VirusEICAR,
		},
		// Thunderbird's mime_create reads a type as what follows its last
		// '?' (for "=?windows-1252?q?application/pdf", bug 659355).
		{
			name: "EICAR in a multipart typed after a question mark",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("readme.txt", "text/plain", eicar),
					`multipart/mixed; boundary="b1"`, `text/plain?multipart/mixed; boundary="b1"`, 1)
			},
			wantVirus: VirusEICAR,
		},
		{
			name: "EICAR in a multipart typed as an encoded word",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("readme.txt", "text/plain", eicar),
					`multipart/mixed; boundary="b1"`, `=?us-ascii?q?multipart/mixed; boundary="b1"`, 1)
			},
			wantVirus: VirusEICAR,
		},
		// An empty boundary (boundary="") makes "--" the delimiter to
		// Thunderbird (MimeMultipart_check_boundary compares the line
		// with "--" and the empty string) and to Python's email.
		{
			name: "EICAR behind an empty boundary",
			raw: func(testing.TB) string {
				return strings.ReplaceAll(withAttachment("readme.txt", "text/plain", eicar), `b1`, ``)
			},
			wantVirus: VirusEICAR,
		},
		// RFC 2046 5.1.1 ends no boundary in a space; Python's email
		// strips one, and delimits with "--b1" where the field says
		// boundary="b1 ".
		{
			name: "EICAR behind a boundary ending in a space",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("readme.txt", "text/plain", eicar), `boundary="b1"`, `boundary="b1 "`, 1)
			},
			wantVirus: VirusEICAR,
		},
		// A line that starts with the delimiter and goes on ("--b1-x",
		// "--b1 x") is text to Thunderbird and Python's email, which show
		// the parts after it.
		{
			name: "script after a line that starts like the delimiter",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;")),
					"See attached.\r\n", "See attached.\r\n--b1-x\r\n", 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script after a line that starts like the delimiter and a blank",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;")),
					"See attached.\r\n", "See attached.\r\n--b1 x\r\n", 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		// A close delimiter is "--b1--" and blanks to the line's end (RFC
		// 2046 5.1.1): "--b1--x" is text to Thunderbird and Python's
		// email, which show the parts after it.
		{
			name: "EICAR after a line that starts like the close delimiter",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("readme.txt", "text/plain", eicar),
					"See attached.\r\n", "See attached.\r\n--b1--x\r\n", 1)
			},
			wantVirus: VirusEICAR,
		},
		// Thunderbird strips every ASCII space (isspace: a form feed, a
		// vertical tab too) from a line's end before comparing it with
		// the delimiter: "--b1\f" is a delimiter to the reader.
		{
			name: "EICAR after delimiters padded with a form feed",
			raw: func(testing.TB) string {
				return strings.ReplaceAll(withAttachment("readme.txt", "text/plain", eicar), "--b1\r\n", "--b1\f\r\n")
			},
			wantVirus: VirusEICAR,
		},
		{
			name: "EICAR after delimiters padded with a vertical tab",
			raw: func(testing.TB) string {
				return strings.ReplaceAll(withAttachment("readme.txt", "text/plain", eicar), "--b1\r\n", "--b1\v\r\n")
			},
			wantVirus: VirusEICAR,
		},
		// go-message read the multipart's lines through a 4 KiB buffer
		// and gave up on a longer one; Thunderbird reads lines of any
		// length, and shows the parts after it.
		{
			name: "script after a preamble line over 4 KiB",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;")),
					"\r\n\r\n--b1\r\n", "\r\n\r\n"+strings.Repeat("x", 5000)+"\r\n--b1\r\n", 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script after a delimiter padded past 4 KiB",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;")),
					"See attached.\r\n--b1\r\n", "See attached.\r\n--b1"+strings.Repeat(" ", 5000)+"\r\n", 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script after a line of text that starts as a delimiter padded past 4 KiB",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;")),
					"See attached.\r\n", "See attached.\r\n--b1"+strings.Repeat(" ", 5000)+"x\r\n", 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script behind a boundary over 4 KiB",
			raw: func(testing.TB) string {
				return strings.ReplaceAll(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;")),
					"b1", strings.Repeat("b", 5000))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		// Thunderbird passes over a line in a part's header that is no
		// field, and shows the parts after it.
		{
			name: "script after a part whose header has a line that is no field",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;")),
					"Content-Type: text/plain\r\n\r\nSee attached.", "Content-Type: text/plain\r\nSee attached.", 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script named after a line that is no field",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;")),
					"--b1\r\nContent-Type: application/octet-stream", "--b1\r\nX-Junk\r\nContent-Type: application/octet-stream", 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		// go-message reads the first of a repeated field; mail clients
		// differ in which they read.
		{
			name: "script named by a second Content-Disposition",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.txt", "application/octet-stream", []byte("var x = 1;")),
					"Content-Transfer-Encoding: base64\r\n\r\n", "Content-Disposition: attachment; filename=\"invoice.js\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script named by a second Content-Type",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("", "text/plain; name=\"notes.txt\"", []byte("var x = 1;")),
					"Content-Transfer-Encoding: base64\r\n\r\n", "Content-Type: application/octet-stream; name*=utf-8''invoice.js\r\nContent-Transfer-Encoding: base64\r\n\r\n", 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script named up to a NUL",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.txt", "application/octet-stream", []byte("var x = 1;")),
					`filename="invoice.txt"`, `filename*=utf-8''invoice.js%00.txt`, 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script in a zip named up to a NUL",
			raw: func(t testing.TB) string {
				return withAttachment("x.zip", "application/zip", zipOf(t, mem("invoice.js\x00.txt", []byte("var x = 1;"))))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		// Thunderbird reads a Content-Transfer-Encoding's first token, up
		// to a ';', a ',' or an ASCII space (isspace: a form feed too).
		{
			name: "executable in a zip behind a comment after base64",
			raw: func(t testing.TB) string {
				return strings.Replace(withAttachment("invoice.zip", "application/zip", zipOf(t, mem("invoice.exe", peFile()))),
					"Content-Transfer-Encoding: base64\r\n", "Content-Transfer-Encoding: base64 (mail)\r\n", 1)
			},
			wantReject:  "invoice.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "executable in a zip behind a semicolon after base64",
			raw: func(t testing.TB) string {
				return strings.Replace(withAttachment("invoice.zip", "application/zip", zipOf(t, mem("invoice.exe", peFile()))),
					"Content-Transfer-Encoding: base64\r\n", "Content-Transfer-Encoding: base64;\r\n", 1)
			},
			wantReject:  "invoice.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "executable in a zip behind a comma after base64",
			raw: func(t testing.TB) string {
				return strings.Replace(withAttachment("invoice.zip", "application/zip", zipOf(t, mem("invoice.exe", peFile()))),
					"Content-Transfer-Encoding: base64\r\n", "Content-Transfer-Encoding: base64,x\r\n", 1)
			},
			wantReject:  "invoice.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "EICAR behind a form feed around base64",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("readme.txt", "text/plain", eicar),
					"Content-Transfer-Encoding: base64\r\n", "Content-Transfer-Encoding: \fbase64\fx\r\n", 1)
			},
			wantVirus: VirusEICAR,
		},
		{
			name: "script in a V7 tar",
			raw: func(t testing.TB) string {
				return withAttachment("files.tar", "application/x-tar", v7(tarOf(t, mem("invoice.js", []byte("var x = 1;")))))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script in a saved message attached as application/octet-stream",
			raw: func(testing.TB) string {
				return withAttachment("forwarded.eml", "application/octet-stream", []byte(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;"))))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "a file named .eml that is no message",
			raw: func(testing.TB) string {
				return withAttachment("notes.eml", "application/octet-stream", []byte("\x00\x01 not a header\r\n"))
			},
		},
		// 7-Zip and WinRAR read a zip from its local headers when its
		// central directory is missing, and show the first of two zips
		// put end to end; archive/zip and Explorer read the last.
		{
			name: "executable in the first of two zips put end to end",
			raw: func(t testing.TB) string {
				return withAttachment("invoice.zip", "application/zip",
					append(zipOf(t, mem("invoice.pdf", peFile())), zipOf(t, mem("readme.txt", []byte("hi")))...))
			},
			wantReject:  "executable",
			wantSymbols: []string{SymbolBlockedType, SymbolNameMismatch},
		},
		{
			name: "executable in the first of two zips put end to end, named as the second's member",
			raw: func(t testing.TB) string {
				return withAttachment("invoice.zip", "application/zip",
					append(zipOf(t, mem("invoice.pdf", peFile())), zipOf(t, mem("invoice.pdf", []byte("%PDF-1.7\n")))...))
			},
			wantReject:  "executable",
			wantSymbols: []string{SymbolBlockedType, SymbolNameMismatch},
		},
		{
			name: "script in a zip with no central directory",
			raw: func(t testing.TB) string {
				z := zipOf(t, mem("invoice.js", []byte("var x = 1;")))
				return withAttachment("invoice.zip", "application/zip", z[:bytes.Index(z, []byte("PK\x01\x02"))])
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolArchiveBroken, SymbolBlockedType},
		},
		{
			name: "script named after a comma in Content-Disposition",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;")),
					`attachment; filename=`, `attachment, filename=`, 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		// Thunderbird's nsMIMEHeaderParamImpl reads the parameters from a
		// field's start when it has no ';' or ',' ("for broken http
		// servers").
		{
			name: "script named in a Content-Disposition without a type",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;")),
					`attachment; filename=`, `filename=`, 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script named in a Content-Type without a type",
			raw: func(testing.TB) string {
				return strings.Replace(strings.Replace(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;")),
					"Content-Disposition: attachment; filename=\"invoice.js\"\r\n", "", 1), `Content-Type: application/octet-stream`, `Content-Type: name="invoice.js"`, 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		// Thunderbird's nsMIMEHeaderParamImpl (and Python's email) ends an
		// unquoted value at a blank.
		{
			name: "script named by an unquoted name ended by a blank",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;")),
					`filename="invoice.js"`, `filename=invoice.js notes.txt`, 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "EICAR behind an unquoted boundary ended by a blank",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("readme.txt", "text/plain", eicar), `boundary="b1"`, `boundary=b1 x`, 1)
			},
			wantVirus: VirusEICAR,
		},
		// Thunderbird's nsMIMEHeaderParamImpl drops the backslash of any
		// quoted-pair.
		{
			name: "script named with a quoted-pair in its extension",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("invoice.js", "application/octet-stream", []byte("var x = 1;")),
					`filename="invoice.js"`, `filename="invoice.j\s"`, 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "EICAR behind a boundary with a quoted-pair",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("readme.txt", "text/plain", eicar), `boundary="b1"`, `boundary="\b1"`, 1)
			},
			wantVirus: VirusEICAR,
		},
		{
			// "text" without a subtype is Thunderbird's untyped text, in
			// which it shows a uuencoded block as an attachment.
			name: "executable uuencoded in a part of type text",
			raw: func(testing.TB) string {
				return "From: a@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: text; charset=us-ascii\r\n\r\nSee below.\r\n\r\nbegin 644 invoice.exe\r\n" +
					"M35H`````````````````````````````````````````````````````````\r\n" +
					"M````````````````````0````%!%````````````````````````````````\r\n" +
					"F````````````````````````````````````````````````````\r\n`\r\nend\r\n"
			},
			wantReject:  "invoice.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		// Thunderbird names a part that has neither filename nor name by
		// its Content-Name or X-Sun-Data-Name field.
		{
			name: "script named by Content-Name",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("", "application/octet-stream", []byte("var x = 1;")),
					"Content-Disposition: attachment\r\n", "Content-Name: invoice.js\r\n", 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		// A colon in a name was read as an NTFS stream's ("invoice.js:x"
		// saves invoice.js) alone, so "RE: Rechnung.js" was a file "re"
		// of no extension, and delivered; mail clients save it with the
		// colon replaced ("RE_ Rechnung.js"), and a double click runs it.
		{
			name: "script named after a reply's subject",
			raw: func(testing.TB) string {
				return withAttachment("RE: Rechnung.js", "application/octet-stream", []byte("var x = 1;"))
			},
			wantReject:  "Rechnung.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "executable with a colon in its name",
			raw: func(testing.TB) string {
				return withAttachment("invoice: December.exe", "application/octet-stream", []byte("not a PE"))
			},
			wantReject:  "December.exe",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script with a colon in a zipped file's name",
			raw: func(t testing.TB) string {
				return withAttachment("docs.zip", "application/zip", zipOf(t, mem("RE: Rechnung.js", []byte("var x = 1;"))))
			},
			wantReject:  "Rechnung.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script with a colon in a uuencoded file's name",
			raw: func(testing.TB) string {
				return "From: a@example.org\r\nSubject: t\r\n\r\nbegin 644 RE: invoice.js\r\n*=F%R('@@/2`Q.P``\r\n`\r\nend\r\n"
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		// Cut at its colon as an NTFS stream's, an honest PDF named after
		// an order's subject was a file "amazon.com", an executable, and
		// the mail refused; NTFS puts such a file's data in the named
		// stream, beside an empty amazon.com, and clients save it as
		// "Amazon.com_ Order 114-123.pdf".
		{
			name: "PDF named after an order's subject, a domain before the colon",
			raw: func(testing.TB) string {
				return withAttachment("Amazon.com: Order 114-123.pdf", "application/pdf", []byte("%PDF-1.7\n1 0 obj\n"))
			},
			wantSymbols: nil,
		},
		{
			name: "script behind the file's own NTFS stream",
			raw: func(testing.TB) string {
				return withAttachment("Booking.com::$DATA", "application/octet-stream", []byte("not a PE"))
			},
			wantReject:  "Booking.com",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script named by X-Sun-Data-Name",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("", "application/octet-stream", []byte("var x = 1;")),
					"Content-Disposition: attachment\r\n", "X-Sun-Data-Name: invoice.js\r\n", 1)
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		// Clients differ in which name they show and save under: each one
		// the part carries is judged.
		{
			name: "script by its Content-Type name, the disposition saying .txt",
			raw: func(testing.TB) string {
				return withAttachment("invoice.txt", `text/plain; name="invoice.js"`, []byte("var x = 1;"))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script by a filename given twice",
			raw: func(testing.TB) string {
				return withAttachment(`invoice.txt"; filename="invoice.js`, "text/plain", []byte("var x = 1;"))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "script by a filename given twice, one in RFC 2231 form",
			raw: func(testing.TB) string {
				return withAttachment(`invoice.txt"; filename*=utf-8''invoice%2Ejs; x="`, "text/plain", []byte("var x = 1;"))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// The repeated file name is searched in the whole field, not
			// in its first 32 parameters.
			name: "script by a filename given twice, 40 parameters apart",
			raw: func(testing.TB) string {
				return withAttachment(`invoice.txt"`+manyParams(40)+`; filename="invoice.js`, "text/plain", []byte("var x = 1;"))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			// Past the parameters go-message reads, a name is still
			// found, and a boundary still read.
			name: "script by a filename given twice, 200 parameters apart",
			raw: func(testing.TB) string {
				return withAttachment(`invoice.txt"`+manyParams(200)+`; filename="invoice.js`, "text/plain", []byte("var x = 1;"))
			},
			wantReject:  "invoice.js",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "EICAR behind a boundary after 200 parameters",
			raw: func(testing.TB) string {
				return strings.Replace(withAttachment("readme.txt", "text/plain", eicar), `boundary="b1"`, manyParams(200)+`; boundary="b1"`, 1)
			},
			wantVirus: VirusEICAR,
		},
		{
			name: "shortcut by content",
			raw: func(testing.TB) string {
				return withAttachment("", "application/octet-stream", append(append([]byte{}, magicLNK...), 0, 0))
			},
			wantReject:  "shortcut",
			wantSymbols: []string{SymbolBlockedType},
		},
		{
			name: "truncated base64 part",
			raw: func(testing.TB) string {
				return "Subject: t\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf\r\n" +
					"Content-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfs\r\nj6IK\r\nMQ\r\n--b--\r\n"
			},
			wantSymbols: []string{SymbolPartUndecoded},
		},
		{
			name: "multipart without its closing boundary",
			raw: func(testing.TB) string {
				return "Subject: t\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
			},
			// The multipart itself is the parser's MIME_BROKEN; the open
			// part is cut short, which the engine reports.
			wantSymbols: []string{SymbolPartUndecoded},
		},
		{
			// The depth limit is the parser's (MIME_TOO_COMPLEX); the engine
			// finishes on what the parser read.
			name:        "1000-level nested MIME tree",
			raw:         func(testing.TB) string { return nestedMIME(1000, "text/plain", "deep") },
			wantSymbols: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCheck(t, tt.mod)
			res := run(t, c, tt.raw(t))
			if res.Virus != tt.wantVirus {
				t.Errorf("Virus = %q, want %q", res.Virus, tt.wantVirus)
			}
			if tt.wantReject == "" && res.Reject != "" || !strings.Contains(res.Reject, tt.wantReject) {
				t.Errorf("Reject = %q, want it to contain %q", res.Reject, tt.wantReject)
			}
			if got := strings.Join(symbolNames(res), ","); got != strings.Join(tt.wantSymbols, ",") {
				t.Errorf("symbols = %s (%+v), want %s", got, res.Symbols, strings.Join(tt.wantSymbols, ","))
			}
		})
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// nestedMIME builds depth levels of multipart/mixed around one leaf.
func nestedMIME(depth int, leafType, leafBody string) string {
	var head, tail strings.Builder
	head.WriteString("Subject: deep\r\nMIME-Version: 1.0\r\n")
	for i := range depth {
		fmt.Fprintf(&head, "Content-Type: multipart/mixed; boundary=\"l%d\"\r\n\r\n--l%d\r\n", i, i)
	}
	head.WriteString("Content-Type: " + leafType + "\r\n\r\n" + leafBody + "\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&tail, "--l%d--\r\n", i)
	}
	return head.String() + tail.String()
}

func TestHashBlocklist(t *testing.T) {
	bad := []byte("known bad payload\n")
	sum := sha256.Sum256(bad)
	other := sha256.Sum256([]byte("other"))
	path := filepath.Join(t.TempDir(), "sha256.txt")
	list := "# known bad attachments\n" + hex.EncodeToString(sum[:]) + " Acme.Dropper.1\n\n" + hex.EncodeToString(other[:]) + "\n"
	if err := os.WriteFile(path, []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCheck(t, func(c *Config) { c.HashBlocklist = path })
	if res := run(t, c, withAttachment("a.bin", "application/octet-stream", bad)); res.Virus != "Acme.Dropper.1" {
		t.Errorf("listed attachment: Virus = %q", res.Virus)
	}
	if res := run(t, c, withAttachment("o.bin", "application/octet-stream", []byte("other"))); res.Virus != virusHashPrefix+hex.EncodeToString(other[:])[:12] {
		t.Errorf("unnamed listed attachment: Virus = %q", res.Virus)
	}
	if res := run(t, c, withAttachment("a.bin", "application/octet-stream", []byte("fine"))); res.Virus != "" {
		t.Errorf("unlisted attachment: Virus = %q", res.Virus)
	}

	for _, bad := range []struct{ name, list, want string }{
		{"malformed entry", "abc123 nope\n", "bad.txt:1: \"abc123\" is not a SHA-256"},
		// A binary file, or a file of other data, given by mistake.
		{"line past the bound", list + strings.Repeat("a", maxHashBlocklistLine+1) + "\n", "bad.txt:5: a line over 4096 bytes"},
	} {
		badPath := filepath.Join(t.TempDir(), "bad.txt")
		_ = os.WriteFile(badPath, []byte(bad.list), 0o644)
		cfg := DefaultConfig()
		cfg.HashBlocklist = badPath
		if _, err := New(cfg, prometheus.NewRegistry()); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: err = %v, want it to contain %q", bad.name, err, bad.want)
		}
	}
}

// TestKindsOfRecentLures: the file types campaigns moved to once the
// classics were blocked are blocked by name, whatever the content.
func TestKindsOfRecentLures(t *testing.T) {
	for name, want := range map[string]string{
		"Update.msix": KindExecutable, "Teams.appinstaller": KindExecutable, "console.msc": KindExecutable,
		"invoice.cab": KindExecutable, "Help.chm": KindScript, "report.iqy": KindOfficeMacro,
		"table.slk": KindOfficeMacro, "Documents.search-ms": KindShortcut, "Shared.library-ms": KindShortcut,
		"invoice.pdf": "", "archive.rar": "",
	} {
		got := strings.Join(kindsOf(name, ctUnknown, false), ",")
		if got != want {
			t.Errorf("kindsOf(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"unknown kind", func(c *Config) { c.BlockedTypes = []string{"exe"} }, `blocked_types: "exe" is not one of`},
		{"negative zip depth", func(c *Config) { c.ZipMaxDepth = -1 }, "zip_max_depth:"},
		{"zero files", func(c *Config) { c.ZipMaxFiles = 0 }, "zip_max_files:"},
		{"zero expanded", func(c *Config) { c.ZipMaxExpanded = 0 }, "zip_max_expanded:"},
		{"pool below one message", func(c *Config) { c.ZipExpandedInFlight = c.ZipMaxExpanded - 1 }, "zip_expanded_in_flight:"},
		{"ratio 1", func(c *Config) { c.ZipMaxRatio = 1 }, "zip_max_ratio:"},
		{"unknown weight", func(c *Config) { c.Weights = map[string]float64{"NOPE": 1} }, `weights: unknown symbol "NOPE"`},
		{"clamd key checked too", func(c *Config) { c.Clamd.Clamd = "foo" }, `clamd: "foo" is not tcp://host:port or unix:///path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzCheck feeds arbitrary messages to the engine: it must neither panic
// nor run away, whatever the MIME and archive structure.
func FuzzCheck(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nhello\r\n"))
	f.Add([]byte(withAttachment("a.zip", "application/zip", zipOf(f, mem("a.txt", []byte("x")), mem("b.zip", zipOf(f, mem("c.exe", peFile())))))))
	f.Add([]byte(withAttachment("r.doc", "application/msword", oleFile(true))))
	f.Add([]byte(withAttachment("a.tgz", "application/gzip", testenv.Gzip(f, "", tarOf(f, mem("a.exe", peFile()))))))
	f.Add([]byte(nestedMIME(30, "application/octet-stream", "eA==")))
	c := newCheck(f, func(c *Config) { c.ZipMaxExpanded = 1 << 20 })
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, err := c.Check(context.Background(), &scanner.Envelope{}, scanner.Parse(raw)); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzZipMember feeds arbitrary bytes as a zip attachment.
func FuzzZipMember(f *testing.F) {
	f.Add(zipOf(f, mem("a.txt", []byte("hello"))))
	f.Add(zipOf(f, mem("x/", nil), locked("x/y.exe", peFile())))
	c := newCheck(f, func(c *Config) { c.ZipMaxExpanded = 1 << 20 })
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := scanner.Parse([]byte(withAttachment("f.zip", "application/zip", data)))
		if _, err := c.Check(context.Background(), &scanner.Envelope{}, msg); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkCheck100KB(b *testing.B) {
	c := newCheck(b, nil)
	att := zipOf(b, mem("report.txt", bytes.Repeat([]byte("quarterly numbers 1234\n"), 2000)), mem("photo.jpg", randomBytes(40<<10)))
	msg := scanner.Parse([]byte(withAttachment("report.zip", "application/zip", att) + strings.Repeat("filler line of text\r\n", 1000)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Check(context.Background(), &scanner.Envelope{}, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestContainsStream: the raw message is searched in chunks, so a spooled
// message is never loaded; a match across two chunks is still found.
func TestContainsStream(t *testing.T) {
	pad := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"empty", "", false},
		{"alone", string(eicar), true},
		{"at the start of a big stream", string(eicar) + pad(200<<10), true},
		{"across the first chunk's end", pad(64<<10-10) + string(eicar) + pad(100), true},
		{"at the very end", pad(300<<10) + string(eicar), true},
		{"cut in two by other bytes", pad(64<<10-10) + string(eicar[:20]) + "y" + string(eicar[20:]), false},
		{"absent", pad(300 << 10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Short reads must not matter either.
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.HalfReader(strings.NewReader(tt.in))} {
				got, err := containsStream(r, eicarSig)
				if err != nil || got != tt.want {
					t.Errorf("containsStream = %v, %v; want %v", got, err, tt.want)
				}
			}
		})
	}
}

// FuzzSignatureMatchesContains: the anchored search answers as
// bytes.Contains does, for EICAR and for a pattern whose rare byte is its
// first or last.
func FuzzSignatureMatchesContains(f *testing.F) {
	f.Add([]byte("X-Mailer: x\r\nX-Spam: y\r\n\r\n" + string(eicar) + "\r\n"))
	f.Add([]byte(string(eicar[:40]) + "^" + string(eicar)))
	f.Add([]byte("^^^^X5O!P%@AP[4\\PZX54(P^)7CC)7}"))
	f.Add([]byte("ab^cab^c^ab^"))
	sigs := []signature{eicarSig, newSignature([]byte("^ab"), '^'), newSignature([]byte("ab^"), '^'), newSignature([]byte("^"), '^')}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, sig := range sigs {
			if got, want := sig.in(b), bytes.Contains(b, sig.pattern); got != want {
				t.Fatalf("%q in %q: %v, bytes.Contains %v", sig.pattern, b, got, want)
			}
		}
	})
}

// TestZipDirectoryCostsLittleMemory: archive/zip holds a few hundred bytes
// for each 46-byte directory entry, so a zip of empty entries cost the
// scan more than twice its size before a member was looked at, and a zip
// of such zips as much per member. Only the entries the member budget can
// use are read now; the first members are still scanned.
func TestZipDirectoryCostsLittleMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation bounds mean nothing under the race detector")
	}
	ms := []member{mem("invoice.exe", peFile())}
	for i := range 60_000 {
		ms = append(ms, mem(fmt.Sprintf("%d", i), nil))
	}
	archive := zipOf(t, ms...)
	msg := scanner.Parse([]byte(withAttachment("files.zip", "application/zip", archive)))
	res, allocated := checkAllocates(t, newCheck(t, nil), msg)
	t.Logf("zip of %d bytes: the scan allocated %d bytes", len(archive), allocated)
	if allocated > uint64(len(archive))/2 {
		t.Errorf("the scan allocated %d bytes for a %d-byte zip, want at most half its size", allocated, len(archive))
	}
	if res.Reject == "" || !slices.Contains(symbolNames(res), SymbolBlockedType) || !slices.Contains(symbolNames(res), SymbolArchiveLimit) {
		t.Errorf("result %+v, want the executable refused and the member limit flagged", res)
	}
}

// TestArchivesShareTheNodesExpansionPool: each message may decompress
// zip_max_expanded, and many small archives sent at once could each claim
// it. The scans share zip_expanded_in_flight; one that finds no room for
// what its archive declares, or whose archive expands past what it
// declared once the pool is spent, answers busy (the pipeline then
// tempfails, whatever on_error says), also when it waited for room until
// its deadline; and a message's bytes return to the pool when its scan
// ends.
func TestArchivesShareTheNodesExpansionPool(t *testing.T) {
	c := newCheck(t, func(c *Config) { c.ZipMaxExpanded = 1 << 20; c.ZipExpandedInFlight = 1 << 20 })
	random := randomBytes(50_000)
	archive := withAttachment("data.zip", "application/zip", zipOf(t, mem("random.bin", random)))
	// The gzip trailer's size says 100 bytes of the 50,000.
	liar := testenv.Gzip(t, "random.bin", random)
	binary.LittleEndian.PutUint32(liar[len(liar)-4:], 100)
	scan := func(ctx context.Context, raw string) error {
		_, err := c.Check(ctx, &scanner.Envelope{}, scanner.Parse([]byte(raw)))
		return err
	}

	if err := scan(context.Background(), archive); err != nil || c.pool.Used() != 0 {
		t.Fatalf("with the pool free: %v, %d bytes left held", err, c.pool.Used())
	}
	othersHold := c.cfg.ZipExpandedInFlight - 10_000 // scans in progress
	c.pool.tryTake(othersHold)
	if err := scan(context.Background(), archive); !errors.Is(err, scanner.ErrBusy) {
		t.Fatalf("with the pool spent: %v, want ErrBusy", err)
	}
	if err := scan(context.Background(), withAttachment("data.gz", "application/gzip", liar)); !errors.Is(err, scanner.ErrBusy) {
		t.Fatalf("a gzip expanding past its declared size with the pool spent: %v, want ErrBusy", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := scan(ctx, archive); !errors.Is(err, scanner.ErrBusy) {
		t.Fatalf("waiting for the pool until the deadline: %v, want ErrBusy", err)
	}
	if got := c.pool.Used(); got != othersHold {
		t.Fatalf("after the busy scans the pool holds %d, want the others' %d", got, othersHold)
	}
	// A virus found before the pool ran out is still the answer.
	infected := &scanner.Message{Raw: []byte("From: a@example.org\r\n\r\n"), Leaves: []scanner.Leaf{
		{Part: scanner.Part{ContentType: "application/zip", Filename: "x.zip"}, Path: "1", Data: zipOf(t, mem("eicar.com", eicar))},
		{Part: scanner.Part{ContentType: "application/zip", Filename: "y.zip"}, Path: "2", Data: zipOf(t, mem("random.bin", random))},
	}}
	res, err := c.Check(context.Background(), &scanner.Envelope{}, infected)
	if err != nil || res.Virus != VirusEICAR {
		t.Fatalf("EICAR before the pool ran out: %+v, %v", res, err)
	}
}

// TestSevenZipHeadersArePaidFromTheBudget: a 7z's compressed header is
// decoded within the message's zip_max_expanded, like a member. Each 7z of
// 82 KB may decode an 8 MB header; ten in a zip cost 170 MB allocated.
func TestSevenZipHeadersArePaidFromTheBudget(t *testing.T) {
	bomb, err := os.ReadFile("../archdir/testdata/header-bomb.7z")
	if err != nil {
		t.Fatal(err)
	}
	var members []member
	for i := range 10 {
		members = append(members, mem(fmt.Sprintf("%d.7z", i), bomb))
	}
	tests := []struct {
		name    string
		archive []byte
	}{
		{"ten in a zip", zipOf(t, members...)},
		{"ten in a tar", tarOf(t, members...)},
	}
	c := newCheck(t, func(c *Config) { c.ZipMaxExpanded = 20 << 20 })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := scanner.Parse([]byte(withAttachment("files.bin", "application/octet-stream", tt.archive)))
			res, alloc := checkAllocates(t, c, msg)
			if !slices.Contains(symbolNames(res), SymbolArchiveLimit) {
				t.Errorf("symbols %v, want %s", symbolNames(res), SymbolArchiveLimit)
			}
			// Two headers fit in the budget; the ten members are 830 KB.
			if alloc > 60<<20 {
				t.Errorf("scanning allocated %d MB, want under 60", alloc>>20)
			}
		})
	}
}

// TestManyGzipFilesAllocateLittle: a message can hold thousands of tiny
// gzip files (eight uuencoded in each of a thousand text parts), each
// opened before the member budget is consulted. A decompressor for each
// allocated 320 MB for 1 MB of mail; they are reused now.
func TestManyGzipFilesAllocateLittle(t *testing.T) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte("hello"))
	w.Close()
	msg := &scanner.Message{Raw: []byte("From: a@example.org\r\n\r\n")}
	for i := range 4000 {
		msg.Leaves = append(msg.Leaves, scanner.Leaf{
			Part: scanner.Part{ContentType: "application/gzip", Disposition: "attachment", Filename: "a.gz"},
			Path: fmt.Sprint(i + 1), Data: gz.Bytes(),
		})
	}
	res, allocated := checkAllocates(t, newCheck(t, nil), msg)
	if !slices.Contains(symbolNames(res), SymbolArchiveLimit) {
		t.Errorf("result %+v, want the member limit flagged", res)
	}
	if allocated > 16<<20 && !raceEnabled {
		t.Errorf("the scan of %d gzip files allocated %d bytes", len(msg.Leaves), allocated)
	}
}

// checkAllocates runs c on msg and returns its result and the bytes the
// check allocated, the heap collected first.
func checkAllocates(t *testing.T, c *Check, msg *scanner.Message) (scanner.Result, uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := c.Check(context.Background(), &scanner.Envelope{}, msg)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	return res, after.TotalAlloc - before.TotalAlloc
}

// TestArchivesTakeTurnsInThePool: more messages at once than the pool
// holds, each with an archive whose member fits it alone. Each scan used
// to charge the pool as it decompressed and give up the moment it was
// full, so every scan held a slice and nearly all answered busy (the
// sweep: 39 of 40 messages 451). They take turns now, and all pass.
func TestArchivesTakeTurnsInThePool(t *testing.T) {
	const memberSize, scans = 3 << 20, 8
	c := newCheck(t, func(c *Config) { c.ZipMaxExpanded = 4 << 20; c.ZipExpandedInFlight = 4 << 20 })
	raw := []byte(withAttachment("data.zip", "application/zip", zipOf(t, mem("random.bin", randomBytes(memberSize)))))
	scanAllAtOnce(t, c, raw, scans)
}

// scanAllAtOnce scans raw scans times at once with c and fails unless
// every scan succeeded and the pool is empty again: the pool made them
// take turns rather than fail.
func scanAllAtOnce(t *testing.T, c *Check, raw []byte, scans int) {
	t.Helper()
	// A bound, not a synchronisation: the scans wait for each other.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := make(chan struct{})
	errs := make(chan error, scans)
	for range scans {
		go func() {
			msg := scanner.Parse(raw)
			<-start
			_, err := c.Check(ctx, &scanner.Envelope{}, msg)
			errs <- err
		}()
	}
	close(start)
	busy := 0
	for range scans {
		if err := <-errs; err != nil {
			busy++
			t.Log(err)
		}
	}
	if busy > 0 || c.pool.Used() != 0 {
		t.Fatalf("%d of %d scans failed, %d bytes left held; want all scanned, one at a time", busy, scans, c.pool.Used())
	}
}

// TestMembersAreReadIntoTheirDeclaredSize: a member was read into a
// buffer grown as it filled (io.ReadAll): a 16 MiB member allocated 34 MiB,
// and up to about twice its size was held at once while the pool counted
// it once. A member whose archive declares its size (reserved in the pool
// beforehand) is read into one buffer of that size, as far as the
// archive's own size makes it possible.
func TestMembersAreReadIntoTheirDeclaredSize(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation bounds mean nothing under the race detector")
	}
	const size = 16 << 20
	member := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for _, tt := range []struct {
		name, filename string
		archive        []byte
	}{
		{"zip", "data.zip", zipOf(t, mem("data.bin", member))},
		{"gzip", "data.bin.gz", testenv.Gzip(t, "data.bin", member)},
		{"tar", "data.tar", tarOf(t, mem("data.bin", member))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newCheck(t, func(c *Config) { c.ZipMaxRatio = 100_000 })
			msg := &scanner.Message{Raw: []byte("From: a@example.org\r\n\r\n"), Leaves: []scanner.Leaf{
				{Part: scanner.Part{ContentType: "application/octet-stream", Filename: tt.filename}, Path: "1", Data: tt.archive},
			}}
			_, allocated := checkAllocates(t, c, msg)
			if allocated > size*3/2 {
				t.Errorf("expanding a %d MiB member allocated %d MiB, want at most 1.5 times its size", size>>20, allocated>>20)
			}
		})
	}
	// A directory's sizes are believed only as far as the archive has
	// bytes: this 1 KB zip declares 16 MiB from 1 MiB.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "data.bin", Method: zip.Deflate, CompressedSize64: 1 << 20, UncompressedSize64: size})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(randomBytes(1000))
	zw.Close()
	msg := &scanner.Message{Raw: []byte("From: a@example.org\r\n\r\n"), Leaves: []scanner.Leaf{
		{Part: scanner.Part{ContentType: "application/zip", Filename: "data.zip"}, Path: "1", Data: buf.Bytes()},
	}}
	if _, allocated := checkAllocates(t, newCheck(t, nil), msg); allocated > 4<<20 {
		t.Errorf("a %d-byte zip declaring %d MiB allocated %d MiB", buf.Len(), size>>20, allocated>>20)
	}
}

// TestNestedArchivesTakeTurnsInThePool: a scan that already holds bytes
// (the outer zip's member, the inner zip) and needs room for what the
// inner zip declares took it only if it was free at once, so scans of a
// zip in a zip arriving together answered busy although each fits the
// pool alone. They wait their turn now, ahead of scans that hold nothing;
// a nested archive expanding past what it declares still answers busy at
// once.
func TestNestedArchivesTakeTurnsInThePool(t *testing.T) {
	const memberSize, scans = 3 << 20, 8
	c := newCheck(t, func(c *Config) {
		c.ZipMaxExpanded, c.ZipExpandedInFlight, c.ZipMaxRatio = 4<<20, 4<<20, 100_000
	})
	inner := zipOf(t, mem("data.bin", bytes.Repeat([]byte("0123456789abcdef"), memberSize/16)))
	raw := []byte(withAttachment("data.zip", "application/zip", zipOf(t, mem("inner.zip", inner))))
	scanAllAtOnce(t, c, raw, scans)

	// A gzip in a zip whose trailer says 100 bytes of 50,000, with room
	// for the outer zip only: busy without waiting (the deadline is an
	// hour away).
	random := randomBytes(50_000)
	liar := testenv.Gzip(t, "random.bin", random)
	binary.LittleEndian.PutUint32(liar[len(liar)-4:], 100)
	othersHold := c.cfg.ZipExpandedInFlight - 60_000
	c.pool.tryTake(othersHold)
	hour, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err := c.Check(hour, &scanner.Envelope{}, scanner.Parse([]byte(withAttachment("data.zip", "application/zip", zipOf(t, mem("data.gz", liar))))))
	if !errors.Is(err, scanner.ErrBusy) || c.pool.Used() != othersHold {
		t.Fatalf("a nested gzip expanding past its declared size: %v, %d held; want ErrBusy, %d", err, c.pool.Used(), othersHold)
	}
}

// TestDirectorylessZipsTakeTurnsInThePool: a zip without a central
// directory is read from its local headers. Their members were charged to
// the pool only as they decompressed, free at once or busy, so such zips
// arriving together answered busy although each fits the pool alone. The
// size a local header declares is now taken up front, in turn.
func TestDirectorylessZipsTakeTurnsInThePool(t *testing.T) {
	const memberSize, scans = 3 << 20, 8
	c := newCheck(t, func(c *Config) { c.ZipMaxExpanded, c.ZipExpandedInFlight = 4<<20, 4<<20 })
	member := randomBytes(memberSize)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "random.bin", Method: zip.Store, CRC32: crc32.ChecksumIEEE(member), CompressedSize64: memberSize, UncompressedSize64: memberSize})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(member)
	zw.Close()
	z := buf.Bytes()
	raw := []byte(withAttachment("data.zip", "application/zip", z[:bytes.Index(z, []byte("PK\x01\x02"))]))
	scanAllAtOnce(t, c, raw, scans)
}
