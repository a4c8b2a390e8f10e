package smtpd_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/metrictest"
)

// TestEightBitNeeds8BITMIMEDownstream: RFC 6152 §3, 8-bit data is never
// relayed to a customer's server that did not offer 8BITMIME. The sender
// hears 554 5.6.3, the customer's server gets no DATA, and its session
// (MAIL and RCPT already accepted) is ended by RSET and reused for the
// sender's next message. A server that offers 8BITMIME gets the bytes as
// they came, with BODY=8BITMIME.
func TestEightBitNeeds8BITMIMEDownstream(t *testing.T) {
	const threshold = 4 << 10
	// Past spool_threshold: the body goes to the spool file.
	big := strings.Repeat(strings.Repeat("x", 70)+"\r\n", 2*threshold/72)
	tests := []struct {
		name  string
		offer bool   // the customer's server offers 8BITMIME
		helo  string // "": client.sender.test
		mail  string // MAIL parameters
		body  string
		want  int
	}{
		{name: "UTF-8 body", body: "Caf\xc3\xa9\r\n", want: 554},
		{name: "Latin-1 body", body: "caf\xe9\r\n", want: 554},
		{name: "spooled body, 8-bit at its end", body: big + "caf\xc3\xa9\r\n", want: 554},
		{name: "BODY=8BITMIME declared, 7-bit body", mail: " BODY=8BITMIME", body: "plain\r\n", want: 250},
		{name: "UTF-8 HELO, written as its A-label in our Received field", helo: "caf\xc3\xa9.sender.test", body: "plain\r\n", want: 250},
		{name: "7-bit body", body: "plain\r\n", want: 250},
		{name: "7-bit spooled body", body: big, want: 250},
		{name: "UTF-8 body, 8BITMIME offered", offer: true, body: "Caf\xc3\xa9\r\n", want: 250},
		{name: "spooled 8-bit body, 8BITMIME offered", offer: true, body: big + "caf\xc3\xa9\r\n", want: 250},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.SpoolThreshold = threshold })
			if !tc.offer {
				sink.withhold8BitMIME()
			}
			c := dial(t, n.SMTPAddr())
			if tc.helo != "" {
				c.cmd(250, "EHLO %s", tc.helo)
			}
			c.cmd(250, "MAIL FROM:<alice@sender.test>%s", tc.mail)
			c.cmd(250, "RCPT TO:<bob@example.org>")
			msg := c.data(tc.want, "From: alice@sender.test\r\nSubject: eight\r\n\r\n"+tc.body)
			if tc.want == 554 && !strings.HasPrefix(msg, "5.6.3 the customer's server does not accept 8-bit mail") {
				t.Errorf("reply %q, want 5.6.3 and why", msg)
			}
			// The next message on the same connection: the refused
			// transaction must not have spoilt the downstream session.
			c.cmd(250, "EHLO client.sender.test")
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			c.data(250, "From: alice@sender.test\r\nSubject: after\r\n\r\nplain\r\n")

			got := sink.messages()
			mails := sink.commands("MAIL ")
			if tc.want == 554 {
				if len(got) != 1 || !bytes.Contains(got[0], []byte("Subject: after")) || len(sink.commands("DATA")) != 1 {
					t.Fatalf("customer server got DATA %d times, messages %q; want only the one after", len(sink.commands("DATA")), got)
				}
				if len(sink.commands("RSET")) != 1 || sink.connections() != 1 {
					t.Errorf("refused transaction ended with %d RSET on %d connections, want 1 RSET, session reused", len(sink.commands("RSET")), sink.connections())
				}
				if v := metrictest.Counter(t, n.metrics, "mxgrid_relay_results_total", "refused_8bit"); v != 1 {
					t.Errorf("relay results refused_8bit = %v, want 1", v)
				}
			} else if len(got) != 2 || !bytes.Contains(got[0], []byte(tc.body)) {
				t.Fatalf("customer server got %d messages, the first without the body as sent", len(got))
			}
			for _, m := range mails {
				if strings.Contains(m, "BODY=8BITMIME") != tc.offer {
					t.Errorf("MAIL line %q: BODY=8BITMIME must go exactly when offered (%v)", m, tc.offer)
				}
			}
		})
	}
}

// TestEightBitBodyWithoutSMTPUTF8: a sender that asked for SMTPUTF8 (many
// ask on every message) and whose envelope and header fields are ASCII
// needs nothing SMTPUTF8 carries, however 8-bit its bodies: the customer's
// server without SMTPUTF8 gets it without the parameter, with
// BODY=8BITMIME, as Postfix sends it (RFC 6531 §3.4). Before, any 8-bit
// byte had it refused 550 5.6.7. A byte >= 0x80 in any header field, the
// message's, a MIME part's however deep, or an attached message's, still
// needs SMTPUTF8 (RFC 6532 §3) and is refused without reaching the server.
func TestEightBitBodyWithoutSMTPUTF8(t *testing.T) {
	const threshold = 4 << 10
	big := strings.Repeat(strings.Repeat("x", 70)+"\r\n", 2*threshold/72)
	multipart := func(partHeader, body string) string {
		return "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n" +
			"--outer\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n" +
			"--outer\r\nContent-Type: multipart/alternative;\r\n boundary=inner\r\n\r\n" +
			"--inner\r\n" + partHeader + "\r\n\r\n" + body + "\r\n--inner--\r\n" +
			"--outer--\r\n"
	}
	tests := []struct {
		name    string
		no8Bit  bool // the customer's server does not offer 8BITMIME either
		message string
		want    int
	}{
		{name: "ASCII header, 8-bit body", message: "Subject: ascii\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n", want: 250},
		{name: "ASCII header, spooled 8-bit body", message: "Subject: ascii\r\n\r\n" + big + "Gr\xc3\xbc\xc3\x9fe\r\n", want: 250},
		{name: "8-bit bodies of nested parts", message: multipart("Content-Type: text/plain; charset=utf-8", "caf\xc3\xa9"), want: 250},
		{name: "8-bit body, no 8BITMIME either", no8Bit: true, message: "Subject: ascii\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n", want: 554},
		{name: "UTF-8 Subject", message: "Subject: Gr\xc3\xbc\xc3\x9fe\r\n\r\nplain\r\n", want: 550},
		{name: "UTF-8 Subject, spooled body", message: "Subject: Gr\xc3\xbc\xc3\x9fe\r\n\r\n" + big, want: 550},
		{name: "UTF-8 file name in a nested part's header", message: multipart("Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"Rechnung-M\xc3\xa4rz.pdf\"", "JVBERi0xLjQK"), want: 550},
		{name: "RFC 2231 file name in a nested part's header, 7-bit", message: multipart("Content-Disposition: attachment; filename*=utf-8''Rechnung-M%C3%A4rz.pdf", "JVBERi0xLjQK"), want: 250},
		{name: "UTF-8 file name in a nested part's header, spooled", message: multipart("Content-Disposition: attachment;\r\n filename=\"\xc3\xa4.pdf\"", big), want: 550},
		{name: "UTF-8 in an attached message's header", message: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n\r\ncaf\xc3\xa9\r\n--b--\r\n", want: 550},
		{name: "UTF-8 in a part's field named as its delimiter", message: multipart("Content-Type: text/plain\r\n--inner: Gr\xc3\xbc\xc3\x9fe", "plain"), want: 550},
		{name: "UTF-8 in an attached message whose part's header holds its delimiter", message: multipart("Content-Type: message/rfc822\r\n--inner", "Subject: Gr\xc3\xbc\xc3\x9fe\r\n\r\nhi"), want: 550},
		{name: "UTF-8 in a digest's untyped message", message: "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nFrom: J\xc3\xbcrgen <j@sender.test>\r\n\r\nhi\r\n--d--\r\n", want: 550},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.SpoolThreshold = threshold })
			sink.withholdSMTPUTF8()
			if tc.no8Bit {
				sink.withhold8BitMIME()
			}
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<alice@sender.test> SMTPUTF8")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			reply := c.data(tc.want, "From: alice@sender.test\r\n"+tc.message)
			got := sink.messages()
			switch tc.want {
			case 250:
				if len(got) != 1 || !bytes.HasSuffix(got[0], []byte(tc.message)) {
					t.Fatalf("customer server got %d messages, want this one as sent", len(got))
				}
				if mails := sink.commands("MAIL "); len(mails) != 1 || mails[0] != "MAIL FROM:<alice@sender.test> BODY=8BITMIME" {
					t.Errorf("MAIL lines %q, want one with BODY=8BITMIME and without SMTPUTF8", mails)
				}
			case 550:
				if !strings.HasPrefix(reply, "5.6.7 the customer's server does not support SMTPUTF8") {
					t.Errorf("reply %q, want 5.6.7 and why", reply)
				}
				fallthrough
			default:
				if len(got) != 0 || len(sink.commands("DATA")) != 0 {
					t.Errorf("customer server got DATA %d times, want none", len(sink.commands("DATA")))
				}
				if v := metrictest.Counter(t, n.metrics, "mxgrid_relay_results_total", "refused_8bit"); v != 1 {
					t.Errorf("relay results refused_8bit = %v, want 1", v)
				}
			}
		})
	}
}
