package smtpd_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/scanner"
)

// A header ended by a line that is not a field: the scan reads that line
// and everything after it as the body, so the customer's server must too.
// Relayed as received, a server reading fields on to the empty line took
// the From, MIME-Version and Content-Type below it for the header: MIME
// structure and an attachment the scan had read as text.
func TestUnterminatedHeaderIsRelayedAsScanned(t *testing.T) {
	const msg = "Subject: invoice\r\n" +
		"X Mailer: 1\r\n" +
		"From: ceo@example.org\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n" +
		"\r\n" +
		"--b\r\nContent-Type: application/octet-stream; name=invoice.exe\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--\r\n"
	for _, tc := range []struct {
		name    string
		spooled bool
	}{{"in memory", false}, {"spooled", true}} {
		t.Run(tc.name, func(t *testing.T) {
			body := msg
			n, sink := startRawNode(t, func(c *config.Config) {
				if tc.spooled {
					c.SMTP.SpoolThreshold = 16 << 10
				}
			})
			if tc.spooled {
				body += strings.Repeat("padding line to pass the spool threshold\r\n", 1000)
			}
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			c.data(250, body)
			got := sink.messages()
			if len(got) != 1 {
				t.Fatalf("%d messages relayed, want 1", len(got))
			}
			relayed := got[0]
			head, _, ok := bytes.Cut(relayed, []byte("\r\n\r\n"))
			if !ok {
				t.Fatalf("relayed message has no empty line:\n%s", relayed)
			}
			if !bytes.HasSuffix(head, []byte("\r\nSubject: invoice")) {
				t.Errorf("relayed header does not end with the last field the scan read:\n%s", head)
			}
			if bytes.Contains(head, []byte("ceo@example.org")) || bytes.Contains(head, []byte("MIME-Version")) {
				t.Errorf("fields after the broken line reach the customer's server as header fields:\n%s", head)
			}
			if !bytes.Contains(relayed, []byte("\r\n\r\nX Mailer: 1\r\nFrom: ceo@example.org\r\n")) {
				t.Errorf("the body does not start with the line that ended the header:\n%s", relayed)
			}
		})
	}
}

// TestMboxFromLineIsRelayedAsScanned: the parser skips an mbox "From "
// line at the top of a message, as archive files have one, and so did it
// for mail received by SMTP, where no such line belongs and a customer's
// server reads it as a line that is not a field. Relayed unchanged, the
// customer's server got the fields the scan read after that line (From,
// Content-Type) as body; relayed with a header we rewrote (a sender's
// X-Spam-Status removed, a subject tagged), the line was silently dropped.
// Now it ends the header like any line that is not a field, and the
// message is relayed whole with the empty line before it.
func TestMboxFromLineIsRelayedAsScanned(t *testing.T) {
	const fromLine = "From alice@sender.test Sat Dec  5 23:23:21 2026\r\n"
	n, sink := startRawNode(t, nil)
	for _, tc := range []struct{ name, fields string }{
		{"header relayed as received", ""},
		{"header rewritten", "X-Spam-Status: No, score=-5.0\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := fromLine + tc.fields + testMessage
			relayed := relayOne(t, n, sink, "", msg)
			// The raw sink keeps the relay's dot-stuffing.
			if !bytes.HasSuffix(relayed, []byte("\r\n\r\n"+strings.ReplaceAll(msg, "\r\n.", "\r\n.."))) {
				t.Errorf("the message is not relayed whole behind our fields and an empty line:\n%q", relayed)
			}
			head, _, _ := bytes.Cut(relayed, []byte("\r\n\r\n"))
			for _, line := range strings.Split(string(head), "\r\n") {
				if name, _, ok := strings.Cut(line, ":"); !strings.HasPrefix(line, "\t") && (!ok || strings.ContainsAny(name, " \t")) {
					t.Errorf("relayed header holds a line that is not a field: %q", line)
				}
			}
		})
	}
}

// A header past scanner.MaxHeaderFields or MaxHeaderBytes is refused, not
// parsed: go-message kept ~450 bytes per field, so 8 MB of "X: y" lines
// cost 620 MB of heap. At the limits it passes.
func TestHugeHeaderRefused(t *testing.T) {
	n, sink := startRawNode(t, nil)
	fields := func(k int, line string) string {
		return strings.Repeat(line, k) + testMessage
	}
	longField := "X-Long: " + strings.Repeat("y", 990) + "\r\n" // 1000 bytes
	for _, tc := range []struct {
		name string
		msg  string
		want int
	}{
		// testMessage's own fields count too.
		{"at the field limit", fields(scanner.MaxHeaderFields-5, "X: y\r\n"), 250},
		{"one field more", fields(scanner.MaxHeaderFields-4, "X: y\r\n"), 552},
		{"folded past the byte limit", "X-Folded: a\r\n" + strings.Repeat(" "+strings.Repeat("z", 98)+"\r\n", scanner.MaxHeaderBytes/100+1) + testMessage, 552},
		{"long fields past the byte limit", fields(scanner.MaxHeaderBytes/1000+1, longField), 552},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(sink.messages())
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			reply := c.data(tc.want, tc.msg)
			relayed := len(sink.messages()) - before
			switch {
			case tc.want == 250 && relayed != 1:
				t.Errorf("%d relayed, want 1", relayed)
			case tc.want != 250 && relayed != 0:
				t.Errorf("refused message relayed")
			case tc.want != 250 && !strings.HasPrefix(reply, "5.3.4"):
				t.Errorf("reply %q, want 5.3.4", reply)
			}
		})
	}
}
