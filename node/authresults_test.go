package node_test

import (
	"bytes"
	"testing"

	"github.com/mxgrid/mxgrid/internal/smtptest"
)

// Each node's authserv-id is its own host name by default, so a customer
// that trusts our Authentication-Results trusts every member's name: the
// whole cluster is one ADMD, and RFC 8601 §5 has its MTAs remove any field
// that claims an authserv-id of theirs. One claiming another member's
// name, sent to this member, reached the customer as a result of ours.
func TestAnotherMembersAuthenticationResultsAreRemoved(t *testing.T) {
	sink := smtptest.StartSink(t)
	a, _ := startPair(t, [2]string{}, func(int, [2]string) string { return sink.Addr }, nil)
	msg := "Authentication-Results: mx-b.test; dmarc=pass header.from=bank.example\r\n" +
		"Authentication-Results: MX-B.test.; dkim=pass header.d=bank.example\r\n" +
		"Authentication-Results: mx-a.test; spf=pass smtp.mailfrom=bank.example\r\n" +
		"Authentication-Results: other.example; dkim=pass header.d=list.example\r\n" +
		"From: Bank <alerts@bank.example>\r\nTo: bob@other.example\r\nSubject: your account\r\n\r\nHello Bob,\r\n"
	if code, text := smtptest.Send(t, a.SMTPAddr(), "alice@sender.test", "bob@other.example", []byte(msg)); code != 250 {
		t.Fatalf("reply %d %s, want 250", code, text)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("customer's server got %d messages, want 1", len(msgs))
	}
	for _, forged := range []string{"dmarc=pass header.from=bank.example", "dkim=pass header.d=bank.example", "spf=pass smtp.mailfrom=bank.example"} {
		if bytes.Contains(msgs[0].Data, []byte(forged)) {
			t.Errorf("a forged Authentication-Results (%s) claiming a member's authserv-id was relayed:\n%s", forged, msgs[0].Data)
		}
	}
	if !bytes.Contains(msgs[0].Data, []byte("Authentication-Results: other.example; dkim=pass header.d=list.example")) {
		t.Errorf("another server's Authentication-Results was removed:\n%s", msgs[0].Data)
	}
}
