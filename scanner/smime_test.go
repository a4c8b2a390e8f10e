package scanner

import (
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/internal/testenv"
)

// berSigned is a CMS SignedData of "hi!" in BER as streaming signers write
// it: indefinite lengths and the content in two OCTET STRINGs.
var berSigned = []byte("\x30\x80" + string(oidPrefix) + "\x02\xa0\x80\x30\x80\x02\x01\x01\x31\x00\x30\x80" +
	string(oidPrefix) + "\x01\xa0\x80\x24\x80\x04\x02hi\x04\x01!\x00\x00\x00\x00\x00\x00\x31\x00\x00\x00\x00\x00\x00\x00")

func TestSignedContent(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"BER", berSigned, "hi!"},
		{"enveloped, not signed", []byte(string(berSigned[:12]) + "\x03" + string(berSigned[13:])), ""},
		{"cut short", berSigned[:len(berSigned)-3], ""},
		{"nested past the bound", []byte("\x30\x80" + string(oidPrefix) + "\x02\xa0\x80" + strings.Repeat("\x30\x80", 20)), ""},
	} {
		if got := string(signedContent(tc.b)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// FuzzSignedContent: any bytes as an application/pkcs7-mime part's are
// read without a panic, and the content found is never longer than they
// are.
func FuzzSignedContent(f *testing.F) {
	f.Add(berSigned)
	f.Fuzz(func(t *testing.T, b []byte) {
		if c := signedContent(b); len(c) > len(b) {
			t.Fatalf("content of %d bytes from %d", len(c), len(b))
		}
	})
}

// TestOpaqueSignedTextIsTheMessages: the content of an opaque-signed
// message is what the recipient reads as the message, so its text and
// links are the message's, for the model and the rules; read as an
// attached message's, spam wrapped in a signature of its own had no text
// and no links.
func TestOpaqueSignedTextIsTheMessages(t *testing.T) {
	inner := "Content-Type: text/html; charset=utf-8\r\n\r\n" +
		`<p>Your mailbox is almost full.</p><a href="https://mailbox-upgrade.example/login">Upgrade now</a>` + "\r\n"
	m := Parse([]byte(testenv.OpaqueSigned(inner, true)))
	if !strings.Contains(m.HTML.Text, "Upgrade now") || len(m.URLs) != 1 || m.URLs[0].Host != "mailbox-upgrade.example" {
		t.Fatalf("HTML text %q, links %+v", m.HTML.Text, m.URLs)
	}
}
