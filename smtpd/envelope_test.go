package smtpd_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/metrictest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/tenant"
)

// startRawNode runs a node whose example.org routes to a rawSink.
func startRawNode(t *testing.T, mutate func(*config.Config)) (*testNode, *rawSink) {
	t.Helper()
	sink := startRawSink(t)
	cfg := testConfig(t)
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
	if mutate != nil {
		mutate(&cfg)
	}
	return startConfigured(t, cfg, nil), sink
}

// raw sends s as is (it must hold its own line ending) and checks the reply.
func (c *client) raw(want int, s string) string {
	c.t.Helper()
	c.write(s)
	return c.expect(want)
}

// write sends s as is in one write: its own line endings, any number of
// commands (a pipeline), no reply read.
func (c *client) write(s string) {
	c.t.Helper()
	if _, err := c.c.W.WriteString(s); err != nil {
		c.t.Fatal(err)
	}
	if err := c.c.W.Flush(); err != nil {
		c.t.Fatal(err)
	}
}

// envelopeLine is every MAIL/RCPT line the relay may write: one address in
// brackets and only our parameters.
var envelopeLine = regexp.MustCompile(`^(?:MAIL FROM|RCPT TO):<(.*)>((?: BODY=8BITMIME| SIZE=[0-9]+| SMTPUTF8)*)$`)

// checkEnvelopeLine asserts that line carries exactly one well-formed
// address and returns it.
func checkEnvelopeLine(t testing.TB, line string) string {
	t.Helper()
	m := envelopeLine.FindStringSubmatch(line)
	if m == nil {
		t.Errorf("downstream got %q: not one address with our parameters only", line)
		return ""
	}
	if strings.HasPrefix(line, "RCPT") && m[2] != "" {
		t.Errorf("downstream got %q: RCPT carries parameters", line)
	}
	if m[1] == "" && strings.HasPrefix(line, "MAIL") {
		return "" // the null sender
	}
	a, err := mailaddr.Parse(m[1])
	if err != nil || a.String() != m[1] {
		t.Errorf("downstream got %q: address %q does not parse back (%v)", line, m[1], err)
	}
	return m[1]
}

func TestEnvelopeInjectionIsQuotedNotPasted(t *testing.T) {
	// Source routing is allowed here so that quoted local parts holding @
	// are relayed, which is what shows they are quoted, not pasted.
	n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.AllowSourceRouting = true })
	tests := []struct {
		name, from, rcpt     string
		wantFrom, wantRcpt   string
		fromReply, rcptReply int
	}{
		{name: "rcpt ORCPT", from: "<alice@sender.test>", rcpt: `<"victim@evil.test> ORCPT=rfc822;x"@example.org>`,
			wantFrom: "alice@sender.test", wantRcpt: `"victim@evil.test> ORCPT=rfc822;x"@example.org`},
		{name: "rcpt NOTIFY", from: "<alice@sender.test>", rcpt: `<"bob> NOTIFY=SUCCESS,FAILURE"@example.org>`,
			wantFrom: "alice@sender.test", wantRcpt: `"bob> NOTIFY=SUCCESS,FAILURE"@example.org`},
		{name: "rcpt spaces", from: "<alice@sender.test>", rcpt: `<"bob smith"@example.org>`,
			wantFrom: "alice@sender.test", wantRcpt: `"bob smith"@example.org`},
		{name: "rcpt escaped quote", from: "<alice@sender.test>", rcpt: `<"bob\"> x"@example.org>`,
			wantFrom: "alice@sender.test", wantRcpt: `"bob\"> x"@example.org`},
		{name: "mail AUTH", from: `<"a> AUTH=admin@example.com X"@evil.test>`, rcpt: "<bob@example.org>",
			wantFrom: `"a> AUTH=admin@example.com X"@evil.test`, wantRcpt: "bob@example.org"},
		{name: "mail SIZE and BODY", from: `<"a> SIZE=1 BODY=7BIT"@evil.test>`, rcpt: "<bob@example.org>",
			wantFrom: `"a> SIZE=1 BODY=7BIT"@evil.test`, wantRcpt: "bob@example.org"},
		// The root's trailing dot is dropped, as Postfix drops it; it
		// was refused 501, the sender's mail bounced.
		{name: "trailing dots", from: "<alice@sender.test.>", rcpt: "<bob@example.org.>",
			wantFrom: "alice@sender.test", wantRcpt: "bob@example.org"},
		{name: "rcpt NUL", from: "<alice@sender.test>", rcpt: "<\"bob\x00x\"@example.org>", rcptReply: 501},
		{name: "rcpt CR", from: "<alice@sender.test>", rcpt: "<\"bob\rRCPT TO:<x@evil.test>\"@example.org>", rcptReply: 501},
		{name: "rcpt CR unquoted", from: "<alice@sender.test>", rcpt: "<bob@example.org\rRSET>", rcptReply: 501},
		{name: "mail NUL", from: "<\"a\x00\"@evil.test>", fromReply: 501},
		{name: "mail CR", from: "<\"a\rMAIL FROM:<x@evil.test>\"@evil.test>", fromReply: 501},
		{name: "mail VT", from: "<a\x0bb@evil.test>", fromReply: 501},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fromReply == 0 {
				tc.fromReply = 250
			}
			if tc.rcptReply == 0 {
				tc.rcptReply = 250
			}
			mails, rcpts := len(sink.commands("MAIL")), len(sink.commands("RCPT"))
			c := dial(t, n.SMTPAddr())
			msg := c.raw(tc.fromReply, "MAIL FROM:"+tc.from+"\r\n")
			if tc.fromReply != 250 {
				// RFC 3463: X.1.7 is the sender's address syntax.
				if !strings.HasPrefix(msg, "5.1.7") {
					t.Errorf("MAIL reply %q, want 5.1.7", msg)
				}
				return
			}
			msg = c.raw(tc.rcptReply, "RCPT TO:"+tc.rcpt+"\r\n")
			if tc.rcptReply != 250 {
				if !strings.HasPrefix(msg, "5.1.3") {
					t.Errorf("RCPT reply %q, want 5.1.3", msg)
				}
				if got := sink.commands("RCPT"); len(got) != rcpts {
					t.Errorf("refused recipient reached the customer server: %q", got[rcpts:])
				}
				return
			}
			c.data(250, testMessage)
			gotMail, gotRcpt := sink.commands("MAIL")[mails:], sink.commands("RCPT")[rcpts:]
			if len(gotMail) != 1 || len(gotRcpt) != 1 {
				t.Fatalf("downstream got MAIL %q and RCPT %q, want one of each", gotMail, gotRcpt)
			}
			if got := checkEnvelopeLine(t, gotMail[0]); got != tc.wantFrom {
				t.Errorf("downstream MAIL address %q, want %q", got, tc.wantFrom)
			}
			if got := checkEnvelopeLine(t, gotRcpt[0]); got != tc.wantRcpt {
				t.Errorf("downstream RCPT address %q, want %q", got, tc.wantRcpt)
			}
		})
	}
	// Nothing but MAIL, RCPT, DATA and the session's own commands arrived
	// (RSET: the relay readies a session for its connection cache).
	for _, l := range sink.lines {
		switch v := strings.ToUpper(l[:min(4, len(l))]); v {
		case "EHLO", "MAIL", "RCPT", "DATA", "QUIT", "RSET":
		default:
			t.Errorf("downstream got unexpected command line %q", l)
		}
	}
}

func TestSourceRoutedRecipientsAreRefused(t *testing.T) {
	routed := []string{
		"victim%evil.test@example.org",
		"evil.test!victim@example.org",
		"victim@evil.test@example.org",
		`"victim@evil.test"@example.org`,
		`"victim%evil.test"@example.org`,
	}
	t.Run("refused", func(t *testing.T) {
		n, sink := startRawNode(t, nil)
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		for _, r := range routed {
			if msg := c.cmd(550, "RCPT TO:<%s>", r); !strings.HasPrefix(msg, "5.7.1") {
				t.Errorf("RCPT TO:<%s>: reply %q, want 5.7.1", r, msg)
			}
		}
		// An empty domain between two @ is a syntax error, not a route.
		c.cmd(501, "RCPT TO:<victim@@example.org>")
		c.cmd(250, "RSET")
		c.cmd(501, "MAIL FROM:<alice@@sender.test>")
		if got := sink.commands("RCPT"); len(got) != 0 {
			t.Errorf("source-routed recipients reached the customer server: %q", got)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.AllowSourceRouting = true })
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<victim@evil.test@example.org>")
		if got := sink.commands("RCPT"); len(got) != 1 || got[0] != `RCPT TO:<"victim@evil.test"@example.org>` {
			t.Errorf("downstream got %q, want the local part quoted", got)
		}
	})
}

// stripReceived removes our Received field (with its folded lines).
func stripReceived(t *testing.T, b []byte) []byte {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("Received: ")) {
		t.Fatalf("message does not start with our Received field: %q", b[:min(len(b), 200)])
	}
	for {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			t.Fatalf("unterminated field")
		}
		b = b[i+2:]
		if len(b) == 0 || (b[0] != ' ' && b[0] != '\t') {
			return b
		}
	}
}

// checkCRLFStuffed asserts that a body as received downstream has only
// CRLF line ends and no line that a lenient server could take as the end.
func checkCRLFStuffed(t testing.TB, body []byte) {
	t.Helper()
	for i, c := range body {
		if c == '\r' && (i+1 == len(body) || body[i+1] != '\n') || c == '\n' && (i == 0 || body[i-1] != '\r') {
			t.Errorf("bare CR or LF at offset %d of %q", i, body)
			return
		}
	}
	for _, l := range strings.Split(string(body), "\r\n") {
		if l == "." {
			t.Errorf("unstuffed dot line in %q", body)
		}
	}
}

const bareHeader = "From: a@sender.test\r\nSubject: bare\r\n\r\n"

// TestBareNewlines: each variant either reaches the customer's server as
// CRLF lines with dot-stuffing intact and nothing after it lost, or (with
// bare_newline: reject) is refused and never relayed.
func TestBareNewlines(t *testing.T) {
	tests := []struct {
		name string
		in   string // DATA body as sent, before the header and the final <CRLF>.<CRLF>
		want string // body as the customer's server must receive it (still dot-stuffed)
	}{
		{"CR.CR", "a\r.\rb\r\n", "a\r\n..\r\nb\r\n"},
		{"LF.LF", "a\n.\nb\r\n", "a\r\n..\r\nb\r\n"},
		{"CRLF.LF", "a\r\n.\nb\r\n", "a\r\n\r\nb\r\n"},
		{"LF.CRLF", "a\n.\r\nb\r\n", "a\r\n..\r\nb\r\n"},
		{"CR.CRLF", "a\r.\r\nb\r\n", "a\r\n..\r\nb\r\n"},
		{"CRLF.CR", "a\r\n.\rX\r\n", "a\r\n\r\nX\r\n"},
		{"CRCRLF stuffed", "a\r\r\n..b\r\n", "a\r\n..b\r\n"},
		{"CRs before LF", "a\r\r\r\nb\r\r\n\r\r\nc\r\n", "a\r\nb\r\n\r\nc\r\n"},
		{"CRs then not LF", "a\r\rb\r\r\n", "a\r\n\r\nb\r\n"},
		{"LF.CR mix", "a\n.\rb\n..c\r\n", "a\r\n..\r\nb\r\n...c\r\n"},
		{"bare LF lines", "one\ntwo\n.three\r\n", "one\r\ntwo\r\n..three\r\n"},
	}
	t.Run("normalize", func(t *testing.T) {
		n, sink := startRawNode(t, nil)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := len(sink.messages())
				c := dial(t, n.SMTPAddr())
				c.cmd(250, "MAIL FROM:<alice@sender.test>")
				c.cmd(250, "RCPT TO:<bob@example.org>")
				c.cmd(354, "DATA")
				c.raw(250, bareHeader+tc.in+".\r\n")
				msgs := sink.messages()
				if len(msgs) != before+1 {
					t.Fatalf("customer server got %d messages, want 1", len(msgs)-before)
				}
				got := msgs[before]
				checkCRLFStuffed(t, got)
				if body := stripReceived(t, got); string(body) != bareHeader+tc.want {
					t.Errorf("customer server got\n%q\nwant\n%q", body, bareHeader+tc.want)
				}
			})
		}
		t.Run("BDAT", func(t *testing.T) {
			before := len(sink.messages())
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			chunk := bareHeader + "a\r.\rb\n.\nc\r\n.\r\nd\r\n"
			c.raw(250, fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
			msgs := sink.messages()
			if len(msgs) != before+1 {
				t.Fatalf("customer server got %d messages, want 1", len(msgs)-before)
			}
			checkCRLFStuffed(t, msgs[before])
			want := bareHeader + "a\r\n..\r\nb\r\n..\r\nc\r\n..\r\nd\r\n"
			if body := stripReceived(t, msgs[before]); string(body) != want {
				t.Errorf("customer server got\n%q\nwant\n%q", body, want)
			}
		})
	})
	t.Run("reject", func(t *testing.T) {
		n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.BareNewline = "reject" })
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c := dial(t, n.SMTPAddr())
				c.cmd(250, "MAIL FROM:<alice@sender.test>")
				c.cmd(250, "RCPT TO:<bob@example.org>")
				c.cmd(354, "DATA")
				if msg := c.raw(550, bareHeader+tc.in+".\r\n"); !strings.HasPrefix(msg, "5.5.2") {
					t.Errorf("reply %q, want 5.5.2", msg)
				}
			})
		}
		if got := sink.messages(); len(got) != 0 {
			t.Errorf("refused messages reached the customer server: %q", got)
		}
		// A clean message still goes through.
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.data(250, testMessage)
	})
}

// TestControlLedDotLinesAreStuffed: a line of a dot and control
// characters ("\x00.") is data to us and to any RFC 5321 server, but some
// servers drop NULs and other controls before they look for the end of
// data (SEC Consult's SMTP smuggling research found <CRLF>\x00.<CRLF>
// taken for it): relayed as sent, the rest of the body ran there as
// commands, a second message the scan never saw. Such a line leaves with a
// leading dot, which a conforming server removes again: the message
// arrives as sent.
func TestControlLedDotLinesAreStuffed(t *testing.T) {
	n, sink := startRawNode(t, nil)
	smuggled := "MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\npay\r\n"
	for _, line := range []string{"\x00.", "\x00\x00.\x00", "\x01.", "\x0b.\x7f", "\x7f."} {
		t.Run(fmt.Sprintf("%q", line), func(t *testing.T) {
			body := bareHeader + "a\r\n" + line + "\r\n" + smuggled + line + "\r\nend\r\n"
			got := stripReceived(t, relayOne(t, n, sink, "", body))
			checkCRLFStuffed(t, got)
			for _, l := range strings.Split(string(got), "\r\n") {
				if strings.Map(dropControl, l) == "." {
					t.Errorf("line %q reached the customer server: \".\" to a server that drops controls", l)
				}
			}
			// A conforming server removes the leading dot of each line.
			var unstuffed []string
			for _, l := range strings.Split(string(got), "\r\n") {
				unstuffed = append(unstuffed, strings.TrimPrefix(l, "."))
			}
			if u := strings.Join(unstuffed, "\r\n"); u != body {
				t.Errorf("unstuffed, the customer server reads\n%q\nwant\n%q", u, body)
			}
		})
	}
}

// dropControl drops what some servers drop from a line before they compare
// it with the end of data: C0 controls but HT, CR and LF, and DEL.
func dropControl(r rune) rune {
	if r < 0x20 && r != '\t' && r != '\r' && r != '\n' || r == 0x7f {
		return -1
	}
	return r
}

// TestCRCRLFLinesKeepTheirHeader: a client that converts CRLF to CRLF
// again (PHP's mail() on some systems, a mail library on Windows) ends every
// line with CR CR LF. Postfix reads the CRs before a LF as part of the line
// end; read as a bare CR and a CRLF, each made an empty line, so the
// header ended after its first field and the customer got Subject and
// MIME fields as body text.
func TestCRCRLFLinesKeepTheirHeader(t *testing.T) {
	n, sink := startRawNode(t, nil)
	msg := "From: a@sender.test\r\nTo: bob@example.org\r\nSubject: invoice\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello Bob,\r\nsee you.\r\n"
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.cmd(354, "DATA")
	c.raw(250, strings.ReplaceAll(msg, "\r\n", "\r\r\n")+".\r\n")
	msgs := sink.messages()
	if len(msgs) != 1 {
		t.Fatalf("customer server got %d messages, want 1", len(msgs))
	}
	checkCRLFStuffed(t, msgs[0])
	if got := stripReceived(t, msgs[0]); string(got) != msg {
		t.Errorf("customer server got\n%q\nwant\n%q", got, msg)
	}
}

func TestHostileHELOGivesCleanFoldedReceived(t *testing.T) {
	n, sink := startRawNode(t, nil)
	c := dialUnintroduced(t, n.SMTPAddr())
	helo := "bad\x0b\x7f\u0085\x01host" + strings.Repeat("a", 5000)
	c.raw(250, "EHLO "+helo+"\r\n")
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(250, testMessage)
	msgs := sink.messages()
	if len(msgs) != 1 {
		t.Fatalf("customer server got %d messages", len(msgs))
	}
	head, _, _ := bytes.Cut(msgs[0], []byte("\r\nFrom: "))
	field := string(head)
	for i, line := range strings.Split(field, "\r\n") {
		if len(line) > 998 {
			t.Errorf("Received line %d is %d octets", i, len(line))
		}
		if i > 0 && !strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, " ") {
			t.Errorf("Received line %d is not a continuation: %q", i, line[:min(len(line), 40)])
		}
	}
	for _, r := range strings.ReplaceAll(field, "\r\n", "") {
		if r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			t.Fatalf("control character %U in Received", r)
		}
	}
	unfolded := strings.NewReplacer("\r\n\t", " ", "\r\n ", " ").Replace(field)
	if !strings.Contains(unfolded, "from bad????host"+strings.Repeat("a", 255-len("bad????host"))+" ([127.0.0.1])") {
		t.Errorf("Received does not name the sanitised, capped HELO:\n%s", field)
	}
}

// TestReceivedNamesTheNegotiatedProtocol: our Received field says what
// the client negotiated (RFC 3848, RFC 6531 §3.7.4), not what we offer: a
// HELO client spoke SMTP.
func TestReceivedNamesTheNegotiatedProtocol(t *testing.T) {
	n, sink := startRawNode(t, nil)
	for _, tc := range []struct{ greeting, mail, want string }{
		{"HELO client.sender.test", "MAIL FROM:<alice@sender.test>", " with SMTP id "},
		{"EHLO client.sender.test", "MAIL FROM:<alice@sender.test>", " with ESMTP id "},
		{"EHLO client.sender.test", "MAIL FROM:<alice@sender.test> SMTPUTF8", " with UTF8SMTP id "},
	} {
		t.Run(tc.want, func(t *testing.T) {
			before := len(sink.messages())
			c := dialUnintroduced(t, n.SMTPAddr())
			c.cmd(250, "%s", tc.greeting)
			c.cmd(250, "%s", tc.mail)
			c.cmd(250, "RCPT TO:<bob@example.org>")
			c.data(250, testMessage)
			msgs := sink.messages()
			if len(msgs) != before+1 {
				t.Fatalf("customer server got %d messages, want 1", len(msgs)-before)
			}
			field, _, _ := strings.Cut(string(msgs[before]), "\r\nFrom: ")
			if value := strings.NewReplacer("\r\n\t", " ", "\r\n ", " ").Replace(field); !strings.Contains(value, tc.want) {
				t.Errorf("Received: %s\nwant %q", value, tc.want)
			}
		})
	}
}

// TestHELOCannotBreakReceived: a HELO holding a character that has a
// meaning in a Received field (a comment's parenthesis, the ';' before the
// date, a quote, a backslash, an angle or square bracket) left our trace
// field unparsable: "from x( ([127.0.0.1]) by ..." opens a comment that
// swallows the client's address, our name and the date, so a customer's
// filter reading the trace found neither. Such characters become '?'; an
// address literal keeps its brackets.
func TestHELOCannotBreakReceived(t *testing.T) {
	n, sink := startRawNode(t, nil)
	for _, tc := range []struct{ helo, want string }{
		{"x(", "x?"},
		{"x)", "x?"},
		{"(x", "?x"},
		{"x;", "x?"},
		{`"x;y"`, "?x?y?"},
		{`x\`, "x?"},
		{"<x>", "?x?"},
		{"[x", "?x"},
		{"x]", "x?"},
		{"[1[2]", "?1?2?"},
		{"[192.0.2.1]", "[192.0.2.1]"},
		{"[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]"},
		{"mx-1_a.sender.test", "mx-1_a.sender.test"},
	} {
		t.Run(tc.helo, func(t *testing.T) {
			field, _, _ := strings.Cut(string(relayOne(t, n, sink, tc.helo, testMessage)), "\r\nFrom: ")
			value := strings.NewReplacer("\r\n\t", " ", "\r\n ", " ").Replace(strings.TrimPrefix(field, "Received: "))
			if want := "from " + tc.want + " ([127.0.0.1]) by "; !strings.HasPrefix(value, want) {
				t.Errorf("Received: %s\nwant it to start %q", value, want)
			}
			if strings.Count(value, ";") != 1 || strings.Count(value, "(") != strings.Count(value, ")") {
				t.Errorf("Received is not one field with its date: %s", value)
			}
		})
	}
}

func TestTooManyHopsRefusedNotRelayed(t *testing.T) {
	n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.MaxHops = 5 })
	hops := func(k int) string {
		return strings.Repeat("Received: from a by b; Sun, 22 Nov 2026 10:00:00 +0000\r\n", k) + testMessage
	}
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	if msg := c.data(554, hops(6)); !strings.HasPrefix(msg, "5.4.6") {
		t.Errorf("reply %q, want 5.4.6", msg)
	}
	if got := sink.messages(); len(got) != 0 {
		t.Fatalf("looping message relayed")
	}
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(250, hops(5))
	if got := sink.messages(); len(got) != 1 {
		t.Fatalf("message at the hop limit not relayed")
	}
}

func TestDefaultMaxHops(t *testing.T) {
	if got := config.Default().SMTP.MaxHops; got != 50 {
		t.Errorf("smtp.max_hops default %d, want 50", got)
	}
}

func TestUnknownRecipientBudget(t *testing.T) {
	n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.MaxUnknownRecipients = 3 })
	sink.refuseRcpt("gone@example.org", "550 5.1.1 no such user")
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(550, "RCPT TO:<a@unknown.test>")
	c.cmd(550, "RCPT TO:<gone@example.org>")
	c.cmd(250, "RSET") // the budget is per session, not per transaction
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>") // accepted recipients do not count
	c.cmd(550, "RCPT TO:<b@unknown.test>")
	if msg := c.cmd(421, "RCPT TO:<bob@example.org>"); !strings.HasPrefix(msg, "4.7.0") {
		t.Errorf("reply %q, want 4.7.0", msg)
	}
	if _, err := c.c.R.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after 421 (read: %v)", err)
	}
}

// TestHarvestAcrossRSET: a harvester pipelines MAIL, RCPT and RSET, one
// guess a transaction, every guess forwarded to the customer's server.
// The session's budget and the client's must hold across the RSETs, and
// count the customer's server's 4xx too: a server that verifies recipients
// (Postfix's reject_unverified_recipient) answers an unknown one 450 4.1.1,
// which counted against nothing, so the guesses were forwarded and answered
// without limit. A refusal that says nothing of mailboxes (greylisting, a
// policy's 5.7.1) spends the session's budget only.
func TestHarvestAcrossRSET(t *testing.T) {
	const guesses = 8
	for _, tc := range []struct {
		name    string
		reply   string // the customer's server's to every guess
		session int    // smtp.max_unknown_recipients
		client  int    // smtp.client_unknown_recipients
		// answered is how many guesses are answered (and forwarded)
		// before 421; guesses when none is.
		answered int
	}{
		{"session budget, 550 5.1.1", "550 5.1.1 no such user", 3, 0, 3},
		{"session budget, 450 4.1.1", "450 4.1.1 unverified address", 3, 0, 3},
		{"session budget, greylisted", "450 4.7.1 greylisted", 3, 0, 3},
		{"client budget, 550 5.1.1", "550 5.1.1 no such user", 100, 3, 3},
		{"client budget, 450 4.1.1", "450 4.1.1 unverified address", 100, 3, 3},
		{"client budget, greylisted", "450 4.7.1 greylisted", 100, 3, guesses},
		// A server without enhanced codes may mean "no such user".
		{"client budget, 550 without a code", "550 no such user", 100, 3, 3},
		// A policy refusal says nothing of mailboxes either: a customer's
		// Postfix refusing a sender at RCPT (smtpd_delay_reject), or every
		// recipient while its relay_domains misses the domain, spent the
		// client's budget, and a big provider's outbound address was
		// answered 421 for every customer's mail.
		{"session budget, policy", "554 5.7.1 Relay access denied", 3, 0, 3},
		{"client budget, policy", "554 5.7.1 Relay access denied", 100, 3, guesses},
		// "Too many recipients" to a transaction's first recipient is no
		// full transaction (TestCustomerRecipientLimit): a server that
		// answers it so (a recipient rate limit) has each guess forwarded
		// and answered, which the session's budget bounds.
		{"session budget, too many recipients", "452 4.5.3 too many recipients", 3, 0, 3},
		{"client budget, too many recipients", "452 4.5.3 too many recipients", 100, 3, guesses},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, sink := startRawNode(t, func(c *config.Config) {
				c.SMTP.MaxUnknownRecipients = tc.session
				c.SMTP.ClientUnknownRecipients = tc.client
			})
			var pipeline strings.Builder
			for i := range guesses {
				sink.refuseRcpt(fmt.Sprintf("guess%d@example.org", i), tc.reply)
				fmt.Fprintf(&pipeline, "MAIL FROM:<mallory@sender.test>\r\nRCPT TO:<guess%d@example.org>\r\nRSET\r\n", i)
			}
			c := dial(t, n.SMTPAddr())
			c.write(pipeline.String())
			code, _, _ := strings.Cut(tc.reply, " ")
			want, _ := strconv.Atoi(code)
			for range tc.answered {
				c.expect(250)
				c.expect(want)
				c.expect(250)
			}
			if tc.answered < guesses {
				c.expect(250)
				if msg := c.expect(421); !strings.HasPrefix(msg, "4.7.0") {
					t.Errorf("reply %q, want 4.7.0", msg)
				}
				// Closed with the rest of the write unread, the socket may
				// answer with a reset rather than an end.
				if _, err := c.c.R.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("connection still open after 421 (read: %v)", err)
				}
			}
			if got := sink.commands("RCPT"); len(got) != tc.answered {
				t.Errorf("customer's server was asked about %d recipients, want %d", len(got), tc.answered)
			}
		})
	}
}

// TestAbandonedTransactionBudget: MAIL, RCPT and RSET pipelined over and
// over had every RCPT forwarded to the customer's server without end (a
// pipelined RSET costs no round trip, so it is not junk to go-smtp). Past
// smtp.max_junk_commands such transactions the next MAIL gets 421 and the
// connection closes; an accepted message starts the count over.
func TestAbandonedTransactionBudget(t *testing.T) {
	const limit, rounds = 3, 6
	for _, tc := range []struct {
		name string
		// round is one abandoned transaction, written at once; replies
		// is how many replies it gets.
		round   string
		replies int
	}{
		{"RSET", "MAIL FROM:<mallory@sender.test>\r\nRCPT TO:<bob@example.org>\r\nRSET\r\n", 3},
		// A BDAT transfer given up before LAST is no message either.
		{"BDAT given up", "MAIL FROM:<mallory@sender.test>\r\nRCPT TO:<bob@example.org>\r\nBDAT 0\r\nRSET\r\n", 4},
		{"BDAT chunk given up", "MAIL FROM:<mallory@sender.test>\r\nRCPT TO:<bob@example.org>\r\nBDAT 4\r\nSubjRSET\r\n", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.MaxJunkCommands = limit })
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			c.cmd(250, "RSET")
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			c.data(250, "Subject: kept\r\n\r\nbody\r\n") // starts the count over
			c.write(strings.Repeat(tc.round, rounds))
			for range limit * tc.replies {
				c.expect(250)
			}
			if msg := c.expect(421); !strings.HasPrefix(msg, "4.7.0") {
				t.Errorf("reply %q, want 4.7.0", msg)
			}
			if _, err := c.c.R.ReadByte(); err != io.EOF {
				t.Errorf("connection still open after 421 (read: %v)", err)
			}
			if got := sink.commands("RCPT"); len(got) != 2+limit {
				t.Errorf("customer's server was sent %d RCPTs, want %d", len(got), 2+limit)
			}
		})
	}
}

// TestJunkCommandBudget: a client that keeps its connection with commands
// that move no mail is shown out after smtp.max_junk_commands of them; an
// accepted message starts the count over. Without the limit a NOOP inside
// every command timeout held a connection slot for ever.
func TestJunkCommandBudget(t *testing.T) {
	n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.MaxJunkCommands = 3 })
	c := dial(t, n.SMTPAddr()) // EHLO is the first
	c.cmd(250, "NOOP")
	c.cmd(250, "RSET")
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(250, "Subject: kept\r\n\r\nbody\r\n")
	c.cmd(250, "NOOP")
	c.cmd(250, "EHLO client.sender.test")
	c.cmd(252, "VRFY bob")
	if msg := c.cmd(421, "NOOP"); !strings.HasPrefix(msg, "4.7.0") {
		t.Errorf("reply %q, want 4.7.0", msg)
	}
	if _, err := c.c.R.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after 421 (read: %v)", err)
	}
	if got := sink.messages(); len(got) != 1 {
		t.Errorf("delivered %d messages, want 1", len(got))
	}
	if got := metrictest.Counter(t, n.metrics, "mxgrid_smtp_sessions_closed_by_limit_total", "junk_commands"); got != 1 {
		t.Errorf("sessions closed for junk commands: %v, want 1", got)
	}
}

// TestRefusedCommandsCountAsJunk: commands refused (a bad address, a MAIL
// nested in a transaction, DATA or BDAT without a recipient) move no mail,
// so they count against smtp.max_junk_commands like NOOP. Before, one of
// them every few minutes (each reply restarted command_timeout) held a
// connection slot for ever, as NOOP did before the junk limit. They count
// pipelined too, as Postfix counts smtpd_hard_error_limit: free in a
// group, one write of 20,000 "RCPT TO:<a\x01b@...>" had each refused and
// logged, 20,000 log lines for 540 KB sent, write after write.
func TestRefusedCommandsCountAsJunk(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opening []string // accepted commands first
		refused string
		code    int
	}{
		{"bad sender", nil, "MAIL FROM:<alice@sender.test> X=1", 555},
		{"bad recipient", []string{"MAIL FROM:<alice@sender.test>"}, "RCPT TO:<bob@example.org", 501},
		{"control character in a recipient", []string{"MAIL FROM:<alice@sender.test>"}, "RCPT TO:<a\x01b@example.org>", 501},
		{"nested MAIL", []string{"MAIL FROM:<alice@sender.test>"}, "MAIL FROM:<alice@sender.test>", 503},
		{"DATA without a recipient", []string{"MAIL FROM:<alice@sender.test>"}, "DATA", 503},
		{"BDAT without a recipient", nil, "BDAT 0", 503},
	} {
		for _, pipelined := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/pipelined=%v", tc.name, pipelined), func(t *testing.T) {
				n, _ := startRawNode(t, func(c *config.Config) {
					c.SMTP.MaxJunkCommands = 3
					// So that DATA may stand in a group: what is tested is
					// the count, not the synchronisation check.
					c.SMTP.ForbidUnauthPipelining = !pipelined
				})
				c := dial(t, n.SMTPAddr()) // EHLO is the first
				for _, cmd := range tc.opening {
					c.cmd(250, "%s", cmd)
				}
				if pipelined {
					c.write(strings.Repeat(tc.refused+"\r\n", 10))
					for range 3 {
						c.expect(tc.code)
					}
				} else {
					c.cmd(tc.code, "%s", tc.refused)
					c.cmd(tc.code, "%s", tc.refused)
					c.cmd(tc.code, "%s", tc.refused) // the fourth: past the limit
				}
				if msg := c.expect(421); !strings.HasPrefix(msg, "4.7.0") {
					t.Errorf("reply %q, want 4.7.0", msg)
				}
				// Closed with the rest of the write unread, the socket may
				// answer with a reset rather than an end.
				if _, err := c.c.R.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("connection still open after 421 (read: %v)", err)
				}
				if got := metrictest.Counter(t, n.metrics, "mxgrid_smtp_sessions_closed_by_limit_total", "junk_commands"); got != 1 {
					t.Errorf("sessions closed for junk commands: %v, want 1", got)
				}
			})
		}
	}
}

// TestDeferredRecipientsInAGroupAreFree: a recipient deferred to another
// transaction (452 4.5.3: another route, past max_recipients) is flow
// control a sender meets in bulk when it pipelines a long list, so it
// does not count against smtp.max_junk_commands as refusals do: shown
// out, the message to the recipients accepted would be lost with it, on
// every retry.
func TestDeferredRecipientsInAGroupAreFree(t *testing.T) {
	other := startRawSink(t)
	n, sink := startRawNode(t, func(c *config.Config) {
		c.SMTP.MaxJunkCommands = 3
		c.SMTP.MaxRecipients = 2
		c.Domains = append(c.Domains, smtptest.Domain("other.test", other.Addr))
	})
	c := dial(t, n.SMTPAddr())
	var group strings.Builder
	group.WriteString("MAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@example.org>\r\n")
	for i := range 10 {
		fmt.Fprintf(&group, "RCPT TO:<user%d@other.test>\r\n", i)
	}
	group.WriteString("RCPT TO:<alice@example.org>\r\nRCPT TO:<carol@example.org>\r\nRCPT TO:<dave@example.org>\r\n")
	c.write(group.String())
	c.expect(250)
	c.expect(250)
	for range 10 { // another route
		c.expect(452)
	}
	c.expect(250)
	c.expect(452) // past max_recipients
	c.expect(452)
	c.data(250, testMessage)
	if got := len(sink.messages()); got != 1 {
		t.Errorf("delivered %d messages, want 1", got)
	}
	if got := sink.commands("RCPT"); len(got) != 2 {
		t.Errorf("customer's server got RCPTs %q, want bob and alice", got)
	}
}

// TestDeferredRecipientsFreeUpToTheOvershootLimit: deferrals pipelined
// are free only up to go-smtp's MaxFreeDeferrals a session, as Postfix's
// smtpd_recipient_overshoot_limit; past it each counts as junk, and the
// session is shown out. Without the cap a client pipelining recipients
// it knew would be deferred kept its connection, and our lookups, for
// ever. The junk limit is as high as the free deferrals, and more than
// both are sent: a write that reaches the node in pieces has some of its
// deferrals read as waited for (counted) rather than pipelined, however
// few, so only the cap can take the count past the limit.
func TestDeferredRecipientsFreeUpToTheOvershootLimit(t *testing.T) {
	const limit = smtp.MaxFreeDeferrals
	n, _ := startRawNode(t, func(c *config.Config) {
		c.SMTP.MaxJunkCommands = limit
		c.SMTP.MaxRecipients = 1
	})
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	const sent = smtp.MaxFreeDeferrals + limit + 500
	var group strings.Builder
	for i := range sent {
		fmt.Fprintf(&group, "RCPT TO:<user%d@example.org>\r\n", i)
	}
	c.write(group.String())
	deferred := 0
	for {
		code, msg, err := c.c.ReadResponse(0)
		if code == 452 {
			deferred++
			continue
		}
		// Closed with the rest of the write unread, the node's socket
		// answers with a reset, which may take the 421 with it.
		if code != 421 && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("after %d deferrals: %d %s (%v), want 452s then 421 or the end", deferred, code, msg, err)
		}
		break
	}
	if deferred <= limit || deferred >= sent {
		t.Errorf("shown out after %d deferrals, want more than %d and fewer than the %d sent", deferred, limit, sent)
	}
}

// TestCustomerRecipientLimit: a customer's server that takes fewer
// recipients a transaction than the node (Postfix's smtpd_recipient_limit,
// an Exchange connector's) answers the rest "452 4.5.3 too many
// recipients", or RFC 821's "552 5.5.3", which RFC 5321 §4.5.3.1.10 says
// to read as 452. That says nothing about the mailboxes: the sender sends
// them in another transaction. Counted as refused recipients, a sender
// pipelining more recipients than the limit plus smtp.max_unknown_recipients
// (as Postfix writes them all) was shown out with 421 before its DATA, the
// accepted recipients' message with it, on every retry, so it was never
// delivered. Once the server is full, the rest of the transaction's
// recipients are answered its reply without being sent on.
func TestCustomerRecipientLimit(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
	}{
		{"452 4.5.3", "452 4.5.3 Error: too many recipients"},
		{"RFC 821's 552", "552 5.5.3 Too many recipients"},
		// Exim before enhanced codes, and others: the text says it.
		{"without an enhanced code", "452 too many recipients"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.MaxUnknownRecipients = 3 })
			sink.offerPipelining()
			sink.limitRecipients(2, tc.reply)
			c := dial(t, n.SMTPAddr())
			// Two transactions of eight recipients, each written in one
			// group as Postfix writes them: 2 x 6 over the limit, well past
			// the unknown-recipient budget of 3.
			for round := range 2 {
				var group strings.Builder
				group.WriteString("MAIL FROM:<alice@sender.test>\r\n")
				for i := range 8 {
					fmt.Fprintf(&group, "RCPT TO:<user%d-%d@example.org>\r\n", round, i)
				}
				c.write(group.String())
				c.expect(250)
				c.expect(250)
				c.expect(250)
				for range 6 {
					// 452 whatever the server said: a 552 bounced the
					// recipients a new transaction would have delivered.
					if msg := c.expect(452); !strings.HasPrefix(msg, "4.5.3 ") {
						t.Errorf("round %d: reply %q, want 4.5.3", round, msg)
					}
				}
				c.data(250, testMessage)
			}
			if got := len(sink.messages()); got != 2 {
				t.Errorf("customer's server got %d messages, want 2", got)
			}
			// Past the server's first refusal nothing more is asked of it:
			// two accepted and one refused each round.
			if got := sink.commands("RCPT"); len(got) != 6 {
				t.Errorf("customer's server got %d RCPTs, want 6: %q", len(got), got)
			}
			// Nor is the refused recipient remembered as refused: a new
			// transaction takes it.
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<user0-2@example.org>")
			c.data(250, testMessage)
		})
	}
	// A full transaction whose session was parked (the sender idled) is
	// not sent again for a recipient it would refuse unsent anyway: only
	// its message sends it again.
	t.Run("parked", func(t *testing.T) {
		n, sink := startRawNode(t, func(c *config.Config) { c.Relay.ReleaseAfterIdle = 50 * time.Millisecond })
		sink.limitRecipients(1, "452 4.5.3 Error: too many recipients")
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.cmd(452, "RCPT TO:<carol@example.org>")
		time.Sleep(300 * time.Millisecond)
		c.cmd(452, "RCPT TO:<dave@example.org>")
		if got := sink.commands("MAIL"); len(got) != 1 {
			t.Errorf("customer's server got %d MAILs before the message, want 1", len(got))
		}
		c.data(250, testMessage)
		if got := len(sink.messages()); got != 1 {
			t.Errorf("customer's server got %d messages, want 1", got)
		}
	})
}

// TestDuplicateRecipientOnce: a recipient given twice in a transaction
// (in another case, or quoted) is accepted and reaches the customer's
// server once, so it is delivered, tracked and quarantined once.
func TestDuplicateRecipientOnce(t *testing.T) {
	n, sink := startRawNode(t, nil)
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.cmd(250, "RCPT TO:<Bob@EXAMPLE.org>")
	c.cmd(250, `RCPT TO:<"bob"@example.org>`)
	c.cmd(250, "RCPT TO:<carol@example.org>")
	c.data(250, "Subject: once\r\n\r\nbody\r\n")
	if got := sink.commands("RCPT"); len(got) != 2 {
		t.Errorf("customer's server got %q, want bob and carol once each", got)
	}
}

// TestDuplicateFoldsASCIIOnly: a recipient is a duplicate of one already
// accepted only under the folding the recipient list uses (ASCII case). A
// Kelvin sign or a long s folds into ASCII under Unicode rules, and such a
// "duplicate" was answered 250 without reaching the customer's server: the
// sender told its mail was delivered to a mailbox the node refuses.
func TestDuplicateFoldsASCIIOnly(t *testing.T) {
	n, sink := startRawNode(t, func(c *config.Config) { c.Domains[0].Recipients = []string{"kate", "postmaster"} })
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test> SMTPUTF8")
	c.cmd(250, "RCPT TO:<kate@example.org>")
	c.cmd(250, "RCPT TO:<postmaster@example.org>")
	for _, rcpt := range []string{"\u212Aate@example.org", "po\u017Ftma\u017Fter@example.org"} {
		if msg := c.cmd(550, "RCPT TO:<%s>", rcpt); !strings.HasPrefix(msg, "5.1.1") {
			t.Errorf("RCPT TO:<%s>: %q, want 5.1.1", rcpt, msg)
		}
	}
	c.cmd(250, "RCPT TO:<KATE@example.org>")
	c.data(250, "Subject: once\r\n\r\nbody\r\n")
	if got := sink.commands("RCPT"); len(got) != 2 {
		t.Errorf("customer's server got %q, want kate and postmaster once each", got)
	}
}

// TestPostmaster: RCPT TO:<postmaster>, the one recipient without a domain
// (RFC 5321 §4.5.1), goes to smtp.postmaster and from there to that
// domain's server like any recipient; with none set it is a refused
// mailbox (550 5.1.1), not a syntax error.
func TestPostmaster(t *testing.T) {
	n, _ := startRawNode(t, nil)
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	if msg := c.cmd(550, "RCPT TO:<Postmaster>"); !strings.HasPrefix(msg, "5.1.1") {
		t.Errorf("reply %q, want 5.1.1", msg)
	}

	n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.Postmaster = "abuse-desk@example.org" })
	c = dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<postmaster>")
	c.data(250, "Subject: to the postmaster\r\n\r\nbody\r\n")
	if got := sink.commands("RCPT"); len(got) != 1 || got[0] != "RCPT TO:<abuse-desk@example.org>" {
		t.Errorf("customer's server got %q, want the configured postmaster", got)
	}
}

// TestClientUnknownBudget: a harvester that reconnects for a fresh
// per-session budget meets the client's: once its address has had
// smtp.client_unknown_recipients mailboxes refused, every RCPT from it is
// answered 421, a known one too (250 there would still say which mailboxes
// exist), in this session and the next. Unknown domains do not count.
func TestClientUnknownBudget(t *testing.T) {
	n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.ClientUnknownRecipients = 3 })
	for _, gone := range []string{"gone1", "gone2", "gone3"} {
		sink.refuseRcpt(gone+"@example.org", "550 5.1.1 no such user")
	}
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<mallory@sender.test>")
	c.cmd(550, "RCPT TO:<gone1@example.org>")
	for i := range 5 {
		c.cmd(550, "RCPT TO:<x%d@unknown.test>", i)
	}
	c.cmd(550, "RCPT TO:<gone2@example.org>")
	c.cmd(250, "RCPT TO:<bob@example.org>")

	c = dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<mallory@sender.test>")
	c.cmd(550, "RCPT TO:<gone3@example.org>")
	if msg := c.cmd(421, "RCPT TO:<bob@example.org>"); !strings.HasPrefix(msg, "4.7.0") {
		t.Errorf("reply %q, want 4.7.0", msg)
	}
	if _, err := c.c.R.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after 421 (read: %v)", err)
	}
	c = dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(421, "RCPT TO:<bob@example.org>")
}

// TestNothingRunsAfterA421: a client that pipelines its message behind
// the recipient answered 421 (closing) gets nothing delivered, as it was
// told. A CHUNKING client sends BDAT and its chunk in the same group as the
// RCPTs; the node used to close only at its next read of the connection,
// so the chunk, already read, went on to be scanned and relayed after the
// 421, and the sender's retry would deliver it twice.
func TestNothingRunsAfterA421(t *testing.T) {
	n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.MaxUnknownRecipients = 1 })
	c := dial(t, n.SMTPAddr())
	msg := "Subject: after 421\r\n\r\nbody\r\n"
	c.raw(250, "MAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<a@unknown.test>\r\n"+
		"RCPT TO:<carol@example.org>\r\n"+fmt.Sprintf("BDAT %d LAST\r\n%s", len(msg), msg))
	c.expect(250)
	c.expect(550)
	c.expect(421)
	if _, err := c.c.R.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after 421 (read: %v)", err)
	}
	if got := sink.messages(); len(got) != 0 {
		t.Errorf("delivered after the sender was told 421: %q", got)
	}
}

// TestBDATPastTheSizeLimit: a chunk that takes a BDAT transfer past
// max_message_bytes is refused (552 5.3.4) and skipped, the transfer ends
// with nothing relayed, and the session goes on. The transaction is
// counted and tracked as too large: the message's goroutine used to hear
// only that the transfer was abandoned, and the message log said the body
// never arrived.
func TestBDATPastTheSizeLimit(t *testing.T) {
	n, sink := startRawNode(t, func(c *config.Config) { c.SMTP.MaxMessageBytes = 4096 })
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.raw(250, "BDAT 20\r\nSubject: too big\r\n\r\n")
	if msg := c.raw(552, "BDAT 5000 LAST\r\n"+strings.Repeat("x", 5000)); !strings.HasPrefix(msg, "5.3.4") {
		t.Errorf("reply %q, want 5.3.4", msg)
	}
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	chunk := "Subject: small\r\n\r\nbody\r\n"
	c.raw(250, fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
	if got := sink.messages(); len(got) != 1 || !strings.Contains(string(got[0]), "Subject: small") {
		t.Errorf("delivered %q, want the small message alone", got)
	}
	if got := metrictest.Counter(t, n.metrics, "mxgrid_smtp_transactions_total", "too_large"); got != 1 {
		t.Errorf("transactions counted too large: %v, want 1", got)
	}
}

// TestCutShortBDATIsNotDelivered: a BDAT LAST chunk that ends with the
// connection, before its declared size, is not a message. go-smtp took
// the end of the connection for the end of the chunk, and the truncated
// message was scanned and delivered; the sender, never answered, would
// send it again.
func TestCutShortBDATIsNotDelivered(t *testing.T) {
	n, sink := startRawNode(t, nil)
	conn, err := net.DialTimeout("tcp", n.SMTPAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := greet(t, conn)
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	fmt.Fprint(c.c.W, "BDAT 500 LAST\r\nSubject: cut short\r\n\r\nthe first part")
	c.c.W.Flush()
	conn.(*net.TCPConn).CloseWrite()
	c.expect(421)
	time.Sleep(200 * time.Millisecond) // a delivery would be under way
	if got := sink.messages(); len(got) != 0 {
		t.Errorf("a cut-short chunk was delivered: %q", got)
	}
}

func TestNegativeCache(t *testing.T) {
	for _, tc := range []struct {
		name      string
		memcached func(t *testing.T) string
	}{
		{"local", nil},
		{"memcached down", func(t *testing.T) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			return l.Addr().String()
		}},
		{"memcached hung", func(t *testing.T) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var conns []net.Conn // accepted, never answered
			done := make(chan struct{})
			t.Cleanup(func() {
				l.Close()
				<-done
				for _, c := range conns {
					c.Close()
				}
			})
			go func() {
				defer close(done)
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					conns = append(conns, c)
				}
			}()
			return l.Addr().String()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, sink := startRawNode(t, func(c *config.Config) {
				if tc.memcached != nil {
					c.SMTP.NegativeCacheMemcached = []string{tc.memcached(t)}
				}
			})
			sink.refuseRcpt("gone@example.org", "550 5.1.1 no such user")
			sink.refuseRcpt("policy@example.org", "550 5.7.1 not from you")
			for i := range 3 {
				c := dial(t, n.SMTPAddr())
				c.cmd(250, "MAIL FROM:<alice@sender.test>")
				start := time.Now()
				if msg := c.cmd(550, "RCPT TO:<gone@example.org>"); !strings.Contains(msg, "5.1.1 no such user") {
					t.Errorf("session %d: reply %q", i, msg)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("session %d: RCPT took %v", i, d)
				}
				c.cmd(550, "RCPT TO:<policy@example.org>")
				c.cmd(250, "RCPT TO:<bob@example.org>")
			}
			if got := sink.commands("RCPT TO:<gone@"); len(got) != 1 {
				t.Errorf("customer server asked %d times about a refused recipient, want 1", len(got))
			}
			if got := sink.commands("RCPT TO:<policy@"); len(got) != 3 {
				t.Errorf("policy refusal was cached: customer server asked %d times, want 3", len(got))
			}
			if tc.memcached != nil {
				lvl, conds := n.Health().Report()
				if lvl.String() != "degraded" || !strings.Contains(fmt.Sprint(conds), "negative_cache") {
					t.Errorf("health %v %+v, want degraded negative_cache", lvl, conds)
				}
			}
		})
	}
}

// A sender the customer's server refuses is refused at each RCPT with the
// server's own reply, and that refusal is not remembered against the
// recipient: another sender reaches it. With PIPELINING the refused MAIL
// travels with the RCPT, whose reply then speaks only about the sequence.
func TestRefusedSenderIsNotARefusedRecipient(t *testing.T) {
	for _, pipelining := range []bool{false, true} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			n, sink := startRawNode(t, nil)
			if pipelining {
				sink.offerPipelining()
			}
			// 5.1.1, which some servers give a sender too: the negative cache
			// would remember it for the recipient.
			sink.refuseSender("blocked@sender.test", "550 5.1.1 sender blocked here")
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<blocked@sender.test>")
			for range 2 {
				if msg := c.cmd(550, "RCPT TO:<bob@example.org>"); !strings.Contains(msg, "sender blocked here") {
					t.Errorf("reply %q, want the customer server's", msg)
				}
			}
			c.cmd(250, "RSET")
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			c.data(250, testMessage)
			if got := sink.commands("MAIL FROM:<blocked@"); len(got) != 2 {
				t.Errorf("refused MAIL sent %d times, want once per RCPT", len(got))
			}
			if got := len(sink.messages()); got != 1 {
				t.Errorf("%d messages delivered, want 1", got)
			}
		})
	}
}

// TestNestedMailKeepsTheTransaction: a second MAIL inside a transaction
// is refused and the first goes on, to its recipients, with its sender. It
// once restarted the session while go-smtp kept the recipients, and DATA
// then panicked on a session without a domain (421 to the sender).
func TestNestedMailKeepsTheTransaction(t *testing.T) {
	n, sink := startRawNode(t, nil)
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.cmd(503, "MAIL FROM:<mallory@sender.test>")
	c.data(250, testMessage)
	if got := sink.commands("MAIL FROM:"); len(got) != 1 || checkEnvelopeLine(t, got[0]) != "alice@sender.test" {
		t.Errorf("downstream MAIL commands %q, want alice's alone", got)
	}
	if got := len(sink.messages()); got != 1 {
		t.Errorf("%d messages delivered, want 1", got)
	}
	c.cmd(250, "MAIL FROM:<mallory@sender.test>")
}

func TestNonASCIIAddressNeedsSMTPUTF8(t *testing.T) {
	n, sink := startRawNode(t, nil)
	c := dial(t, n.SMTPAddr())
	if msg := c.cmd(553, "MAIL FROM:<jürgen@sender.test>"); !strings.HasPrefix(msg, "5.6.7") {
		t.Errorf("reply %q, want 5.6.7", msg)
	}
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(553, "RCPT TO:<jürgen@example.org>")
	c.cmd(250, "RSET")
	c.cmd(250, "MAIL FROM:<jürgen@sender.test> SMTPUTF8")
	c.cmd(250, "RCPT TO:<ü@example.org>")
	mails := sink.commands("MAIL")
	if len(mails) != 1 || mails[0] != "MAIL FROM:<jürgen@sender.test> BODY=8BITMIME SMTPUTF8" {
		t.Errorf("downstream MAIL lines %q", mails)
	}
	if got := sink.commands("RCPT"); len(got) != 1 || got[0] != "RCPT TO:<ü@example.org>" {
		t.Errorf("downstream RCPT lines %q", got)
	}
}

// TestSMTPUTF8OnlyWhereNeeded: many senders ask for SMTPUTF8 on every
// message. To a customer's server without it, an ASCII envelope and a
// 7-bit message go without the parameter, as Postfix sends them (RFC 6531
// §3.4 forbids only what needs it); a non-ASCII address or an 8-bit
// message is refused 550 5.6.7 without reaching it. Before, the first
// RCPT of any such transaction was refused.
func TestSMTPUTF8OnlyWhereNeeded(t *testing.T) {
	n, sink := startRawNode(t, nil)
	sink.withholdSMTPUTF8()
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test> SMTPUTF8")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	if msg := c.cmd(550, "RCPT TO:<ü@example.org>"); !strings.HasPrefix(msg, "5.6.7") {
		t.Errorf("non-ASCII recipient: %q, want 5.6.7", msg)
	}
	c.data(250, "From: alice@sender.test\r\nSubject: ascii\r\n\r\nplain\r\n")
	// Our refusal says nothing about the mailbox: it does not count
	// towards smtp.max_unknown_recipients (20), whose 21st closes.
	c.cmd(250, "MAIL FROM:<alice@sender.test> SMTPUTF8")
	for i := range 25 {
		c.cmd(550, "RCPT TO:<ü%d@example.org>", i)
	}
	c.cmd(250, "RSET")

	c.cmd(250, "MAIL FROM:<alice@sender.test> SMTPUTF8")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	if msg := c.data(550, "From: alice@sender.test\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n\r\nplain\r\n"); !strings.HasPrefix(msg, "5.6.7") {
		t.Errorf("UTF-8 header: %q, want 5.6.7", msg)
	}
	c.cmd(250, "MAIL FROM:<jürgen@sender.test> SMTPUTF8")
	if msg := c.cmd(550, "RCPT TO:<bob@example.org>"); !strings.HasPrefix(msg, "5.6.7") {
		t.Errorf("non-ASCII sender: %q, want 5.6.7", msg)
	}

	mails, rcpts := sink.commands("MAIL"), sink.commands("RCPT")
	for _, m := range mails {
		if strings.Contains(m, "SMTPUTF8") {
			t.Errorf("MAIL line %q: SMTPUTF8 sent to a server that does not offer it", m)
		}
	}
	if len(rcpts) != 2 || rcpts[0] != "RCPT TO:<bob@example.org>" || len(sink.messages()) != 1 {
		t.Errorf("downstream RCPT lines %q, %d messages; want bob twice, one message", rcpts, len(sink.messages()))
	}
}

// TestIDNDomainsGoAsALabels: a sender that asks for SMTPUTF8 because of a
// UTF-8 domain alone (info@bücher.example, ASCII local part, 7-bit header)
// needs nothing a customer's server without SMTPUTF8 lacks: the domain
// goes as its A-labels, built from the parsed domain, and the MAIL line
// without the parameter, as Postfix's SMTP client sends it. Before, every
// such sender's first RCPT was refused 550 5.6.7 and honest mail bounced.
// What does need SMTPUTF8 (a UTF-8 local part, a UTF-8 header field, a
// domain with no valid A-label) is refused with the same reply as before,
// and a server that offers SMTPUTF8 gets the sender as it came.
func TestIDNDomainsGoAsALabels(t *testing.T) {
	const (
		ascii    = "From: info@xn--bcher-kva.example\r\nSubject: hello\r\n\r\nplain\r\n"
		utf8Subj = "From: info@xn--bcher-kva.example\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n\r\nplain\r\n"
		aLabel   = "MAIL FROM:<info@xn--bcher-kva.example> BODY=8BITMIME"
	)
	for _, tc := range []struct {
		name string
		// utf8Down: the customer's server offers SMTPUTF8.
		utf8Down bool
		from, to string
		rcptCode int
		// msg is sent when the recipient is taken; dataCode answers it.
		msg      string
		dataCode int
		// mail and rcpt are the downstream's lines; none when "".
		mail, rcpt string
	}{
		{"IDN sender, ASCII message", false, "info@bücher.example", "bob@example.org", 250, ascii, 250,
			aLabel, "RCPT TO:<bob@example.org>"},
		// Case folds in the domain (UTS #46, as SPF read it), not in
		// the local part: that is the customer's server's to read.
		{"IDN sender in capitals", false, "INFO@BÜCHER.example", "bob@example.org", 250, ascii, 250,
			"MAIL FROM:<INFO@xn--bcher-kva.example> BODY=8BITMIME", "RCPT TO:<bob@example.org>"},
		// A provisioned IDN domain is one domain in every spelling, and
		// its recipients go as its A-labels either way.
		{"IDN recipient", false, "alice@sender.test", "bob@例え.example", 250, ascii, 250,
			"MAIL FROM:<alice@sender.test> BODY=8BITMIME", "RCPT TO:<bob@xn--r8jz45g.example>"},
		{"IDN recipient in capitals", false, "info@bücher.example", "bob@BÜCHER.example", 250, ascii, 250,
			aLabel, "RCPT TO:<bob@xn--bcher-kva.example>"},
		{"A-label recipient", false, "info@bücher.example", "bob@xn--bcher-kva.example", 250, ascii, 250,
			aLabel, "RCPT TO:<bob@xn--bcher-kva.example>"},
		// Refused before anything reaches the customer's server.
		{"UTF-8 sender local part", false, "jürgen@bücher.example", "bob@example.org", 550, "", 0, "", ""},
		{"UTF-8 recipient local part", false, "info@bücher.example", "jürgen@example.org", 550, "", 0, "", ""},
		// A label that starts with a combining mark: no A-label
		// (IDNA2008), so no downgrade either.
		{"invalid IDN sender domain", false, "info@\u0301bücher.example", "bob@example.org", 550, "", 0, "", ""},
		// RFC 6532 header: known only at the end of the data, refused
		// there, not delivered.
		{"UTF-8 Subject", false, "info@bücher.example", "bob@example.org", 250, utf8Subj, 550,
			aLabel, "RCPT TO:<bob@example.org>"},
		{"server with SMTPUTF8", true, "info@bücher.example", "bob@例え.example", 250, utf8Subj, 250,
			"MAIL FROM:<info@bücher.example> BODY=8BITMIME SMTPUTF8", "RCPT TO:<bob@xn--r8jz45g.example>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, sink := startRawNode(t, func(cfg *config.Config) {
				cfg.Domains = append(cfg.Domains,
					smtptest.Domain("bücher.example", cfg.Domains[len(cfg.Domains)-1].Route),
					smtptest.Domain("例え.example", cfg.Domains[len(cfg.Domains)-1].Route))
			})
			if !tc.utf8Down {
				sink.withholdSMTPUTF8()
			}
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<%s> SMTPUTF8", tc.from)
			if msg := c.cmd(tc.rcptCode, "RCPT TO:<%s>", tc.to); tc.rcptCode != 250 && !strings.HasPrefix(msg, "5.6.7") {
				t.Errorf("RCPT: %q, want 5.6.7", msg)
			}
			if tc.rcptCode == 250 {
				if msg := c.data(tc.dataCode, tc.msg); tc.dataCode != 250 && !strings.HasPrefix(msg, "5.6.7") {
					t.Errorf("DATA: %q, want 5.6.7", msg)
				}
			}
			c.cmd(221, "QUIT")
			for _, w := range []struct{ verb, want string }{{"MAIL", tc.mail}, {"RCPT", tc.rcpt}} {
				got := sink.commands(w.verb)
				if w.want == "" && len(got) != 0 || w.want != "" && (len(got) != 1 || got[0] != w.want) {
					t.Errorf("downstream %s lines %q, want %q", w.verb, got, w.want)
				}
				for _, l := range got {
					checkEnvelopeLine(t, l)
				}
			}
			want := 0
			if tc.dataCode == 250 {
				want = 1
			}
			if len(sink.messages()) != want {
				t.Errorf("%d messages delivered, want %d", len(sink.messages()), want)
			}
		})
	}
}

// A recipient domain in a form IDNA maps to a provisioned domain (full-width
// letters, the Kelvin sign for K, a U-label) is passed on as the domain's
// name: the customer's server gets the spelling it was provisioned with,
// and a second spelling of an accepted recipient is a duplicate.
func TestNonASCIIRecipientDomainPassedOnAsProvisioned(t *testing.T) {
	n, sink := startRawNode(t, nil)
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test> SMTPUTF8")
	c.cmd(250, "RCPT TO:<bob@ｅxample.org>")   // full-width e
	c.cmd(250, "RCPT TO:<bob@example.org>")   // the same mailbox
	c.cmd(250, "RCPT TO:<carol@EXAMPLE.org>") // ASCII: as typed
	if got := sink.commands("RCPT"); len(got) != 2 || got[0] != "RCPT TO:<bob@example.org>" || got[1] != "RCPT TO:<carol@EXAMPLE.org>" {
		t.Errorf("downstream RCPT lines %q, want bob@example.org once, then carol@EXAMPLE.org", got)
	}
	if v := metrictest.Counter(t, n.metrics, "mxgrid_smtp_recipients_total", "duplicate"); v != 1 {
		t.Errorf("duplicates counted %v, want 1", v)
	}
}

// TestAddressRefusalNamesItsReason: an address in an 8-bit charset
// (Latin-1, as old MTAs write it without SMTPUTF8) was answered "control
// character in address", which its sender could not find in it.
func TestAddressRefusalNamesItsReason(t *testing.T) {
	n, sink := startRawNode(t, nil)
	tests := []struct{ name, cmd, want string }{
		{name: "sender Latin-1", cmd: "MAIL FROM:<j\xfcrgen@sender.test>\r\n", want: "5.1.7 invalid UTF-8 in address"},
		{name: "sender control", cmd: "MAIL FROM:<a\x0bb@sender.test>\r\n", want: "5.1.7 control character in address"},
		{name: "recipient Latin-1", cmd: "RCPT TO:<b\xe4r@example.org>\r\n", want: "5.1.3 invalid UTF-8 in address"},
		{name: "recipient control", cmd: "RCPT TO:<\"b\x00r\"@example.org>\r\n", want: "5.1.3 control character in address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, n.SMTPAddr())
			if strings.HasPrefix(tc.cmd, "RCPT") {
				c.raw(250, "MAIL FROM:<alice@sender.test>\r\n")
			}
			if got := c.raw(501, tc.cmd); got != tc.want {
				t.Errorf("%q: reply %q, want %q", tc.cmd, got, tc.want)
			}
		})
	}
	if got := sink.commands("RCPT"); len(got) != 0 {
		t.Errorf("refused recipients reached the customer server: %q", got)
	}
}

// TestOneTenantsRefusalsDoNotSpendAnothersClientBudget: a tenant chooses
// the server its domain's mail goes to, and that server may refuse every
// recipient "550 5.1.1". A client's budget of refused mailboxes
// (smtp.client_unknown_recipients) was the client's across every tenant,
// so such a tenant had any sender it could make write to its domain (a
// big provider's outbound address, a partner's relay: one message with
// many recipients through its webmail) answered 421 for every other
// tenant's mail on the node, for as long as it kept that up. The budget
// is now the client's per customer: a harvester still meets it within the
// tenant it probes, and one tenant's refusals, honest or not, spend no
// other tenant's.
func TestOneTenantsRefusalsDoNotSpendAnothersClientBudget(t *testing.T) {
	hostile := startRawSink(t)
	victim := startRawSink(t)
	cfg := testConfig(t)
	cfg.SMTP.ClientUnknownRecipients = 3
	cfg.Domains = append(cfg.Domains, smtptest.Domain("hostile.test", hostile.Addr), smtptest.Domain("example.org", victim.Addr))
	deps := configDeps(t, cfg, nil)
	// Two tenants' domains: the config file's are the operator's
	// (customer 0), so the directory is made with the customers' ids.
	domains, err := cfg.StaticDomains()
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range domains {
		d.ID, d.CustomerID = int64(i+1), int64(i+1)
	}
	snap, err := tenant.NewSnapshot(1, domains)
	if err != nil {
		t.Fatal(err)
	}
	deps.Directory = tenant.NewDirectory(snap)
	n := startWith(t, cfg, deps)
	for i := range 4 {
		hostile.refuseRcpt(fmt.Sprintf("gone%d@hostile.test", i), "550 5.1.1 no such user")
	}

	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	for i := range 3 {
		c.cmd(550, "RCPT TO:<gone%d@hostile.test>", i)
	}
	// The client's budget with the hostile tenant is spent...
	c = dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(421, "RCPT TO:<gone3@hostile.test>")
	// ...and its mail to another tenant is not that tenant's to lose.
	c = dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.cmd(354, "DATA")
	c.cmd(250, "Subject: hi\r\n\r\nbody\r\n.")
	if got := victim.messages(); len(got) != 1 {
		t.Errorf("the other tenant's server got %d messages, want 1", len(got))
	}
}
