package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/internal/nodetest"
)

// The node hands smtpd a header preparation that removes Authentication-
// Results fields claiming our authserv-id (RFC 8601 §5): that wiring, not
// smtpd, is under test.
func TestForgedAuthenticationResultsAreRemoved(t *testing.T) {
	n, sink := nodetest.StartWithSink(t, nil)
	// mx.test is the node's hostname, hence its authserv-id; the other
	// server's results are not ours to judge and stay.
	msg := "Authentication-Results: mx.test; spf=pass smtp.mailfrom=paypal.com\r\n" +
		"Authentication-Results: other.example; dkim=pass\r\n" +
		"From: Alice <alice@sender.test>\r\nTo: bob@example.org\r\nSubject: quarterly report\r\n\r\nHello Bob,\r\n"
	if code, text := smtpSend(t, n.SMTPAddr(), "alice@sender.test", "bob@example.org", msg); code != 250 {
		t.Fatalf("reply %d %s, want 250", code, text)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatal("not delivered")
	}
	if bytes.Contains(msgs[0].Data, []byte("paypal.com")) {
		t.Error("forged Authentication-Results claiming our authserv-id was relayed")
	}
	if !bytes.Contains(msgs[0].Data, []byte("Authentication-Results: other.example; dkim=pass")) {
		t.Error("another server's Authentication-Results was removed")
	}
}

// smtpdNestedMIME is a message with depth levels of multipart nesting.
func smtpdNestedMIME(depth int) string {
	var b strings.Builder
	b.WriteString("From: a@sender.test\r\nTo: bob@example.org\r\nSubject: nested\r\nMIME-Version: 1.0\r\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ninnermost\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.String()
}

// smtpd's bad-input suite runs without scan checks; here the same hostile
// bodies go through the checks a node builds from its config (model, rules,
// built-in antivirus), which must give a verdict, not a tempfail.
func TestHostileContentGetsAVerdict(t *testing.T) {
	n, _ := nodetest.StartWithSink(t, nil)
	for _, tt := range []struct{ name, msg string }{
		{"NUL bytes", "Subject: nul\x00here\r\n\r\nbody \x00\x00 with NULs\r\n"},
		{"8-bit headers", "From: J\xc3\xbcrgen <j@sender.test>\r\nTo: bob@example.org\r\n" +
			"Subject: Gr\xfc\xdfe aus K\xf6ln \xff\xfe\r\nX-Junk: \x80\x81\x82\r\n\r\nHallo.\r\n"},
		{"1000-level nested MIME", smtpdNestedMIME(1000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, text := smtpSend(t, n.SMTPAddr(), "alice@sender.test", "bob@example.org", tt.msg)
			if code != 250 && (code < 500 || code > 599) {
				t.Errorf("reply %d %q, want a verdict (250 or 5xx), not a tempfail", code, text)
			}
		})
	}
}
