package scanner

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"reflect"
	"testing"
)

// tnefStream writes a TNEF stream as Outlook does: message attributes,
// then per attachment its rendering data, title and data.
func tnefStream(files ...embeddedFile) []byte {
	b := binary.LittleEndian.AppendUint32(nil, tnefSignature)
	b = binary.LittleEndian.AppendUint16(b, 0x0001)
	attr := func(level byte, id uint32, value []byte) {
		b = append(b, level)
		b = binary.LittleEndian.AppendUint32(b, id)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(value)))
		b = append(b, value...)
		var sum uint16
		for _, c := range value {
			sum += uint16(c)
		}
		b = binary.LittleEndian.AppendUint16(b, sum)
	}
	attr(1, 0x00089006, []byte{1, 0, 0, 0})    // attTnefVersion
	attr(1, 0x00018004, []byte("Invoice\x00")) // attSubject
	for _, f := range files {
		attr(2, 0x00069002, make([]byte, 14))      // attAttachRendData
		attr(2, 0x00018010, []byte(f.name+"\x00")) // attAttachTitle
		attr(2, 0x0006800F, f.data)                // attAttachData
	}
	return b
}

func TestTNEFFiles(t *testing.T) {
	pe := append([]byte("MZ"), bytes.Repeat([]byte{0, 1, 2, 0xff}, 40)...)
	two := tnefStream(embeddedFile{"invoice.exe", pe}, embeddedFile{"notes.txt", []byte("hello")})
	tests := []struct {
		name string
		data []byte
		want []embeddedFile
	}{
		{"two attachments", two, []embeddedFile{{"invoice.exe", pe}, {"notes.txt", []byte("hello")}}},
		{"cut inside the second's data", two[:len(two)-4], []embeddedFile{{"invoice.exe", pe}, {"notes.txt", []byte("hel")}}},
		{"a length past the end", append(tnefStream(), 2, 0x0f, 0x80, 6, 0, 0xff, 0xff, 0xff, 0xff, 'M', 'Z'), []embeddedFile{{"", []byte("MZ")}}},
		{"no signature", two[4:], nil},
		{"nothing after the signature", two[:6], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tnefFiles(tt.data); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tnefFiles = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTNEFAttachmentsAreLeaves: Outlook opens the files inside winmail.dat
// for the recipient, so the checks see each as an attached file.
func TestTNEFAttachmentsAreLeaves(t *testing.T) {
	pe := append([]byte("MZ"), make([]byte, 64)...)
	raw := "From: a@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--b\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\nContent-Disposition: attachment; filename=winmail.dat\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(tnefStream(embeddedFile{"invoice.exe", pe})) + "\r\n--b--\r\n"
	m := Parse([]byte(raw))
	var got []string
	for _, l := range m.Leaves {
		got = append(got, l.Path+" "+l.Filename)
		if l.Filename == "invoice.exe" && (!bytes.Equal(l.Data, pe) || !l.IsAttachment()) {
			t.Errorf("leaf %+v", l.Part)
		}
	}
	if want := []string{"1 ", "2 winmail.dat", "2.t1 invoice.exe"}; !reflect.DeepEqual(got, want) {
		t.Errorf("leaves %q, want %q", got, want)
	}
	if len(m.Parts) != 3 {
		t.Errorf("parts %+v: the MIME structure must stay as sent", m.Parts)
	}
}

// TestTNEFFilesPastTheLimit: Outlook shows every file of a winmail.dat;
// the walk reads maxTNEFFiles, and a stream with more is past the
// parser's limits (MIME_TOO_COMPLEX, which tags), not clean: 32 harmless
// files ahead of an invoice.exe hid it.
func TestTNEFFilesPastTheLimit(t *testing.T) {
	for _, n := range []int{maxTNEFFiles, maxTNEFFiles + 1} {
		files := make([]embeddedFile, n)
		for i := range files {
			files[i] = embeddedFile{"notes.txt", []byte("hello")}
		}
		files[n-1] = embeddedFile{"invoice.exe", []byte("MZ")}
		raw := "From: a@example.org\r\nSubject: x\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			base64.StdEncoding.EncodeToString(tnefStream(files...)) + "\r\n"
		m := Parse([]byte(raw))
		tooComplex := false
		for _, s := range m.Symbols {
			tooComplex = tooComplex || s.Name == SymbolMIMETooComplex
		}
		if len(m.Leaves)-1 != min(n, maxTNEFFiles) || tooComplex != (n > maxTNEFFiles) {
			t.Errorf("%d files: %d read, MIME_TOO_COMPLEX %v; want %d, %v", n, len(m.Leaves)-1, tooComplex, min(n, maxTNEFFiles), n > maxTNEFFiles)
		}
	}
}

func FuzzTNEFFiles(f *testing.F) {
	f.Add(tnefStream(embeddedFile{"a.exe", []byte("MZ")}, embeddedFile{"b", nil}))
	f.Add(tnefStream())
	f.Fuzz(func(t *testing.T, data []byte) {
		files := tnefFiles(data)
		if len(files) > maxTNEFFiles+1 || len(files) == maxTNEFFiles+1 && files[maxTNEFFiles].data != nil {
			t.Fatalf("%d files", len(files))
		}
		for _, fl := range files {
			if len(fl.data) > len(data) {
				t.Fatalf("a file of %d bytes from %d", len(fl.data), len(data))
			}
		}
	})
}
