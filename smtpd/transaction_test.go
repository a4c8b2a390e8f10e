package smtpd_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/metrictest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/pires/go-proxyproto"
)

const testMessage = "From: Alice <alice@sender.test>\r\n" +
	"To: bob@example.org\r\n" +
	"Subject: quarterly report\r\n" +
	"Message-ID: <1@sender.test>\r\n" +
	"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n" +
	"\r\n" +
	"Hello Bob,\r\n" +
	"..a line that starts with a dot survives dot-stuffing.\r\n" +
	"Regards\r\n"

// client is a raw SMTP client: tests need the exact reply codes at each step.
type client struct {
	t *testing.T
	c *textproto.Conn
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c := dialUnintroduced(t, addr)
	c.cmd(250, "EHLO client.sender.test")
	return c
}

func greet(t *testing.T, conn net.Conn) *client {
	t.Helper()
	c := greeted(t, conn)
	c.cmd(250, "EHLO client.sender.test")
	return c
}

// dialUnintroduced connects and reads the greeting; the test says HELO or
// EHLO itself.
func dialUnintroduced(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return greeted(t, conn)
}

func greeted(t *testing.T, conn net.Conn) *client {
	t.Helper()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &client{t: t, c: textproto.NewConn(conn)}
	t.Cleanup(func() { c.c.Close() })
	c.expect(220)
	return c
}

// cmd sends line and asserts the reply code; it returns the reply text.
func (c *client) cmd(want int, format string, args ...any) string {
	c.t.Helper()
	if err := c.c.PrintfLine(format, args...); err != nil {
		c.t.Fatalf("send %q: %v", fmt.Sprintf(format, args...), err)
	}
	return c.expect(want)
}

func (c *client) expect(want int) string {
	c.t.Helper()
	code, msg, err := c.c.ReadResponse(want)
	if err != nil {
		c.t.Fatalf("want %d, got %d %s (%v)", want, code, msg, err)
	}
	return msg
}

func (c *client) data(want int, msg string) string {
	c.t.Helper()
	c.cmd(354, "DATA")
	w := c.c.DotWriter()
	w.Write([]byte(strings.ReplaceAll(msg, "\r\n", "\n")))
	w.Close()
	return c.expect(want)
}

// startNode serves example.org, routed to a sink, with no scan checks.
func startNode(t *testing.T, mutate func(*config.Config)) (*testNode, *smtptest.Sink) {
	t.Helper()
	return startStages(t, nil, mutate)
}

// startStages serves example.org, routed to a sink, scanned by stages.
func startStages(t *testing.T, stages []scanner.Stage, mutate func(*config.Config)) (*testNode, *smtptest.Sink) {
	t.Helper()
	sink := smtptest.StartSink(t)
	cfg := testConfig(t)
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
	if mutate != nil {
		mutate(&cfg)
	}
	return startConfigured(t, cfg, stages), sink
}

func TestDeliveryIsByteIdenticalApartFromReceived(t *testing.T) {
	n, sink := startNode(t, nil)
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test> SIZE=%d", len(testMessage))
	c.cmd(250, "RCPT TO:<bob@example.org>")
	reply := c.data(250, testMessage)
	if !strings.Contains(reply, "customer server") {
		t.Errorf("250 reply %q does not say the customer's server took it", reply)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("sink got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.From != "alice@sender.test" || len(got.Rcpts) != 1 || got.Rcpts[0] != "bob@example.org" {
		t.Errorf("envelope = %s -> %v", got.From, got.Rcpts)
	}
	// The declared size leaves room for the fields we add on top.
	if got.Size <= int64(len(testMessage)) || got.Size < int64(len(got.Data)) {
		t.Errorf("relay declared SIZE=%d for a %d-byte message", got.Size, len(got.Data))
	}
	if !bytes.HasPrefix(got.Data, []byte("Received: from client.sender.test ([127.0.0.1])")) {
		t.Fatalf("message does not start with our Received header:\n%s", got.Data)
	}
	body, err := smtptest.StripPrepended(got.Data, "Received")
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != testMessage {
		t.Errorf("relayed message differs from the original:\n got %q\nwant %q", body, testMessage)
	}
}

func TestRecipientRules(t *testing.T) {
	other := smtptest.StartSink(t)
	n, sink := startNode(t, func(c *config.Config) {
		c.Domains = append(c.Domains,
			smtptest.Domain("listed.example", "", "alice"),
			smtptest.Domain("elsewhere.example", other.Addr))
		c.Domains[1].Route = c.Domains[0].Route
	})
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<x@sender.test>")
	if msg := c.cmd(550, "RCPT TO:<victim@open-relay.test>"); !strings.HasPrefix(msg, "5.7.1") {
		t.Errorf("unknown domain reply %q, want 5.7.1", msg)
	}
	if msg := c.cmd(550, "RCPT TO:<mallory@listed.example>"); !strings.HasPrefix(msg, "5.1.1") {
		t.Errorf("unknown user reply %q, want 5.1.1", msg)
	}
	c.cmd(250, "RCPT TO:<ALICE@Listed.Example>")
	c.cmd(250, "RCPT TO:<bob@example.org>") // same route as listed.example
	if msg := c.cmd(452, "RCPT TO:<carol@elsewhere.example>"); !strings.HasPrefix(msg, "4.5.3") {
		t.Errorf("other-route reply %q, want 4.5.3", msg)
	}
	c.data(250, testMessage)
	if got := sink.Messages(); len(got) != 1 || len(got[0].Rcpts) != 2 {
		t.Fatalf("sink got %+v, want one message for two recipients", got)
	}
	if len(other.Messages()) != 0 {
		t.Fatal("the 452 recipient was delivered in the same transaction")
	}
	// The sender's retry in its own transaction reaches the other server.
	c.cmd(250, "MAIL FROM:<x@sender.test>")
	c.cmd(250, "RCPT TO:<carol@elsewhere.example>")
	c.data(250, testMessage)
	if len(other.Messages()) != 1 {
		t.Fatal("retried recipient not delivered")
	}
}

// A transaction's destination is its first accepted recipient's. A first
// recipient refused by its customer's server left the downstream
// transaction open, and the next recipient, of another route (another
// customer's server), was sent into it: delivered to the wrong server, and
// that server's refusal cached as the other route's answer, so the
// recipient's own mail was refused for negative_cache_ttl.
func TestRefusedFirstRecipientDoesNotFixTheRoute(t *testing.T) {
	other := smtptest.StartSink(t)
	n, sink := startNode(t, func(c *config.Config) {
		c.Domains = append(c.Domains, smtptest.Domain("elsewhere.example", other.Addr))
	})
	sink.RejectRcpt("nobody@example.org", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	// example.org's server hosts no elsewhere.example mailbox.
	sink.RejectRcpt("carol@elsewhere.example", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"})
	// Twice: the second session must not meet the first's refusal cached.
	for range 2 {
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<x@sender.test>")
		c.cmd(550, "RCPT TO:<nobody@example.org>")
		c.cmd(250, "RCPT TO:<carol@elsewhere.example>")
		c.data(250, testMessage)
		c.cmd(221, "QUIT")
	}
	if got := sink.Messages(); len(got) != 0 {
		t.Errorf("example.org's server got %+v, want nothing", got)
	}
	if got := other.Messages(); len(got) != 2 || len(got[0].Rcpts) != 1 || got[0].Rcpts[0] != "carol@elsewhere.example" {
		t.Errorf("elsewhere.example's server got %+v, want two messages for carol", got)
	}
}

func TestDownstreamDownIsTempfailAndNothingDelivered(t *testing.T) {
	n, sink := startNode(t, nil)
	sink.Stop()
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	if msg := c.cmd(451, "RCPT TO:<bob@example.org>"); !strings.HasPrefix(msg, "4.4.1") {
		t.Errorf("reply %q, want 4.4.1", msg)
	}
	c.cmd(503, "DATA") // no accepted recipient: nothing to send
	if len(sink.Messages()) != 0 {
		t.Fatal("message delivered although downstream was down")
	}
}

func TestDownstreamRepliesArePassedThrough(t *testing.T) {
	n, sink := startNode(t, nil)
	sink.RejectRcpt("nobody@example.org", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no mailbox here"})
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	if msg := c.cmd(550, "RCPT TO:<nobody@example.org>"); !strings.Contains(msg, "5.1.1 no mailbox here") {
		t.Errorf("downstream RCPT refusal not passed through: %q", msg)
	}
	c.cmd(250, "RCPT TO:<bob@example.org>")
	sink.RejectData(&smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "mailbox full"})
	if msg := c.data(552, testMessage); !strings.Contains(msg, "5.2.2 mailbox full") {
		t.Errorf("downstream DATA refusal not passed through: %q", msg)
	}
	sink.RejectData(&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"})
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(451, testMessage)
	if len(sink.Messages()) != 0 {
		t.Fatal("refused messages were recorded as delivered")
	}
}

// A customer's server that closes its session (421, say its idle timeout
// struck mid-transaction) closes only that one: the sender hears 451 with
// the server's text and goes on in its own session.
func TestDownstreamClosingIsNotPassedOnAsClosing(t *testing.T) {
	n, sink := startNode(t, nil)
	closing := &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Idle timeout, bye bye"}
	c := dial(t, n.SMTPAddr())
	sink.RejectRcpt("bob@example.org", closing)
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	if msg := c.cmd(451, "RCPT TO:<bob@example.org>"); !strings.Contains(msg, "4.4.2 Idle timeout") {
		t.Errorf("RCPT: %q, want the server's 4.4.2 text", msg)
	}
	sink.RejectRcpt("bob@example.org", nil)
	c.cmd(250, "RSET")
	sink.RejectData(closing)
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(451, testMessage)
	sink.RejectData(nil)
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(250, testMessage)
	if got := len(sink.Messages()); got != 1 {
		t.Fatalf("%d messages delivered, want the last one", got)
	}
}

func TestSizeLimit(t *testing.T) {
	n, sink := startNode(t, func(c *config.Config) { c.SMTP.MaxMessageBytes = 4096 })
	c := dial(t, n.SMTPAddr())
	c.cmd(552, "MAIL FROM:<alice@sender.test> SIZE=100000")
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	if msg := c.data(552, testMessage+strings.Repeat(strings.Repeat("x", 70)+"\r\n", 100)); !strings.HasPrefix(msg, "5.3.4") {
		t.Errorf("oversized reply %q, want 5.3.4", msg)
	}
	if len(sink.Messages()) != 0 {
		t.Fatal("oversized message delivered")
	}
}

// TestDeclaredSizeFitsTheCustomersLimit: MAIL's SIZE goes downstream with
// room for our fields, an estimate of 4 KB where they take a few hundred
// octets. A sender declaring a size just under the customer's limit
// (RFC 1870) was declared over it and refused 552 for good, for a message
// the customer's server takes; it is declared the limit instead. A size
// over the limit on its own is still declared as it is, and refused.
func TestDeclaredSizeFitsTheCustomersLimit(t *testing.T) {
	const limit = 1 << 20
	sink := smtptest.StartSink(t, smtptest.MaxMessageBytes(limit))
	cfg := testConfig(t)
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
	n := startConfigured(t, cfg, nil)
	msg := testMessage + strings.Repeat(strings.Repeat("x", 98)+"\r\n", (limit-2000-len(testMessage))/100)
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test> SIZE=%d", len(msg))
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(250, msg)
	got := sink.Messages()
	if len(got) != 1 || got[0].Size != limit {
		t.Fatalf("customer's server got %d messages, want one declared %d", len(got), limit)
	}
	c.cmd(250, "MAIL FROM:<alice@sender.test> SIZE=%d", limit+1)
	if msg := c.cmd(552, "RCPT TO:<bob@example.org>"); !strings.HasPrefix(msg, "5.3.4") {
		t.Errorf("reply %q to a declared size over the customer's limit, want 5.3.4", msg)
	}
}

func TestProxyProtocol(t *testing.T) {
	n, sink := startNode(t, func(c *config.Config) { c.SMTP.TrustedProxies = []string{"127.0.0.0/8"} })
	conn, err := net.Dial("tcp", n.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	src := &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 40000}
	dst := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 25}
	if _, err := proxyproto.HeaderProxyFromAddrs(2, src, dst).WriteTo(conn); err != nil {
		t.Fatal(err)
	}
	c := greet(t, conn)
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(250, testMessage)
	if msgs := sink.Messages(); len(msgs) != 1 || !bytes.Contains(msgs[0].Data, []byte("([203.0.113.7])")) {
		t.Fatalf("client IP from PROXY header not used: %+v", msgs)
	}
}

// TestTrustedProxyHeaders: from a trusted proxy, a connection is served
// under the address its PROXY header gives (v2 TLVs are skipped), or under
// the proxy's own for a v2 LOCAL (the proxy's health check) or a v1
// UNKNOWN (the spec's "use the real endpoints"). One whose header is
// malformed, cut short (a v2 length beyond the bytes sent) or missing is
// closed unserved, as Postfix's smtpd_upstream_proxy_protocol does: a
// header that timed out or never came was taken for "no header", and the
// client was served as the proxy, an address DNSBLs are not asked about,
// with what remained of the header read as commands. So is one for
// another transport than TCP over IPv4 or IPv6, as Postfix refuses it: a
// Unix socket's (AF_UNIX) was served with no client address at all
// ("[invalid IP]" in our Received field, one per-IP limit shared by every
// such client), a UDP one as a TCP client.
func TestTrustedProxyHeaders(t *testing.T) {
	n, sink := startNode(t, func(c *config.Config) {
		c.SMTP.TrustedProxies = []string{"127.0.0.0/8"}
		c.SMTP.ProxyHeaderTimeout = 500 * time.Millisecond
	})
	v2 := func(command, family byte, declared int, block ...byte) []byte {
		h := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), command, family, byte(declared>>8), byte(declared))
		return append(h, block...)
	}
	// TCP over IPv4 from 203.0.113.9:40000 to 192.0.2.1:25.
	addrs := []byte{203, 0, 113, 9, 192, 0, 2, 1, 0x9c, 0x40, 0, 25}
	authority := []byte{0x02, 0, 6, 'm', 'x', '.', 't', 'e', 's'} // PP2_TYPE_AUTHORITY
	for _, tc := range []struct {
		name   string
		header []byte
		client string // "" when the connection must not be served
	}{
		{"v1", []byte("PROXY TCP4 203.0.113.9 192.0.2.1 40000 25\r\n"), "203.0.113.9"},
		{"v2 with a TLV", v2(0x21, 0x11, len(addrs)+len(authority), append(append([]byte(nil), addrs...), authority...)...), "203.0.113.9"},
		{"v2 LOCAL", v2(0x20, 0x00, 0), "127.0.0.1"},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), "127.0.0.1"},
		{"v2 over UDP", v2(0x21, 0x12, len(addrs), addrs...), ""},
		{"v2 from a Unix socket", v2(0x21, 0x31, 216, make([]byte, 216)...), ""},
		{"v1 malformed", []byte("PROXY TCP4 203.0.113.9\r\n"), ""},
		{"v2 length beyond the bytes sent", v2(0x21, 0x11, 100, addrs...), ""},
		{"no header", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(sink.Messages())
			conn, err := net.Dial("tcp", n.SMTPAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			conn.Write(tc.header)
			tc2 := textproto.NewConn(conn)
			if tc.client == "" {
				if line, err := tc2.ReadLine(); err == nil {
					t.Fatalf("served (%q), want the connection closed", line)
				}
				return
			}
			c := greet(t, conn)
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			c.data(250, testMessage)
			msgs := sink.Messages()
			if len(msgs) != before+1 || !bytes.Contains(msgs[before].Data, []byte("(["+tc.client+"])")) {
				t.Fatalf("delivered %d, want one from %s: %q", len(msgs)-before, tc.client, msgs[len(msgs)-1].Data[:100])
			}
		})
	}
}

// TestTrustedProxyWrittenV4Mapped: a peer is compared as its IPv4
// address, so a proxy written in the v4-mapped form (::ffff:127.0.0.1, as
// a dual-stack listener shows its IPv4 clients) trusted nobody, and every
// message through it got 554 for a PROXY header "from an untrusted
// address".
func TestTrustedProxyWrittenV4Mapped(t *testing.T) {
	for _, trusted := range []string{"::ffff:127.0.0.1", "::ffff:127.0.0.0/104"} {
		t.Run(trusted, func(t *testing.T) {
			n, sink := startNode(t, func(c *config.Config) { c.SMTP.TrustedProxies = []string{trusted} })
			conn, err := net.Dial("tcp", n.SMTPAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			conn.Write([]byte("PROXY TCP4 203.0.113.9 192.0.2.1 40000 25\r\n"))
			c := greet(t, conn)
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			c.data(250, testMessage)
			if msgs := sink.Messages(); len(msgs) != 1 || !bytes.Contains(msgs[0].Data, []byte("([203.0.113.9])")) {
				t.Fatalf("delivered %d, want one from 203.0.113.9", len(msgs))
			}
		})
	}
}

// TestProxyHeaderFromUntrustedAddressIsRefused: an untrusted peer that
// opens with a PROXY header gets 554 and the connection closes. Whatever
// it sent behind the header is left unread: closed at once over it, the
// socket sent a TCP reset, and the peer (a load balancer its operator
// forgot to trust) could lose the 554 that says why.
func TestProxyHeaderFromUntrustedAddressIsRefused(t *testing.T) {
	n, _ := startNode(t, func(c *config.Config) { c.SMTP.TrustedProxies = []string{"10.0.0.0/8"} })
	for _, version := range []byte{1, 2} {
		conn, err := net.Dial("tcp", n.SMTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		src := &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 40000}
		dst := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 25}
		header, err := proxyproto.HeaderProxyFromAddrs(version, src, dst).Format()
		if err != nil {
			t.Fatal(err)
		}
		// The client's commands behind it, more than the server reads
		// ahead.
		go conn.Write(append(header, strings.Repeat("NOOP\r\n", 5000)...))
		got, err := io.ReadAll(conn)
		if err != nil {
			t.Errorf("PROXY v%d from untrusted peer: %v after %q", version, err, got)
		}
		if _, refusal, _ := strings.Cut(string(got), "\r\n"); !strings.HasPrefix(refusal, "554 5.7.0 ") || strings.Count(refusal, "\r\n") != 1 {
			t.Errorf("PROXY v%d from untrusted peer: got %q, want the greeting, 554 and the end", version, got)
		}
	}
}

// dialAs connects to addr with a PROXY v2 header naming src as the client,
// as a trusted proxy (127.0.0.0/8 in smtp.trusted_proxies) sends it: the
// one way a test connects from addresses the machine does not have.
func dialAs(t *testing.T, addr, src string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	from := &net.TCPAddr{IP: net.ParseIP(src), Port: 40000}
	to := &net.TCPAddr{IP: net.ParseIP("2001:db8:ffff::25"), Port: 25}
	if from.IP.To4() != nil {
		to.IP = net.ParseIP("192.0.2.1")
	}
	if _, err := proxyproto.HeaderProxyFromAddrs(2, from, to).WriteTo(conn); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestPerIPConnectionLimit: the limit is per client, an IPv4 address or an
// IPv6 /64 (a host holds a whole /64). Clients are given by PROXY header,
// the one way a test can connect from addresses the machine does not have.
func TestPerIPConnectionLimit(t *testing.T) {
	n, _ := startNode(t, func(c *config.Config) {
		c.SMTP.MaxConnectionsPerIP = 2
		c.SMTP.TrustedProxies = []string{"127.0.0.0/8"}
	})
	tests := []struct {
		name string
		held []string // connections open, each greeted
		next string
		want int
	}{
		{name: "same IPv4 address", held: []string{"198.51.100.1", "198.51.100.1"}, next: "198.51.100.1", want: 421},
		{name: "neighbouring IPv4 address", held: []string{"198.51.100.10", "198.51.100.10"}, next: "198.51.100.11", want: 220},
		{name: "same IPv6 /64", held: []string{"2001:db8:1::1", "2001:db8:1::2"}, next: "2001:db8:1:0:ffff::3", want: 421},
		{name: "neighbouring IPv6 /64", held: []string{"2001:db8:2::1", "2001:db8:2::2"}, next: "2001:db8:2:1::1", want: 220},
		// A 6to4 site (2002::/16) is the IPv4 address in its prefix, with
		// 65,536 /64s: counted by /64, one IPv4 host had as many budgets.
		{name: "6to4 networks of one IPv4 address", held: []string{"2002:c633:6414:1::1", "198.51.100.20"}, next: "2002:c633:6414:ffff::1", want: 421},
		// Behind a NAT64 (64:ff9b::/96) every IPv4 client is in one /64.
		{name: "NAT64 addresses of neighbouring IPv4 addresses", held: []string{"64:ff9b::c633:641e", "64:ff9b::c633:641e"}, next: "64:ff9b::c633:641f", want: 220},
		{name: "NAT64 address of an IPv4 address", held: []string{"64:ff9b::c633:6428", "198.51.100.40"}, next: "64:ff9b::c633:6428", want: 421},
	}
	greeting := func(src string) (int, string) {
		code, msg, _ := textproto.NewConn(dialAs(t, n.SMTPAddr(), src)).ReadResponse(0)
		return code, msg
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, src := range tc.held {
				if code, msg := greeting(src); code != 220 {
					t.Fatalf("connection from %s got %d %s, want 220", src, code, msg)
				}
			}
			code, msg := greeting(tc.next)
			if code != tc.want {
				t.Fatalf("connection from %s with %v open got %d %s, want %d", tc.next, tc.held, code, msg, tc.want)
			}
			if code == 421 && !strings.HasPrefix(msg, "4.7.0") {
				t.Errorf("refusal %q, want 4.7.0", msg)
			}
		})
	}
}

func TestIdleClientIsDisconnected(t *testing.T) {
	n, _ := startNode(t, func(c *config.Config) { c.SMTP.CommandTimeout = 300 * time.Millisecond })
	c := dial(t, n.SMTPAddr())
	start := time.Now()
	if _, err := c.c.ReadLine(); err == nil {
		// go-smtp may say goodbye first; the connection must then close.
		if _, err := c.c.ReadLine(); err == nil {
			t.Fatal("idle connection not closed")
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("idle connection closed after %v", d)
	}
}

// TestTrickledCommandTimesOut: a command must arrive whole within
// command_timeout of our last reply. A client trickling it a byte at a
// time used to extend the idle deadline with every read, and could keep
// its connection for days on one 2,000-octet line.
func TestTrickledCommandTimesOut(t *testing.T) {
	const timeout = 700 * time.Millisecond
	n, _ := startNode(t, func(c *config.Config) { c.SMTP.CommandTimeout = timeout })
	c := dial(t, n.SMTPAddr())
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for _, b := range []byte("MAIL FROM:<alice@sender.test>\r\n") {
			select {
			case <-stop:
				return
			case <-time.After(timeout / 4):
			}
			if _, err := c.c.W.Write([]byte{b}); err != nil || c.c.W.Flush() != nil {
				return
			}
		}
	}()
	start := time.Now()
	line, err := c.c.ReadLine()
	if err == nil {
		if strings.HasPrefix(line, "250") {
			t.Fatalf("the trickled command was answered: %q", line)
		}
		_, err = c.c.ReadLine()
	}
	if err == nil {
		t.Fatal("connection still open")
	}
	// 31 octets a quarter timeout apart take almost 8 timeouts; the
	// connection must end after about one.
	if d := time.Since(start); d > 4*timeout {
		t.Fatalf("closed after %v, command_timeout is %v", d, timeout)
	}
	if got := metrictest.Counter(t, n.metrics, "mxgrid_smtp_sessions_closed_by_limit_total", "command_timeout"); got != 1 {
		t.Errorf("sessions closed for a command timeout: %v, want 1", got)
	}
}

// TestDataTimeoutEndsTheSession: smtp.data_timeout bounds a whole message
// body, also for a client that trickles it a line at a time within
// command_timeout. At the deadline the sender hears 421 and the connection
// closes. It used to get no answer: go-smtp went on reading the rest of
// the body, with no deadline but command_timeout per read, for as long as
// the client kept trickling.
func TestDataTimeoutEndsTheSession(t *testing.T) {
	n, sink := startNode(t, func(c *config.Config) {
		c.SMTP.DataTimeout = 500 * time.Millisecond
		c.SMTP.CommandTimeout = 5 * time.Second
	})
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.cmd(354, "DATA")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := fmt.Fprintf(c.c.W, "X-Trickle: %d\r\n", i); err != nil || c.c.W.Flush() != nil {
				return
			}
		}
	}()
	start := time.Now()
	if msg := c.expect(421); !strings.HasPrefix(msg, "4.4.2") {
		t.Errorf("reply %q, want 4.4.2", msg)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("answered after %v, data_timeout is 500ms", d)
	}
	if _, err := c.c.ReadLine(); err == nil {
		t.Error("connection still open after 421")
	}
	if len(sink.Messages()) != 0 {
		t.Error("a message that timed out was delivered")
	}
}

func TestSessionSurvivesBadCommands(t *testing.T) {
	n, sink := startNode(t, nil)
	c := dial(t, n.SMTPAddr())
	c.cmd(501, "MAIL FROM:<unterminated")
	c.cmd(503, "RCPT TO:<bob@example.org>") // before MAIL
	c.cmd(501, "XYZZY")
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(501, "RCPT TO:<no-at-sign>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(250, testMessage)
	if len(sink.Messages()) != 1 {
		t.Fatal("message after bad commands not delivered")
	}
}

// A downstream that refuses at its greeting is unreachable for us (451
// 4.4.1): its own 5xx, wrapped in the relay's error for the logs, must not
// become the sender's answer.
func TestDownstreamGreetingRefusalIsTempfail(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("554 5.3.2 not accepting connections\r\n"))
			c.Close()
		}
	}()
	n, _ := startNode(t, func(c *config.Config) { c.Domains[0].Route = l.Addr().String() })
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	if msg := c.cmd(451, "RCPT TO:<bob@example.org>"); !strings.HasPrefix(msg, "4.4.1") {
		t.Errorf("reply %q, want 4.4.1", msg)
	}
}
