package smtp

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestResetKeepsHello: after RSET the next transaction starts with MAIL on
// the same greeted session, keeping the extensions EHLO announced.
func TestResetKeepsHello(t *testing.T) {
	server := strings.ReplaceAll(`220 hello
250-mx.test
250 8BITMIME
250 sender ok
250 reset ok
250 sender ok
`, "\n", "\r\n")
	var cmds bytes.Buffer
	w := bufio.NewWriter(&cmds)
	var fake faker
	fake.ReadWriter = bufio.NewReadWriter(bufio.NewReader(strings.NewReader(server)), w)
	c := NewClient(fake)
	if err := c.Hello("relay.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@b.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("c@d.test", nil); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	want := "EHLO relay.test\r\nMAIL FROM:<a@b.test> BODY=8BITMIME\r\nRSET\r\nMAIL FROM:<c@d.test> BODY=8BITMIME\r\n"
	if got := cmds.String(); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
}

// TestNewClientGreeted: a client handed a connection whose EHLO the caller
// already did starts with MAIL, using the extensions of the reply it was
// given; it sends no greeting of its own.
func TestNewClientGreeted(t *testing.T) {
	var cmds bytes.Buffer
	w := bufio.NewWriter(&cmds)
	var fake faker
	fake.ReadWriter = bufio.NewReadWriter(bufio.NewReader(strings.NewReader("250 sender ok\r\n")), w)
	c := NewClientGreeted(fake, "relay.test", "mx.test greets relay.test\n8BITMIME\nSIZE 1000")
	if ok, size := c.Extension("SIZE"); !ok || size != "1000" {
		t.Errorf("SIZE extension %v %q, want the EHLO reply's 1000", ok, size)
	}
	if ok, _ := c.Extension("MX.TEST"); ok {
		t.Error("the server's name taken for an extension")
	}
	if err := c.Mail("a@b.test", nil); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if got, want := cmds.String(), "MAIL FROM:<a@b.test> BODY=8BITMIME\r\n"; got != want {
		t.Errorf("commands %q, want %q", got, want)
	}
}

// TestMailRcpt: RSET (when asked), MAIL and RCPT pipelined when the server
// offers PIPELINING, one after the other when not; after a refused RSET or
// MAIL the later replies are read, so the next command's reply is its own.
func TestMailRcpt(t *testing.T) {
	const mailRcpt = "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n"
	tests := []struct {
		name       string
		pipelining bool
		reset      bool
		replies    string
		wantMail   int // 0: accepted
		wantRcpt   int
		wantCmds   string
	}{
		{"pipelined", true, false, "250 ok\n250 ok\n", 0, 0, mailRcpt},
		{"pipelined, recipient refused", true, false, "250 ok\n550 5.1.1 no\n", 0, 550, mailRcpt},
		{"pipelined, sender refused", true, false, "550 5.7.1 no\n503 5.5.1 MAIL first\n", 550, 0, mailRcpt},
		{"pipelined after RSET", true, true, "250 reset\n250 ok\n250 ok\n", 0, 0, "RSET\r\n" + mailRcpt},
		{"pipelined, RSET refused", true, true, "502 5.5.1 no RSET\n503 5.5.1 nested MAIL\n250 ok\n", 502, 0, "RSET\r\n" + mailRcpt},
		{"pipelined after RSET, sender refused", true, true, "250 reset\n550 5.7.1 no\n503 5.5.1 MAIL first\n", 550, 0, "RSET\r\n" + mailRcpt},
		{"not offered", false, false, "250 ok\n250 ok\n", 0, 0, mailRcpt},
		{"not offered, sender refused", false, false, "550 5.7.1 no\n", 550, 0, "MAIL FROM:<a@b.test>\r\n"},
		{"not offered, after RSET", false, true, "250 reset\n250 ok\n250 ok\n", 0, 0, "RSET\r\n" + mailRcpt},
		{"not offered, RSET refused", false, true, "502 5.5.1 no RSET\n", 502, 0, "RSET\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ehlo := "250 mx.test\n"
			if tt.pipelining {
				ehlo = "250-mx.test\n250 PIPELINING\n"
			}
			server := strings.ReplaceAll("220 hello\n"+ehlo+tt.replies+"250 noop\n", "\n", "\r\n")
			var cmds bytes.Buffer
			w := bufio.NewWriter(&cmds)
			var fake faker
			fake.ReadWriter = bufio.NewReadWriter(bufio.NewReader(strings.NewReader(server)), w)
			c := NewClient(fake)
			if err := c.Hello("relay.test"); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			cmds.Reset()
			mailErr, rcptErr := c.MailRcpt(tt.reset, "a@b.test", nil, "c@d.test", nil)
			if code := replyCode(mailErr); code != tt.wantMail {
				t.Errorf("MAIL: %v, want code %d", mailErr, tt.wantMail)
			}
			if code := replyCode(rcptErr); code != tt.wantRcpt {
				t.Errorf("RCPT: %v, want code %d", rcptErr, tt.wantRcpt)
			}
			if err := c.Noop(); err != nil {
				t.Errorf("the next command's reply is not its own: %v", err)
			}
			w.Flush()
			if got := strings.TrimSuffix(cmds.String(), "NOOP\r\n"); got != tt.wantCmds {
				t.Errorf("commands:\n%q\nwant:\n%q", got, tt.wantCmds)
			}
		})
	}
}

func replyCode(err error) int {
	if err == nil {
		return 0
	}
	if se, ok := err.(*SMTPError); ok {
		return se.Code
	}
	return -1
}

// TestWriteBufferSize: a message that fits the buffer SetWriteBufferSize
// gives leaves in one write with its end-of-data line (with textproto's
// 4 KiB, one per 4 KiB), dot-stuffed as textproto does; the size outlives
// the connection change STARTTLS makes.
func TestWriteBufferSize(t *testing.T) {
	body := benchBody(5 << 10)
	var want bytes.Buffer
	dw := textproto.NewWriter(bufio.NewWriter(&want)).DotWriter()
	dw.Write(body)
	dw.Close()
	for _, tt := range []struct {
		size       int // 0: not set
		bodyWrites int
	}{{0, 2}, {16 << 10, 1}} {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			server := strings.ReplaceAll("220 hello\n250 mx.test\n250 ok\n250 ok\n354 go\n250 queued\n", "\n", "\r\n")
			conn := &recordingConn{failAfter: -1}
			c := NewClient(faker{struct {
				io.Reader
				io.Writer
			}{strings.NewReader(server), conn}})
			if tt.size > 0 {
				c.SetWriteBufferSize(tt.size)
			}
			if err := c.Hello("relay.test"); err != nil {
				t.Fatal(err)
			}
			if err := c.Mail("a@b.test", nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Rcpt("c@d.test", nil); err != nil {
				t.Fatal(err)
			}
			w, err := c.Data()
			if err != nil {
				t.Fatal(err)
			}
			before := len(conn.writes)
			if _, err := w.Write(body); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			sent := conn.writes[before:]
			if got := strings.Join(sent, ""); got != want.String() {
				t.Errorf("body sent as %q, want %q", got, want.String())
			}
			if len(sent) != tt.bodyWrites {
				t.Errorf("body in %d writes, want %d", len(sent), tt.bodyWrites)
			}
			if tt.size > 0 {
				c.setConn(faker{})
				if got := c.text.W.Size(); got != tt.size {
					t.Errorf("after a new connection the buffer holds %d bytes, want %d", got, tt.size)
				}
			}
		})
	}
}

// endlessReply is a server that greets and then answers with one reply
// that never ends: each Read gets another line of it.
type endlessReply struct {
	greeting, line string
	sent           int // bytes of the reply handed out
	started        bool
}

func (e *endlessReply) Read(p []byte) (int, error) {
	if !e.started {
		e.started = true
		return copy(p, e.greeting), nil
	}
	n := copy(p, e.line)
	e.sent += n
	return n, nil
}

func (e *endlessReply) Write(p []byte) (int, error) { return len(p), nil }

// TestMalformedReplyEndsIt: a reply whose lines change code, or carry none,
// or whose last line is cut short, is a protocol error where it goes
// wrong. net/textproto read such lines as more text of the reply and went
// on to the next line with the first code: "250-ok", "550 no", "250 x"
// passed for a 250, and "250-ok", "550 no" alone held the client until
// the command timeout.
func TestMalformedReplyEndsIt(t *testing.T) {
	for _, tc := range []struct {
		name, ehloReply string
		wantErr         bool
	}{
		{"code changed", "250-ok\r\n550 no\r\n250 x\r\n", true},
		{"line without a code", "250-ok\r\nx\r\n250 x\r\n", true},
		{"last line cut short", "250-ok\r\n250 x", true},
		{"code without text last", "250-ok\r\n250\r\n", false},
		{"empty continuation line", "250-ok\r\n250-\r\n250 SIZE 10\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := "220 hello\r\n" + tc.ehloReply
			c := NewClient(faker{bufio.NewReadWriter(bufio.NewReader(strings.NewReader(in)), bufio.NewWriter(io.Discard))})
			err := c.Hello("relay.test")
			if (err != nil) != tc.wantErr {
				t.Fatalf("Hello: %v, want error %v", err, tc.wantErr)
			}
			var smtpErr *SMTPError
			if errors.As(err, &smtpErr) {
				t.Errorf("Hello: %v is a reply of the server's, want a protocol error", err)
			}
		})
	}
}

// TestEndlessReplyRefused: a reply that goes on past MaxReplyBytes fails
// the command once that much (and at most a read buffer more) has been
// read, whatever its lines look like; a long but finite reply is read.
func TestEndlessReplyRefused(t *testing.T) {
	for _, tc := range []struct {
		name, greeting, line string
	}{
		{"short continuation lines", "220 hello\r\n", "250-\r\n"},
		{"long continuation lines", "220 hello\r\n", "250-" + strings.Repeat("a", 1900) + "\r\n"},
		{"an endless greeting", "220-hello\r\n", "220-more\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := &endlessReply{greeting: tc.greeting, line: tc.line}
			c := NewClient(faker{server})
			err := c.Hello("relay.test")
			if !errors.Is(err, ErrReplyTooLong) {
				t.Fatalf("Hello: %v, want ErrReplyTooLong", err)
			}
			if server.sent > MaxReplyBytes+8192 {
				t.Errorf("read %d bytes of the reply, want at most %d plus a buffer", server.sent, MaxReplyBytes)
			}
		})
	}

	long := "220 hello\r\n" + strings.Repeat("250-"+strings.Repeat("b", 100)+"\r\n", 100) + "250 SIZE 1000\r\n"
	c := NewClient(faker{bufio.NewReadWriter(bufio.NewReader(strings.NewReader(long)), bufio.NewWriter(io.Discard))})
	if err := c.Hello("relay.test"); err != nil {
		t.Fatalf("a 10 KB EHLO reply: %v", err)
	}
	if ok, size := c.Extension("SIZE"); !ok || size != "1000" {
		t.Errorf("SIZE after a long reply: %v %q", ok, size)
	}
}

// FuzzReadReply: whatever the server sends, readReply returns without
// panicking; a reply it accepts has every line of its code, and is read
// by net/textproto's ReadResponse alike (but for a last line of a code
// alone, which textproto refuses).
func FuzzReadReply(f *testing.F) {
	for _, seed := range []string{
		"250 ok\r\n",
		"250-a\r\n250-b\r\n250 c\r\n",
		"250-ok\r\n550 no\r\n250 x\r\n",
		"250-ok\r\nx\r\n250 x\r\n",
		"250\r\n",
		"250-\r\n250 \r\n",
		"25 x\r\n",
		"250 ok",
		"+50 ok\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		code, msg, err := readReply(bufio.NewReader(strings.NewReader(in)), 0)
		if err != nil {
			return
		}
		lines := strings.SplitAfter(in, "\n")[:strings.Count(msg, "\n")+1]
		bareCode := false
		for _, l := range lines {
			if !strings.HasPrefix(l, strconv.Itoa(code)) || !strings.HasSuffix(l, "\n") {
				t.Fatalf("readReply(%q) = %d, %q from line %q", in, code, msg, l)
			}
			bareCode = bareCode || strings.TrimRight(l, "\r\n") == strconv.Itoa(code)
		}
		if bareCode {
			return
		}
		wantCode, wantMsg, wantErr := textproto.NewReader(bufio.NewReader(strings.NewReader(in))).ReadResponse(0)
		if wantErr != nil || wantCode != code || wantMsg != msg {
			t.Fatalf("readReply(%q) = %d, %q; textproto: %d, %q, %v", in, code, msg, wantCode, wantMsg, wantErr)
		}
	})
}

// TestBuffered: a reply the server sent beyond the one read waits in the
// client's buffer, where Buffered sees it; after a reply and nothing more,
// none waits.
func TestBuffered(t *testing.T) {
	for _, tc := range []struct {
		name, server string
		want         int
	}{
		{"one reply", "250 queued\r\n", 0},
		{"a reply too many", "250 queued\r\n250 again\r\n", len("250 again\r\n")},
		{"part of one", "250 queued\r\n25", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fake faker
			fake.ReadWriter = bufio.NewReadWriter(bufio.NewReader(strings.NewReader(tc.server)), bufio.NewWriter(io.Discard))
			c := NewClientGreeted(fake, "relay.test", "mx.test")
			if err := c.Noop(); err != nil {
				t.Fatal(err)
			}
			if got := c.Buffered(); got != tc.want {
				t.Errorf("Buffered() = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestExtensionKeywordsAnyCase: EHLO keywords are case insensitive (RFC
// 5321 §2.4); a server announcing them in lower or mixed case offers them
// as much as one shouting them.
func TestExtensionKeywordsAnyCase(t *testing.T) {
	for _, tc := range []struct {
		name, ehlo string
		want       []string
	}{
		{"upper case", "mx.test\n8BITMIME\nPIPELINING\nSIZE 1000", []string{"8BITMIME", "PIPELINING", "SIZE"}},
		{"lower case", "mx.test\n8bitmime\npipelining\nsize 1000\nsmtputf8", []string{"8BITMIME", "PIPELINING", "SIZE", "SMTPUTF8"}},
		{"mixed case", "mx.test\n8BitMime\nPipeLining", []string{"8BITMIME", "PIPELINING"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClientGreeted(faker{}, "relay.test", tc.ehlo)
			for _, ext := range tc.want {
				if ok, _ := c.Extension(ext); !ok {
					t.Errorf("Extension(%q) = false, the server offered it", ext)
				}
			}
			if size, ok := c.MaxMessageSize(); strings.Contains(strings.ToUpper(tc.ehlo), "SIZE") && (!ok || size != 1000) {
				t.Errorf("MaxMessageSize() = %d, %v; want 1000", size, ok)
			}
		})
	}
}

// TestReplyWaiting: over TLS, data in the socket is not always a reply: a
// TLS 1.3 server's session tickets wait there after the handshake until
// the client's first read, and crypto/tls consumes them without a byte
// for the reader. ReplyWaiting tells a reply (a stray one, which the
// next command would read as its own) from such a record, and keeps what
// it finds for the next reply read.
func TestReplyWaiting(t *testing.T) {
	keypair, err := tls.X509KeyPair(localhostCert, localhostKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		// server writes, after the handshake, what the case sends.
		server func(c *tls.Conn)
		want   bool
	}{
		{"session tickets only", func(*tls.Conn) {}, false},
		{"a reply nobody asked for", func(c *tls.Conn) { io.WriteString(c, "250 stray\r\n") }, true},
		{"the connection closed", func(c *tls.Conn) { c.Close() }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				// Asking for a client certificate has the server send
				// its session tickets after the client's Finished, so
				// they arrive once the client's handshake is over.
				tc2 := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{keypair}, MinVersion: tls.VersionTLS13, ClientAuth: tls.RequestClientCert})
				if tc2.Handshake() != nil {
					return
				}
				tc.server(tc2)
				io.Copy(io.Discard, tc2)
			}()
			raw, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			// A client that keeps sessions is sent tickets.
			conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(1)})
			defer func() {
				conn.Close()
				<-done
			}()
			if err := conn.Handshake(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // what the server sent has come
			var peek socketPeek
			if peek.pending(raw, make([]byte, 1)) == 0 {
				t.Fatal("nothing waits in the socket: the case tests nothing")
			}
			c := NewClientGreeted(conn, "relay.test", "mx.test")
			if got := c.ReplyWaiting(50 * time.Millisecond); got != tc.want {
				t.Errorf("ReplyWaiting = %v, want %v", got, tc.want)
			}
			if tc.want && tc.name == "a reply nobody asked for" {
				// Kept for the next reply read.
				if _, msg, err := c.readResponse(250); err != nil || msg != "stray" {
					t.Errorf("next reply: %q, %v; want the stray one", msg, err)
				}
			}
		})
	}
}
