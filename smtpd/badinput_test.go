package smtpd_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/metrictest"
)

// The bad-input suite: what hostile or broken senders send at the SMTP
// level. Each case must end in a clear SMTP reply or a closed connection,
// never a crash, a goroutine left behind or memory growing with the input.
// Session fuzzing is in fuzz_test.go; over-long body lines, bad commands
// and the idle timeout of one client are in transaction_test.go. These run
// without scan checks; e2e.TestHostileContentGetsAVerdict sends the hostile
// bodies through the checks a node builds.

// noLeak runs fn and then checks that the goroutine count settles back to
// where it was once fn's connections are closed. The node is started
// before, so its own long-lived goroutines are in the baseline.
func noLeak(t *testing.T, fn func()) {
	t.Helper()
	runtime.GC()
	before := runtime.NumGoroutine()
	fn()
	var now int
	for range 100 { // up to 10 s for sessions to notice their closed sockets
		if now = runtime.NumGoroutine(); now <= before+2 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("goroutines: %d before, %d after (leak?)\n%s", before, now, buf[:runtime.Stack(buf, true)])
}

// rawConn is a connection for inputs textproto would refuse to send.
type rawConn struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

func rawDial(t *testing.T, addr string) *rawConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	c := &rawConn{t: t, Conn: conn, r: bufio.NewReader(conn)}
	c.reply(220)
	c.send("EHLO client.sender.test\r\n")
	c.reply(250)
	return c
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads one (possibly multi-line) reply and checks its code.
func (c *rawConn) reply(want int) string {
	c.t.Helper()
	code, text, err := textproto.NewReader(c.r).ReadResponse(want)
	if err != nil {
		c.t.Fatalf("want %d, got %d %q: %v", want, code, text, err)
	}
	return text
}

// closed reports whether the server closed the connection (reading only
// what it may still send before it does).
func (c *rawConn) closed() bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c.r)
	// nil is EOF; a reset is closed too; only a timeout means still open.
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

func TestBadInputOverlongCommandLine(t *testing.T) {
	n, sink := startNode(t, nil)
	noLeak(t, func() {
		c := rawDial(t, n.SMTPAddr())
		c.send("MAIL FROM:<" + strings.Repeat("a", 200_000) + "@sender.test>\r\n")
		code, text, _ := textproto.NewReader(c.r).ReadResponse(0)
		if code != 500 || !strings.HasPrefix(text, "5.5.2 ") {
			t.Errorf("over-long command got %d %q, want 500 5.5.2", code, text)
		}
		if !c.closed() {
			t.Error("connection still open after an over-long command line")
		}
		c.Close()
	})
	// The node still serves.
	d := dial(t, n.SMTPAddr())
	d.cmd(250, "MAIL FROM:<alice@sender.test>")
	d.cmd(250, "RCPT TO:<bob@example.org>")
	d.data(250, testMessage)
	if len(sink.Messages()) != 1 {
		t.Fatal("node did not deliver after an over-long command line")
	}
}

// TestBadInputLongBodyLine: a body line far over RFC 5321's 1000 octets
// (a 200 KB data: image in HTML, as real mail has) is scanned and relayed
// whole, by DATA and by BDAT, as Postfix takes it; what follows it in the
// body is never a command.
func TestBadInputLongBodyLine(t *testing.T) {
	n, sink := startNode(t, nil)
	line := `<img src="data:image/png;base64,` + strings.Repeat("QUFB", 50_000) + `">`
	body := "From: Alice <alice@sender.test>\r\nTo: bob@example.org\r\nSubject: inline image\r\n" +
		"Content-Type: text/html\r\n\r\n" + line + "\r\nRSET\r\nMAIL FROM:<smuggled@sender.test>\r\n"
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(250, body)
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.raw(250, fmt.Sprintf("BDAT %d LAST\r\n%s", len(body), body))
	msgs := sink.Messages()
	if len(msgs) != 2 {
		t.Fatalf("sink got %d messages, want 2", len(msgs))
	}
	for i, m := range msgs {
		if m.From != "alice@sender.test" || !bytes.Contains(m.Data, []byte("\r\n"+line+"\r\nRSET\r\n")) {
			t.Errorf("message %d from %q: the long line did not arrive whole, in place", i, m.From)
		}
	}
}

// Bare LF and bare CR are where SMTP smuggling lives: a server that ends
// DATA at "\n.\n" while the next hop does not (or the reverse) lets a
// sender hide a second message inside the first. We must end DATA only at
// CRLF.CRLF, deliver exactly one message, and hand the next hop nothing it
// could read as an end of data.
func TestBadInputBareLFAndCRCannotSmuggleAMessage(t *testing.T) {
	for _, tt := range []struct{ name, sep string }{
		{"bare LF", "\n.\n"},
		{"LF dot CRLF", "\n.\r\n"},
		{"bare CR", "\r.\r"},
		{"CR dot CRLF", "\r.\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, sink := startNode(t, nil)
			noLeak(t, func() {
				c := rawDial(t, n.SMTPAddr())
				c.send("MAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
				c.reply(250)
				c.reply(250)
				c.reply(354)
				c.send("Subject: first\r\n\r\nvisible part" + tt.sep +
					"MAIL FROM:<ceo@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nwire money\r\n.\r\n")
				c.reply(250)
				// Nothing else is pending: the next reply is the NOOP's.
				c.send("NOOP\r\n")
				c.reply(250)
				c.send("QUIT\r\n")
				c.reply(221)
				c.Close()
			})
			msgs := sink.Messages()
			if len(msgs) != 1 {
				t.Fatalf("sink got %d messages, want 1", len(msgs))
			}
			data := msgs[0].Data
			if !bytes.Contains(data, []byte("Subject: smuggled")) {
				t.Fatalf("the hidden part was not delivered inside the one message:\n%q", data)
			}
			for i, b := range data {
				if b == '\n' && (i == 0 || data[i-1] != '\r') {
					t.Fatalf("relayed message has a bare LF at %d: %q", i, data[max(0, i-20):min(len(data), i+20)])
				}
			}
		})
	}
}

func TestBadInputBareLFCommandsAreUnderstood(t *testing.T) {
	// Many broken clients end commands with LF only; go-smtp, like
	// Postfix, accepts that for commands.
	n, sink := startNode(t, nil)
	c := rawDial(t, n.SMTPAddr())
	c.send("MAIL FROM:<alice@sender.test>\nRCPT TO:<bob@example.org>\nDATA\n")
	c.reply(250)
	c.reply(250)
	c.reply(354)
	c.send(testMessage + ".\r\n")
	c.reply(250)
	if len(sink.Messages()) != 1 {
		t.Fatal("not delivered")
	}
}

func TestBadInputNULBytes(t *testing.T) {
	n, sink := startNode(t, nil)
	noLeak(t, func() {
		c := rawDial(t, n.SMTPAddr())
		c.send("MAIL FROM:<al\x00ice@sender.test>\r\n")
		code, text, err := textproto.NewReader(c.r).ReadResponse(0)
		if err != nil || code == 0 {
			t.Fatalf("NUL in MAIL: %d %q %v", code, text, err)
		}
		c.send("RSET\r\n")
		c.reply(250)
		c.send("RCPT TO:<bob\x00@example.org>\r\n")
		if code, text, _ := textproto.NewReader(c.r).ReadResponse(0); code < 500 {
			t.Errorf("NUL in RCPT (without MAIL) got %d %q", code, text)
		}
		c.send("MAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
		c.reply(250)
		c.reply(250)
		c.reply(354)
		c.send("Subject: nul\x00here\r\n\r\nbody \x00\x00 with NULs\r\n.\r\n")
		// The message is scanned and relayed (or refused) with a reply;
		// the session goes on either way.
		if code, text, _ := textproto.NewReader(c.r).ReadResponse(0); code != 250 && (code < 500 || code > 599) {
			t.Errorf("message with NULs got %d %q, want 250 or a 5xx", code, text)
		}
		c.send("NOOP\r\n")
		c.reply(250)
		c.Close()
	})
	for _, m := range sink.Messages() {
		if !bytes.Contains(m.Data, []byte("body \x00\x00 with NULs")) {
			t.Errorf("relayed message changed the NUL bytes: %q", m.Data)
		}
	}
}

// Raw 8-bit header bytes (UTF-8 without RFC 2047 encoding, and Latin-1 that
// is not UTF-8 at all) are common in spam and in old mailers; they must be
// scanned and relayed byte for byte.
func TestBadInputEightBitHeaders(t *testing.T) {
	n, sink := startNode(t, nil)
	msg := "From: J\xc3\xbcrgen <j@sender.test>\r\nTo: bob@example.org\r\n" +
		"Subject: Gr\xfc\xdfe aus K\xf6ln \xff\xfe\r\nX-Junk: \x80\x81\x82\r\n\r\nHallo.\r\n"
	c := rawDial(t, n.SMTPAddr())
	c.send("MAIL FROM:<j@sender.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
	c.reply(250)
	c.reply(250)
	c.reply(354)
	c.send(msg + ".\r\n")
	c.reply(250)
	msgs := sink.Messages()
	if len(msgs) != 1 || !bytes.HasSuffix(msgs[0].Data, []byte(msg)) {
		t.Fatalf("8-bit header not relayed byte for byte: %+v", msgs)
	}
}

// A client may pipeline (RFC 2920) far more than it should: thousands of
// commands in one write, more recipients than allowed, commands after
// QUIT. Every command gets its reply, in order, and nothing more happens.
// TestBadInputImproperPipelining: by default a client that sends more
// behind a command than RFC 2920 allows (a message behind its DATA, not
// waiting for the 354; a whole conversation written before the greeting)
// gets 554 5.5.0 and is disconnected; nothing reaches the customer's
// server and the session is counted.
func TestBadInputImproperPipelining(t *testing.T) {
	n, sink := startNode(t, nil)
	noLeak(t, func() {
		c := rawDial(t, n.SMTPAddr())
		c.send("MAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n" + testMessage + ".\r\n")
		c.reply(250)
		c.reply(250)
		if text := c.reply(554); !strings.Contains(text, "SMTP protocol synchronization") {
			t.Errorf("554 %q", text)
		}
		if !c.closed() {
			t.Error("the connection stayed open after the 554")
		}

		conn, err := net.DialTimeout("tcp", n.SMTPAddr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(conn, "EHLO bot.test\r\nMAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"+testMessage+".\r\nQUIT\r\n")
		got, _ := io.ReadAll(conn)
		if !strings.HasPrefix(string(got), "220 ") || !strings.Contains(string(got), "\r\n554 5.5.0 ") || strings.Contains(string(got), "\r\n250") {
			t.Errorf("a conversation written before the greeting got %q, want 220 then 554 5.5.0 and the close", got)
		}
	})
	if got := len(sink.Messages()); got != 0 {
		t.Errorf("%d messages reached the customer's server", got)
	}
	if got := metrictest.Counter(t, n.metrics, "mxgrid_smtp_sessions_closed_by_limit_total", "pipelining"); got != 2 {
		t.Errorf("mxgrid_smtp_sessions_closed_by_limit_total{limit=pipelining} = %v, want 2", got)
	}
}

// TestBadInputPipeliningAbuse: with smtp.forbid_unauth_pipelining off, a
// client pipelining thousands of NOOPs, too many recipients and commands
// after QUIT gets every reply owed and nothing more (on by default, the
// first NOOP ends the session: TestBadInputImproperPipelining).
func TestBadInputPipeliningAbuse(t *testing.T) {
	n, sink := startNode(t, func(c *config.Config) {
		c.SMTP.MaxRecipients = 5
		c.SMTP.ForbidUnauthPipelining = false
	})
	noLeak(t, func() {
		c := rawDial(t, n.SMTPAddr())
		const noops = 10_000
		var batch strings.Builder
		batch.WriteString(strings.Repeat("NOOP\r\n", noops))
		batch.WriteString("MAIL FROM:<alice@sender.test>\r\n")
		for i := range 8 {
			fmt.Fprintf(&batch, "RCPT TO:<user%d@example.org>\r\n", i)
		}
		batch.WriteString("DATA\r\n")
		// Written concurrently: the server's replies fill the socket
		// buffer long before the batch is sent.
		werr := make(chan error, 1)
		go func() { _, err := io.WriteString(c.Conn, batch.String()); werr <- err }()
		for range noops {
			c.reply(250)
		}
		c.reply(250) // MAIL
		accepted := 0
		for range 8 {
			code, text, _ := textproto.NewReader(c.r).ReadResponse(0)
			switch {
			case code == 250:
				accepted++
			case code != 452:
				t.Fatalf("RCPT beyond the limit got %d %q, want 452", code, text)
			}
		}
		if accepted != 5 {
			t.Errorf("%d recipients accepted, want max_recipients = 5", accepted)
		}
		c.reply(354)
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
		// The message, QUIT and commands after QUIT in one write.
		c.send(testMessage + ".\r\nQUIT\r\nMAIL FROM:<late@sender.test>\r\nRCPT TO:<bob@example.org>\r\n")
		c.reply(250)
		c.reply(221)
		if !c.closed() {
			t.Error("connection open after QUIT")
		}
		c.Close()
	})
	msgs := sink.Messages()
	if len(msgs) != 1 || len(msgs[0].Rcpts) != 5 {
		t.Fatalf("sink got %d messages (%+v), want one for 5 recipients", len(msgs), msgs)
	}
}

// Slowloris: 1,000 connections that never finish a command, from 20
// source addresses (50 each, the per-IP limit), must neither starve a real
// sender from another address nor outlive command_timeout.
func TestBadInputThousandIdleConnections(t *testing.T) {
	const (
		idle    = 1000
		perIP   = 50
		timeout = 3 * time.Second
	)
	n, sink := startNode(t, func(c *config.Config) {
		c.SMTP.CommandTimeout = timeout
		c.SMTP.MaxConnectionsPerIP = perIP
	})
	addr := n.SMTPAddr()
	noLeak(t, func() {
		var ms0 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		conns := make([]net.Conn, 0, idle)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		opened := time.Now()
		for i := range idle {
			src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i/perIP))}
			d := net.Dialer{LocalAddr: src, Timeout: 5 * time.Second}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("idle connection %d from %s: %v", i, src.IP, err)
			}
			conns = append(conns, c)
			// Half greet and go silent, half stall in the middle of a
			// command, the classic slowloris.
			if i%2 == 1 {
				c.Write([]byte("MAIL FROM:<slow"))
			}
		}
		// Each idle connection got its greeting: none was refused.
		var greeted atomic.Int32
		var wg sync.WaitGroup
		closedAfter := make([]time.Duration, idle)
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.SetReadDeadline(time.Now().Add(timeout + 20*time.Second))
				r := bufio.NewReader(c)
				if line, err := r.ReadString('\n'); err == nil && strings.HasPrefix(line, "220") {
					greeted.Add(1)
				}
				io.Copy(io.Discard, r)
				closedAfter[i] = time.Since(opened)
			}()
		}
		// One more from a full address is refused...
		over, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		over.SetDeadline(time.Now().Add(10 * time.Second))
		if code, _, _ := textproto.NewConn(over).ReadResponse(0); code != 421 {
			t.Errorf("connection %d from one address got %d, want 421", perIP+1, code)
		}
		over.Close()
		// ...and a real sender from another address is served at once.
		start := time.Now()
		real, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 200)}}).Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c := greet(t, real)
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.data(250, testMessage)
		served := time.Since(start)
		if served >= timeout {
			t.Errorf("real sender took %v among %d idle connections, as long as the idle timeout", served, idle)
		}
		var ms1 runtime.MemStats
		runtime.ReadMemStats(&ms1)
		t.Logf("%d idle connections: real sender served in %v; heap in use %.1f MB -> %.1f MB",
			idle, served.Round(time.Millisecond), float64(ms0.HeapInuse)/1e6, float64(ms1.HeapInuse)/1e6)

		wg.Wait()
		if g := greeted.Load(); g != idle {
			t.Errorf("%d of %d idle connections greeted", g, idle)
		}
		var first, last time.Duration = time.Hour, 0
		for _, d := range closedAfter {
			first, last = min(first, d), max(last, d)
		}
		t.Logf("idle connections closed between %v and %v after opening (command_timeout %v)", first.Round(time.Millisecond), last.Round(time.Millisecond), timeout)
		if first < timeout-500*time.Millisecond {
			t.Errorf("an idle connection was closed after %v, before command_timeout %v", first, timeout)
		}
		if last > timeout+15*time.Second {
			t.Errorf("an idle connection lived %v, far beyond command_timeout %v", last, timeout)
		}
		c.c.Close()
	})
	if len(sink.Messages()) != 1 {
		t.Fatal("the real sender's message was not delivered")
	}
}

// A 50 MB message against the default 25 MiB limit: refused with 552
// without buffering the excess.
func TestBadInputFiftyMegabyteMessage(t *testing.T) {
	n, sink := startNode(t, nil)
	if got := n.Config.SMTP.MaxMessageBytes; got != 25<<20 {
		t.Fatalf("default max_message_bytes = %d, want 25 MiB", got)
	}
	noLeak(t, func() {
		c := rawDial(t, n.SMTPAddr())
		c.send("MAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
		c.reply(250)
		c.reply(250)
		c.reply(354)
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		peak := base.HeapInuse
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			var ms runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}()
		line := strings.Repeat("x", 998) + "\r\n"
		chunk := []byte("Subject: big\r\n\r\n" + strings.Repeat(line, 1000))
		w := bufio.NewWriterSize(c.Conn, 64<<10)
		for sent := 0; sent < 50_000_000; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				t.Fatalf("server stopped reading after %d bytes: %v", sent, err)
			}
			chunk = chunk[len("Subject: big\r\n\r\n"):]
		}
		w.WriteString(".\r\n")
		w.Flush()
		text := c.reply(552)
		close(stop)
		<-sampled
		growth := float64(peak-base.HeapInuse) / 1e6
		t.Logf("50 MB message: %q; heap in use grew by %.1f MB at most", text, growth)
		if !strings.HasPrefix(text, "5.3.4") {
			t.Errorf("reply %q, want 5.3.4", text)
		}
		if growth >= 50 {
			t.Errorf("heap grew by %.1f MB while refusing a 50 MB message", growth)
		}
		c.send("NOOP\r\n")
		c.reply(250)
		c.Close()
	})
	if len(sink.Messages()) != 0 {
		t.Fatal("oversized message delivered")
	}
}

// 1,000 nested MIME levels reach the scanner, whose parser must stop at its
// depth bound: the sender gets a verdict (delivered or refused), quickly,
// and the session goes on.
func TestBadInputThousandLevelNestedMIME(t *testing.T) {
	n, _ := startNode(t, nil)
	var b strings.Builder
	b.WriteString("From: a@sender.test\r\nTo: bob@example.org\r\nSubject: nested\r\nMIME-Version: 1.0\r\n")
	const depth = 1000
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ninnermost\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	noLeak(t, func() {
		c := rawDial(t, n.SMTPAddr())
		c.send("MAIL FROM:<a@sender.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
		c.reply(250)
		c.reply(250)
		c.reply(354)
		start := time.Now()
		c.send(b.String() + ".\r\n")
		code, text, _ := textproto.NewReader(c.r).ReadResponse(0)
		t.Logf("%d-level MIME (%d bytes): %d %s in %v", depth, b.Len(), code, text, time.Since(start).Round(time.Millisecond))
		if code != 250 && (code < 550 || code > 554) {
			t.Errorf("nested MIME got %d %q, want a verdict (250 or 55x), not a tempfail", code, text)
		}
		c.send("NOOP\r\n")
		c.reply(250)
		c.Close()
	})
}

// TestBadInputLastReplyIsNotLostToAReset: a client that pipelines
// thousands of refused commands in one write is shown out with a 421
// while most of its write is still unread; closing the socket over unread
// input sends a TCP reset, and a client that gets it before it has read
// the 421 never sees it (ECONNRESET) and cannot tell a limit from a
// crash. The 421 must arrive, followed by a clean end of stream.
func TestBadInputLastReplyIsNotLostToAReset(t *testing.T) {
	n, _ := startNode(t, nil)
	noLeak(t, func() {
		c := rawDial(t, n.SMTPAddr())
		// 2,000 refused RCPTs (no MAIL): 52 KB, over the server's read
		// buffer, so most of it is still in the socket at the 421.
		batch := strings.Repeat("RCPT TO:<nobody@example.org>\r\n", 2000)
		werr := make(chan error, 1)
		go func() { _, err := io.WriteString(c.Conn, batch); werr <- err }()
		got, err := io.ReadAll(c.r)
		if err != nil {
			t.Fatalf("reading the replies: %v (after %d bytes ending %q)", err, len(got), got[max(0, len(got)-120):])
		}
		if !bytes.HasSuffix(got, []byte("\r\n421 4.7.0 Too many commands without a message, closing connection\r\n")) {
			t.Errorf("the replies end %q, want the 421", got[max(0, len(got)-120):])
		}
		<-werr
		c.Close()
	})
}
