package e2e

import (
	"bytes"
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
