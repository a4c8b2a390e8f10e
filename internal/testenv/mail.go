package testenv

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
)

// Attachment is a multipart message carrying data as a base64 attachment
// called name: the shape antivirus checks must look inside.
func Attachment(name string, data []byte) []byte {
	return []byte("From: a@example.org\r\nTo: b@example.net\r\nSubject: files\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n" +
		"--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"" + name + "\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + wrap76(base64.StdEncoding.EncodeToString(data)) + "--b1--\r\n")
}

// wrap76 breaks base64 into the 76-character lines of RFC 2045 6.8.
func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return b.String() + s + "\r\n"
}

// Zipped is a zip archive holding data as name.
func Zipped(t testing.TB, name string, data []byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create(name)
	_, _ = w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// UnicodePathExtra is an Info-ZIP Unicode Path extra field (0x7075,
// APPNOTE 4.6.9) for a zip member stored as name: 7-Zip extracts it as
// unicode.
func UnicodePathExtra(name, unicode string) []byte {
	b := binary.LittleEndian.AppendUint16(nil, 0x7075)
	b = binary.LittleEndian.AppendUint16(b, uint16(5+len(unicode)))
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE([]byte(name)))
	return append(b, unicode...)
}

// Message100KB is a realistic clean message of about 100 KB: text plus a
// base64 attachment of incompressible-looking bytes.
func Message100KB() []byte {
	att := make([]byte, 74<<10)
	for i := range att {
		att[i] = byte(i*7919 + i/13)
	}
	return Attachment("data.bin", att)
}

// SMTPSourceMessage is the 5 KB message scripts/bench-smtp.sh has Postfix's
// smtp-source send (its header, then 64 numbered lines of X), for the
// benchmarks that take a piece of that path apart.
func SMTPSourceMessage() []byte {
	var msg strings.Builder
	msg.WriteString("From: <sender@bench.test>\r\nTo: <rcpt@example.org>\r\n" +
		"Date: Fri,  4 Dec 2026 08:06:24 +0000 (UTC)\r\nMessage-Id: <4bd6.0003.0000@client.bench.test>\r\n\r\n")
	for i := 1; i <= 64; i++ {
		msg.WriteString(string(rune('0'+i%10)) + strings.Repeat("X", 77) + "\r\n")
	}
	return []byte(msg.String())
}
