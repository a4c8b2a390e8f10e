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

// der is a DER (BER with indefinite set: BER's indefinite length) element
// of the tag given, holding content.
func der(tag byte, indefinite bool, content ...[]byte) []byte {
	c := bytes.Join(content, nil)
	switch {
	case indefinite:
		return append(append([]byte{tag, 0x80}, c...), 0, 0)
	case len(c) < 0x80:
		return append([]byte{tag, byte(len(c))}, c...)
	default:
		return append([]byte{tag, 0x84, byte(len(c) >> 24), byte(len(c) >> 16), byte(len(c) >> 8), byte(len(c))}, c...)
	}
}

// OpaqueSigned is an S/MIME opaque-signed message (RFC 8551 3.5.2): the
// entity inner in a CMS SignedData, without signers (the signature is no
// matter to a reader showing the content). In BER (indefinite) the content
// is cut into two OCTET STRINGs of a constructed one, as streaming signers
// write it.
func OpaqueSigned(inner string, indefinite bool) string {
	oid := func(last byte) []byte {
		return der(0x06, false, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, last})
	}
	content := der(0x04, false, []byte(inner))
	if indefinite {
		content = der(0x24, true, der(0x04, false, []byte(inner[:10])), der(0x04, false, []byte(inner[10:])))
	}
	signedData := der(0x30, indefinite,
		der(0x02, false, []byte{1}),
		der(0x31, false),
		der(0x30, indefinite, oid(1), der(0xa0, indefinite, content)),
		der(0x31, false))
	p7 := der(0x30, indefinite, oid(2), der(0xa0, indefinite, signedData))
	return "From: a@example.org\r\nTo: b@example.net\r\nSubject: signed\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n" +
		"Content-Disposition: attachment; filename=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n" + wrap76(base64.StdEncoding.EncodeToString(p7))
}
