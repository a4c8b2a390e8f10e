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
