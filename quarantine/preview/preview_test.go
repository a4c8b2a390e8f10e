package preview

import (
	"slices"
	"testing"
)

// TestPreviewHeadersCannotRunBackwards: the panel shows a held message's
// headers and attachment names for a person to decide on its release; a
// bidirectional override made "invoice\u202etxt.mcod", a macro document,
// read "invoicedocm.txt" there, and a control character could break the
// line.
func TestPreviewHeadersCannotRunBackwards(t *testing.T) {
	msg := "From: =?UTF-8?Q?Bank_=E2=80=AEknaB?= <a@b.example>\r\n" +
		"To: \u202emoc.elpmaxe-knab <bob@c.example>\r\n" +
		"Subject: =?UTF-8?Q?Invoice_=E2=80=AEfdp.exe?=\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=BB\r\n\r\n" +
		"--BB\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--BB\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename*=UTF-8''invoice%E2%80%AEtxt.mcod\r\n\r\nAAAA\r\n" +
		"--BB\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename*=UTF-8''a%0D%0Ab.txt\r\n\r\nAAAA\r\n" +
		"--BB--\r\n"
	p := Of([]byte(msg))
	tests := []struct{ field, got, want string }{
		{"Subject", p.Subject, "Invoice  fdp.exe"},
		{"To", p.To, " moc.elpmaxe-knab <bob@c.example>"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s %q, want %q", tt.field, tt.got, tt.want)
		}
	}
	if want := []string{"invoice txt.mcod", "a  b.txt"}; !slices.Equal(p.Attachments, want) {
		t.Errorf("Attachments %q, want %q", p.Attachments, want)
	}
}
