package relay

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// hostile is a scripted customer's server: it greets, answers EHLO with
// ehlo (or, when ehlo is empty, leaves EHLO to answer), starts TLS on
// STARTTLS, and hands every other command line to answer, which writes
// what it likes (and may read the body itself). It counts connections and
// the messages it took whole.
type hostile struct {
	addr      string
	conns     atomic.Int32
	delivered atomic.Int32
	mu        sync.Mutex
	open      []net.Conn
}

// data answers DATA with 354, then reads the message up to its lone dot
// and counts it taken.
func (h *hostile) data(c net.Conn, r *bufio.Reader) bool {
	io.WriteString(c, "354 go ahead\r\n")
	if skipData(r) != nil {
		return false
	}
	h.delivered.Add(1)
	return true
}

// accept answers DATA as a server that takes the message: 354, the body
// read and counted, 250.
func (h *hostile) accept(c net.Conn, r *bufio.Reader) bool {
	if !h.data(c, r) {
		return false
	}
	io.WriteString(c, "250 2.0.0 queued\r\n")
	return true
}

// hangUp closes every connection the server accepted.
func (h *hostile) hangUp() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.open {
		c.Close()
	}
}

func startHostile(t *testing.T, ehlo string, answer func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool) *hostile {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostile{addr: l.Addr().String()}
	cfg := &tls.Config{Certificates: []tls.Certificate{smtptest.SelfSigned(t, "customer.test")}}
	t.Cleanup(func() {
		l.Close()
		h.hangUp()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.conns.Add(1)
			h.mu.Lock()
			h.open = append(h.open, c)
			h.mu.Unlock()
			go func(c net.Conn) {
				defer c.Close()
				r := bufio.NewReader(c)
				io.WriteString(c, "220 customer.test ESMTP\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					switch strings.ToUpper(strings.Fields(line + " x")[0]) {
					case "EHLO":
						if ehlo != "" {
							io.WriteString(c, ehlo)
							continue
						}
					case "STARTTLS":
						io.WriteString(c, "220 2.0.0 ready\r\n")
						tc := tls.Server(&corkConn{Conn: c}, cfg)
						if tc.Handshake() != nil {
							return
						}
						c, r = tc, bufio.NewReader(tc)
						continue
					case "QUIT":
						io.WriteString(c, "221 bye\r\n")
						return
					}
					if !answer(h, c, r, line) {
						return
					}
				}
			}(c)
		}
	}()
	return h
}

// corkConn is a hostile server's TCP connection under TLS: between cork
// and flush its writes are held and then sent in one, so several TLS
// records reach the relay in one segment, as a server's separate writes
// often do, and the relay's TLS reads them from the socket together.
type corkConn struct {
	net.Conn
	held []byte
	on   bool
}

func (c *corkConn) Write(b []byte) (int, error) {
	if c.on {
		c.held = append(c.held, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// corked runs write with c's writes held, then sends them in one write. c
// is a hostile server's connection once TLS has started.
func corked(c net.Conn, write func()) {
	cc := c.(*tls.Conn).NetConn().(*corkConn)
	cc.on = true
	write()
	cc.on = false
	cc.Conn.Write(cc.held)
	cc.held = nil
}

func hostileRelay(mutate func(*Config)) *Relay {
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	return New(cfg, "mx1.mxgrid.test", loopbackGuard(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
}

// connLog tells a hostile server's answer function whether a line came on
// the first connection the server took, and keeps the lines it is given,
// across connections, for the test to read once the relay is done.
type connLog struct {
	mu    sync.Mutex
	first net.Conn
	lines []string
}

func (l *connLog) onFirst(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first == nil {
		l.first = c
	}
	return c == l.first
}

// keep keeps line and returns how many lines are kept.
func (l *connLog) keep(line string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	return len(l.lines)
}

func (l *connLog) kept() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// endlessMessage is a message of n lines of text, made as it is read.
type endlessMessage struct{ n int }

func (m *endlessMessage) Read(p []byte) (int, error) {
	const line = "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
	if m.n == 0 {
		return 0, io.EOF
	}
	k := 0
	for m.n > 0 && len(p)-k >= len(line) {
		k += copy(p[k:], line)
		m.n--
	}
	return k, nil
}

// TestStalledBodyIsBounded: a customer's server (any tenant names one)
// that answers 354 and then reads the body slowly, or not at all, fills
// the connection's window and blocks the relay's write. go-smtp's client
// clears the command's deadline once the 354 is read, and the final
// reply's deadline is set only after the body, so nothing bounded the
// body's writes: the relay, and with it the sender waiting for our
// answer and the session's goroutine, waited for ever. Now the body and
// the final reply share data_timeout.
func TestStalledBodyIsBounded(t *testing.T) {
	const timeout = 3 * time.Second
	tests := []struct {
		name  string
		after func(c net.Conn, r *bufio.Reader)
	}{
		{"server stops reading the body", func(net.Conn, *bufio.Reader) {}},
		{"server reads the body a byte at a time", func(c net.Conn, r *bufio.Reader) {
			for {
				if _, err := r.ReadByte(); err != nil {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}},
		{"server drips its final reply", func(c net.Conn, r *bufio.Reader) {
			if skipData(r) != nil {
				return
			}
			for {
				if _, err := c.Write([]byte("2")); err != nil {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHostile(t, "250-customer.test\r\n250 8BITMIME\r\n", func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
				if strings.EqualFold(line, "DATA") {
					io.WriteString(c, "354 go ahead\r\n")
					tt.after(c, r)
					// Hold the connection as a stalled server does.
					time.Sleep(time.Minute)
					return false
				}
				io.WriteString(c, "250 ok\r\n")
				return true
			})
			r := hostileRelay(func(c *Config) { c.CommandTimeout, c.DataTimeout = timeout, timeout })
			tx, err := r.Begin(context.Background(), Route{Addr: h.addr, TLS: TLSNone}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				// Large enough to fill both sockets' buffers.
				_, err := tx.Data(&endlessMessage{n: 1 << 18}, textBits(""))
				done <- err
			}()
			select {
			case err := <-done:
				var e *Error
				if !errors.As(err, &e) || !e.Temporary() {
					t.Errorf("Data: %v, want a temporary error", err)
				}
			case <-time.After(10 * timeout):
				t.Errorf("Data still blocked %v after the 354, data_timeout is %v", 10*timeout, timeout)
				h.hangUp()
				<-done
			}
		})
	}
}

// TestOutOfStepReplyEndsTheSession: a reply no server gives the command
// it answers (354 to MAIL or RCPT, 250 to DATA, 354 after the body) says
// the server and the relay disagree on where they are: every later reply
// may be another command's. The relay took it for a refusal like a 550
// and went on: later recipients and DATA were sent on the connection,
// and the session went back to the cache, where the next sender's
// transaction read the replies owed to this one. Now such a reply ends
// the session as a broken connection does: the sender hears 451, nothing
// more is sent on it, and the next transaction opens a new connection.
func TestOutOfStepReplyEndsTheSession(t *testing.T) {
	tests := []struct {
		name string
		// odd is the step the server answers oddly: MAIL, RCPT, DATA or
		// the END of the data.
		odd, reply string
	}{
		{"354 to MAIL", "MAIL", "354 go ahead\r\n"},
		{"354 to RCPT", "RCPT", "354 go ahead\r\n"},
		{"250 to DATA", "DATA", "250 ok\r\n"},
		{"354 after the body", "END", "354 go ahead\r\n"},
		{"100 to RCPT", "RCPT", "100 wait\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var oddOn net.Conn // the connection the odd reply went on
			oddSent := func() bool { mu.Lock(); defer mu.Unlock(); return oddOn != nil }
			sendOdd := func(c net.Conn) { mu.Lock(); defer mu.Unlock(); oddOn = c; io.WriteString(c, tt.reply) }
			// afterOdd counts the commands the server read after its odd
			// reply on the same connection (the QUIT of a polite close
			// aside).
			var afterOdd atomic.Int32
			// Without PIPELINING: no command was on its way with the one
			// answered oddly.
			h := startHostile(t, "250-customer.test\r\n250 8BITMIME\r\n", func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
				verb := strings.ToUpper(line[:4])
				mu.Lock()
				if oddOn == c {
					afterOdd.Add(1)
				}
				mu.Unlock()
				odd := !oddSent() && (verb == tt.odd || tt.odd == "RCPT" && strings.Contains(line, "odd@"))
				switch {
				case verb == "DATA" && !(odd && tt.odd == "DATA"):
					if !h.data(c, r) {
						return false
					}
					if tt.odd == "END" && !oddSent() {
						sendOdd(c)
						return true
					}
					io.WriteString(c, "250 2.0.0 queued\r\n")
				case odd:
					sendOdd(c)
				default:
					io.WriteString(c, "250 ok\r\n")
				}
				return true
			})
			r := hostileRelay(func(c *Config) { c.CommandTimeout = 5 * time.Second })
			route := Route{Addr: h.addr, TLS: TLSNone}
			tx, err := r.Begin(context.Background(), route, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
			if err != nil {
				t.Fatal(err)
			}
			first := "bob"
			if tt.odd == "RCPT" {
				first = "odd"
			}
			errs := []error{tx.Rcpt(mailaddr.Address{Local: first, Domain: "customer.test"})}
			if tt.odd != "MAIL" && tt.odd != "RCPT" {
				_, err := tx.Data(message("Subject: hi\r\n\r\nbody\r\n"))
				errs = append(errs, err)
			} else {
				errs = append(errs, tx.Rcpt(mailaddr.Address{Local: "carol", Domain: "customer.test"}))
			}
			tx.Close()
			if !oddSent() {
				t.Fatal("the server never gave its odd reply")
			}
			var e *Error
			if err := errs[len(errs)-1]; tt.odd != "MAIL" && (!errors.As(err, &e) || !e.Temporary()) {
				t.Errorf("after the odd reply: %v, want a temporary error", err)
			}
			if err := deliver(r, route, "next"); err != nil {
				t.Fatalf("next message: %v", err)
			}
			if n := h.conns.Load(); n != 2 {
				t.Errorf("%d connections, want the out-of-step one replaced", n)
			}
			if n := afterOdd.Load(); n != 0 {
				t.Errorf("%d commands sent on the connection after its odd reply, want none", n)
			}
		})
	}
}

// TestStaleReplyNotReadByTheNextTransaction: a customer's server that
// sends a reply nobody asked for (two replies to the end of the data,
// or one written while the session is idle in the cache) left it for
// the next transaction on the route, another sender's, which read it as
// its own and every reply after it one command late: a recipient the
// server refused with 550 was answered 250, and the refusal then read
// as the next recipient's or DATA's. A cached session holding anything
// unread is closed instead of reused.
func TestStaleReplyNotReadByTheNextTransaction(t *testing.T) {
	tests := []struct {
		name string
		// final is the reply to the first message's data; idle is
		// written 100 ms after it.
		final, idle string
		mode        TLSMode
		// records: final's lines go in TLS records of their own, in
		// one segment, so the second waits in the relay's TLS layer.
		records bool
	}{
		{"two replies to the data", "250 2.0.0 queued\r\n250 2.0.0 queued\r\n", "", TLSNone, false},
		{"a reply sent while idle", "250 2.0.0 queued\r\n", "250 2.0.0 ok\r\n", TLSNone, false},
		{"a reply sent while idle, under TLS", "250 2.0.0 queued\r\n", "250 2.0.0 ok\r\n", TLSRequired, false},
		{"two replies to the data in records of their own, under TLS", "250 2.0.0 queued\r\n250 2.0.0 queued\r\n", "", TLSRequired, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHostile(t, "250-customer.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n", func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
				switch {
				case strings.EqualFold(line, "DATA"):
					if !h.data(c, r) {
						return false
					}
					if tt.records {
						corked(c, func() {
							for l := range strings.Lines(tt.final) {
								io.WriteString(c, l)
							}
						})
					} else {
						io.WriteString(c, tt.final)
					}
					if tt.idle != "" {
						time.Sleep(100 * time.Millisecond)
						io.WriteString(c, tt.idle)
					}
				case strings.Contains(line, "gone@"):
					io.WriteString(c, "550 5.1.1 no such user\r\n")
				default:
					io.WriteString(c, "250 ok\r\n")
				}
				return true
			})
			r := hostileRelay(func(c *Config) { c.CommandTimeout = 5 * time.Second })
			route := Route{Addr: h.addr, TLS: tt.mode}
			if err := deliver(r, route, "first"); err != nil {
				t.Fatal(err)
			}
			// Time for the idle reply to arrive, well within idle_timeout.
			time.Sleep(time.Second)
			tx, err := r.Begin(context.Background(), route, mailaddr.Address{Local: "b", Domain: "sender.test"}, MailOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			err = tx.Rcpt(mailaddr.Address{Local: "gone", Domain: "customer.test"})
			var e *Error
			if !errors.As(err, &e) || e.Code != 550 {
				t.Errorf("RCPT gone@, refused by the server: %v, want its 550", err)
			}
			if err := tx.Rcpt(mailaddr.Address{Local: "carol", Domain: "customer.test"}); err != nil {
				t.Errorf("RCPT carol@, taken by the server: %v", err)
			}
			if _, err := tx.Data(message("Subject: second\r\n\r\nbody\r\n")); err != nil {
				t.Errorf("second message: %v", err)
			}
			if n := h.delivered.Load(); n != 2 {
				t.Errorf("the server took %d messages, want 2", n)
			}
		})
	}
}

// TestLowerCaseExtensionsHonoured: a customer's server announcing its
// extensions in lower case (RFC 5321 §2.4: keywords are case
// insensitive) offers them: its 8-bit mail was refused with a permanent
// 554 5.6.3, as if it lacked 8BITMIME.
func TestLowerCaseExtensionsHonoured(t *testing.T) {
	h := startHostile(t, "250-customer.test\r\n250 8bitmime\r\n", func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
		if strings.EqualFold(line, "DATA") {
			if !h.data(c, r) {
				return false
			}
		}
		io.WriteString(c, "250 ok\r\n")
		return true
	})
	tx, err := hostileRelay(nil).Begin(context.Background(), Route{Addr: h.addr, TLS: TLSNone}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Data(message("Subject: caf\u00e9\r\n\r\nbody\r\n")); err != nil {
		t.Errorf("8-bit message to a server announcing 8bitmime: %v", err)
	}
}

// TestFinalReplyOfAnyPositiveCodeIsDelivery: the server answered the end
// of the data with a 2xx other than 250. go-smtp's client wants 250 and
// nothing else, so the relay told the sender 451, and the sender sent
// again a message the customer's server had taken: delivered twice.
// Any 2xx there is the server taking the message, as Postfix's smtp
// client reads it; the session, which answered oddly, is not reused.
func TestFinalReplyOfAnyPositiveCodeIsDelivery(t *testing.T) {
	for _, final := range []string{"251 2.0.0 queued", "200 ok", "299"} {
		t.Run(final, func(t *testing.T) {
			h := startHostile(t, "250 customer.test\r\n", func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
				if strings.EqualFold(line, "DATA") {
					if !h.data(c, r) {
						return false
					}
					io.WriteString(c, final+"\r\n")
					return true
				}
				io.WriteString(c, "250 ok\r\n")
				return true
			})
			r := hostileRelay(nil)
			route := Route{Addr: h.addr, TLS: TLSNone}
			if err := deliver(r, route, "first"); err != nil {
				t.Errorf("the server answered %q: %v, want delivered", final, err)
			}
			if err := deliver(r, route, "second"); err != nil {
				t.Errorf("second message: %v", err)
			}
			if n := h.delivered.Load(); n != 2 {
				t.Errorf("the server took %d messages, want 2", n)
			}
			if n := h.conns.Load(); n != 2 {
				t.Errorf("%d connections, want the odd session not reused", n)
			}
		})
	}
}

// TestEhloRefusedFallsBackToHelo: a customer's server that does not know
// EHLO refuses it with 500 or 502. RFC 5321 §3.2 has the client fall back
// to HELO; the relay took the refusal for an unreachable server, and the
// route's mail was deferred until it bounced. A route that requires TLS
// still gets none: HELO offers no STARTTLS.
func TestEhloRefusedFallsBackToHelo(t *testing.T) {
	tests := []struct {
		name, ehlo string
		mode       TLSMode
		want       int // 0: delivered
	}{
		{"502, TLS none", "502 5.5.2 command not recognized\r\n", TLSNone, 0},
		{"500 of two lines, opportunistic", "500-5.5.1 what is\r\n500 5.5.1 EHLO?\r\n", TLSOpportunistic, 0},
		{"502, TLS required", "502 5.5.2 command not recognized\r\n", TLSRequired, 451},
		{"421 is not a refusal of EHLO", "421 4.3.2 busy\r\n", TLSNone, 451},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHostile(t, tt.ehlo, func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
				switch strings.ToUpper(line[:4]) {
				case "HELO":
					io.WriteString(c, "250 customer.test\r\n")
				case "DATA":
					if !h.accept(c, r) {
						return false
					}
				default:
					io.WriteString(c, "250 ok\r\n")
				}
				return true
			})
			err := send(t, hostileRelay(nil), Route{Addr: h.addr, TLS: tt.mode})
			var e *Error
			switch {
			case tt.want == 0 && err != nil:
				t.Errorf("%v, want delivered", err)
			case tt.want != 0 && (!errors.As(err, &e) || e.Code != tt.want):
				t.Errorf("%v, want %d", err, tt.want)
			}
			want := int32(0)
			if tt.want == 0 {
				want = 1
			}
			if n := h.delivered.Load(); n != want {
				t.Errorf("the server took %d messages, want %d", n, want)
			}
		})
	}
}

// TestRepliesAheadOfTheirCommandsRefused: a customer's server that sends,
// after its reply to EHLO, replies to commands the relay has not sent
// yet (a 250 for MAIL) had them read as those commands' own, and every
// later reply one command late: the recipient it refused was answered
// 250 to the sender, and that 550 was given to the next recipient, whom
// the server had taken, a permanent bounce of good mail. Such a server
// is now unreachable (451): nothing is sent to it.
func TestRepliesAheadOfTheirCommandsRefused(t *testing.T) {
	tests := []struct {
		name, ehlo string
		mode       TLSMode
		// records: under TLS, the reply ahead goes in a record of its
		// own, sent in one segment with the EHLO reply's, so the
		// relay's TLS holds it, in neither the socket nor the client's
		// buffer.
		records bool
	}{
		{"in the EHLO reply's write", "250-customer.test\r\n250 PIPELINING\r\n250 2.1.0 sender ok\r\n", TLSNone, false},
		{"in the HELO reply's write", "502 5.5.2 what?\r\n", TLSNone, false},
		// ehlo "": the EHLO after STARTTLS is answered below.
		{"under TLS", "", TLSRequired, false},
		{"under TLS, in a record of its own", "", TLSRequired, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHostile(t, tt.ehlo, func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
				_, inTLS := c.(*tls.Conn)
				switch {
				case strings.EqualFold(line[:4], "EHLO") && !inTLS:
					io.WriteString(c, "250-customer.test\r\n250 STARTTLS\r\n")
				case strings.EqualFold(line[:4], "EHLO") && tt.records:
					corked(c, func() {
						io.WriteString(c, "250 customer.test\r\n")
						io.WriteString(c, "250 2.1.0 sender ok\r\n")
					})
				case strings.EqualFold(line[:4], "EHLO"):
					io.WriteString(c, "250 customer.test\r\n250 2.1.0 sender ok\r\n")
				case strings.EqualFold(line[:4], "HELO"):
					io.WriteString(c, "250 customer.test\r\n250 2.1.0 sender ok\r\n")
				case strings.EqualFold(line, "DATA"):
					if !h.accept(c, r) {
						return false
					}
				case strings.Contains(line, "gone@"):
					io.WriteString(c, "550 5.1.1 no such user\r\n")
				default:
					io.WriteString(c, "250 ok\r\n")
				}
				return true
			})
			tx, err := hostileRelay(nil).Begin(context.Background(), Route{Addr: h.addr, TLS: tt.mode}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
			if err == nil {
				defer tx.Close()
				err = tx.Rcpt(mailaddr.Address{Local: "gone", Domain: "customer.test"})
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != 451 {
				t.Errorf("RCPT gone@, refused by the server: %v, want 451", err)
			}
		})
	}
}

// TestRefusalTextIsPrintable: a refusal's error quotes the customer's
// server (any tenant names one), and it is shown beyond the logs: the
// panel's and the API's answer to a release the server refused. Its text
// went in raw: a bidirectional override ran the panel's message
// backwards, ESC reached the terminal of whoever read the API's answer,
// and the lines of a multi-line reply were lines of the error. It is one
// printable line now, as message tracking keeps the server's replies.
func TestRefusalTextIsPrintable(t *testing.T) {
	h := startHostile(t, "250 customer.test\r\n", func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
		if strings.EqualFold(line, "DATA") {
			if !h.data(c, r) {
				return false
			}
			io.WriteString(c, "550-5.7.1 not \u202eyadot\r\n550 5.7.1 go away\x1b]0;title\a\u2028Released.\r\n")
			return true
		}
		io.WriteString(c, "250 ok\r\n")
		return true
	})
	err := deliver(hostileRelay(nil), Route{Addr: h.addr, TLS: TLSNone}, "first")
	var re *Error
	if !errors.As(err, &re) || re.Code != 550 {
		t.Fatalf("deliver: %v, want the server's 550", err)
	}
	if s := err.Error(); strings.ContainsAny(s, "\r\n\x1b\a\u202e\u2028") || !strings.Contains(s, "go away") {
		t.Errorf("error text %q: want the server's words on one printable line", s)
	}
}

// TestSessionLostBeforeDataIsReplayed: the downstream session waits idle
// between the recipients and DATA while the sender sends its body and the
// scan runs. A customer's server that times it out (Postfix's
// smtpd_timeout: 300 s, 10 s under stress) answers DATA 421 or has closed
// the connection, and the sender heard 451 at every try: a slow sender's
// mail was never delivered, where Postfix, storing it first, delivers it.
// Nothing can be delivered without the body, so the transaction goes again
// on a new connection: MAIL and every recipient the old one accepted. A
// new connection that refuses one of them delivers nothing, and the
// sender hears 451.
func TestSessionLostBeforeDataIsReplayed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lost      string // what the first connection does at DATA ("" closes it)
		refuse    string // a RCPT the second connection refuses
		delivered bool
	}{
		{"421 to DATA", "421 4.4.2 customer.test Error: timeout exceeded\r\n", "", true},
		{"closed before DATA", "", "", true},
		{"a recipient refused on the new connection", "421 4.4.2 timeout\r\n", "RCPT TO:<carol@customer.test>", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conns connLog
			h := startHostile(t, "250-customer.test\r\n250 PIPELINING\r\n", func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
				onFirst := conns.onFirst(c)
				if !onFirst && strings.HasPrefix(line, "RCPT") {
					conns.keep(line)
				}
				switch {
				case onFirst && strings.EqualFold(line, "DATA"):
					io.WriteString(c, tc.lost)
					return false
				case !onFirst && line == tc.refuse:
					io.WriteString(c, "550 5.1.1 no such user\r\n")
				case strings.EqualFold(line, "DATA"):
					if !h.accept(c, r) {
						return false
					}
				default:
					io.WriteString(c, "250 ok\r\n")
				}
				return true
			})
			r := hostileRelay(nil)
			tx, err := r.Begin(context.Background(), Route{Addr: h.addr, TLS: TLSNone}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			for _, to := range []string{"bob", "carol"} {
				if err := tx.Rcpt(mailaddr.Address{Local: to, Domain: "customer.test"}); err != nil {
					t.Fatal(err)
				}
			}
			_, err = tx.Data(message("Subject: slow\r\n\r\nbody\r\n"))
			var e *Error
			switch {
			case tc.delivered && err != nil:
				t.Fatalf("Data: %v, want delivered on a new connection", err)
			case !tc.delivered && (!errors.As(err, &e) || e.Code != 451):
				t.Fatalf("Data: %v, want 451", err)
			}
			if n := h.delivered.Load(); n != map[bool]int32{true: 1, false: 0}[tc.delivered] {
				t.Errorf("the server took %d messages", n)
			}
			if rcpts := conns.kept(); tc.delivered && strings.Join(rcpts, ",") != "RCPT TO:<bob@customer.test>,RCPT TO:<carol@customer.test>" {
				t.Errorf("the new connection got %q, want both recipients", rcpts)
			}
		})
	}
}

// TestSMTPUTF8DecidedForTheSessionUsed: whether MAIL carries SMTPUTF8 was
// decided once, at Begin, for the session then in hand. When a cached
// session failed its MAIL (a 421 as the server restarts), or a session
// was lost before DATA, the transaction went on over a new connection to
// a server that may offer other extensions now. Offered before and not
// now: MAIL still asked for it, go-smtp's client would not write it, and
// the sender heard 451 "connection lost" for an ASCII message that goes
// without it. Not offered before and offered now: an 8-bit message was
// refused for good (550 5.6.7) by a server that takes it. A sender at a
// UTF-8 domain goes as its A-labels to a server without SMTPUTF8 and as it
// came to one with it, decided again for the new connection too.
func TestSMTPUTF8DecidedForTheSessionUsed(t *testing.T) {
	const (
		with    = "250-customer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
		without = "250-customer.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
	)
	for _, tc := range []struct {
		name        string
		first, next string // the first connection's EHLO reply, and later ones'
		lost        string // the first connection's answer to the command it fails
		at          string // that command
		msg         string
		wantMail    string // the MAIL the new connection gets
		from        string // the sender; a@sender.test when ""
	}{
		{"cached session refuses MAIL, SMTPUTF8 gone", with, without, "421 4.3.2 restarting\r\n", "MAIL",
			"Subject: ascii\r\n\r\nbody\r\n", "MAIL FROM:<a@sender.test> BODY=8BITMIME", ""},
		{"session lost before DATA, SMTPUTF8 gone", with, without, "421 4.4.2 timeout\r\n", "DATA",
			"Subject: ascii\r\n\r\nbody\r\n", "MAIL FROM:<a@sender.test> BODY=8BITMIME", ""},
		{"cached session refuses MAIL, SMTPUTF8 new", without, with, "421 4.3.2 restarting\r\n", "MAIL",
			"Subject: caf\u00e9\r\n\r\nbody\r\n", "MAIL FROM:<a@sender.test> BODY=8BITMIME SMTPUTF8", ""},
		{"session lost before DATA, SMTPUTF8 new", without, with, "421 4.4.2 timeout\r\n", "DATA",
			"Subject: ascii\r\n\r\nbody\r\n", "MAIL FROM:<a@sender.test> BODY=8BITMIME SMTPUTF8", ""},
		{"session lost before DATA, SMTPUTF8 gone, IDN sender", with, without, "421 4.4.2 timeout\r\n", "DATA",
			"Subject: ascii\r\n\r\nbody\r\n", "MAIL FROM:<a@xn--bcher-kva.test> BODY=8BITMIME", "a@bücher.test"},
		{"session lost before DATA, SMTPUTF8 new, IDN sender", without, with, "421 4.4.2 timeout\r\n", "DATA",
			"Subject: ascii\r\n\r\nbody\r\n", "MAIL FROM:<a@bücher.test> BODY=8BITMIME SMTPUTF8", "a@bücher.test"},
		{"cached session refuses MAIL, SMTPUTF8 gone, IDN sender", with, without, "421 4.3.2 restarting\r\n", "MAIL",
			"Subject: ascii\r\n\r\nbody\r\n", "MAIL FROM:<a@xn--bcher-kva.test> BODY=8BITMIME", "a@bücher.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conns connLog
			h := startHostile(t, "", func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
				onFirst := conns.onFirst(c)
				verb := strings.ToUpper(strings.Fields(line + " x")[0])
				mails := 0
				if verb == "MAIL" {
					mails = conns.keep(line)
				}
				// The first MAIL on the first connection is the cached
				// case's first transaction, delivered.
				failNow := onFirst && verb == tc.at && (tc.at != "MAIL" || mails > 1)
				switch {
				case verb == "EHLO" && onFirst:
					io.WriteString(c, tc.first)
				case verb == "EHLO":
					io.WriteString(c, tc.next)
				case failNow:
					io.WriteString(c, tc.lost)
					return false
				case verb == "DATA":
					if !h.accept(c, r) {
						return false
					}
				default:
					io.WriteString(c, "250 ok\r\n")
				}
				return true
			})
			r := hostileRelay(nil)
			route := Route{Addr: h.addr, TLS: TLSNone}
			from, err := mailaddr.Parse(cmp.Or(tc.from, "a@sender.test"))
			if err != nil {
				t.Fatal(err)
			}
			send := func(msg string) error {
				tx, err := r.Begin(context.Background(), route, from, MailOptions{UTF8: true})
				if err != nil {
					return err
				}
				defer tx.Close()
				if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); err != nil {
					return err
				}
				_, err = tx.Data(message(msg))
				return err
			}
			if tc.at == "MAIL" {
				if err := send("Subject: first\r\n\r\nbody\r\n"); err != nil {
					t.Fatalf("first transaction: %v", err)
				}
			}
			if err := send(tc.msg); err != nil {
				t.Fatalf("got %v, want delivered on a new connection", err)
			}
			if mails := conns.kept(); len(mails) == 0 || mails[len(mails)-1] != tc.wantMail {
				t.Errorf("MAIL commands %q, want the last %q", mails, tc.wantMail)
			}
		})
	}
}

// A recipient after a session was dropped goes out on a new connection,
// so whether it needs SMTPUTF8 is asked of that connection: the dropped
// one's extensions refused "jörg" with 550 5.6.7 (a bounce) though the
// server it would have reached takes it.
func TestRcptAfterADroppedSessionAsksTheNextOne(t *testing.T) {
	const (
		with    = "250-customer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
		without = "250-customer.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
	)
	var conns connLog
	h := startHostile(t, "", func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
		onFirst := conns.onFirst(c)
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		if verb == "MAIL" {
			conns.keep(line)
		}
		switch {
		case verb == "EHLO" && onFirst:
			io.WriteString(c, without)
		case verb == "EHLO":
			io.WriteString(c, with)
		case verb == "MAIL" && onFirst:
			io.WriteString(c, "421 4.3.2 restarting\r\n")
			return false
		default:
			io.WriteString(c, "250 ok\r\n")
		}
		return true
	})
	r := hostileRelay(nil)
	tx, err := r.Begin(context.Background(), Route{Addr: h.addr, TLS: TLSNone}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{UTF8: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	var e *Error
	if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); !errors.As(err, &e) || !e.Temporary() {
		t.Fatalf("first recipient: got %v, want the 421 as a temporary failure", err)
	}
	if err := tx.Rcpt(mailaddr.Address{Local: "j\u00f6rg", Domain: "customer.test"}); err != nil {
		t.Fatalf("second recipient: got %v, want accepted on a new connection offering SMTPUTF8", err)
	}
	if mails, want := conns.kept(), "MAIL FROM:<a@sender.test> BODY=8BITMIME SMTPUTF8"; len(mails) != 2 || mails[1] != want {
		t.Errorf("MAIL commands %q, want the second %q", mails, want)
	}
}

// TestReplyBeforeTheEndOfDataIsNoDelivery: a customer's server that
// answers the message before it has all of it (its 250 written with the
// 354, or while the body is still coming) gave a reply the relay read as
// the answer to the end of the data it sent after: the sender heard 250,
// and the server's real answer to the message (here 554, refusing it)
// was left unread. The message was reported delivered where the server
// did not take it. A reply waiting before the end of the data is sent is
// no answer to the message: the data is never ended (the connection is
// closed, which aborts the transaction, RFC 5321 §3.8), so the server
// cannot take it either, and the sender hears 451 and tries again.
func TestReplyBeforeTheEndOfDataIsNoDelivery(t *testing.T) {
	const early, final = "250 2.0.0 queued early\r\n", "554 5.7.1 refused after all\r\n"
	// answered is closed once the server wrote its early reply in the
	// middle of a body; the body's end waits for it.
	var answered chan struct{}
	answerWhileTheBodyComes := func(c net.Conn, r *bufio.Reader) error {
		io.WriteString(c, "354 go ahead\r\n")
		if _, err := r.ReadString('\n'); err != nil {
			return err
		}
		io.WriteString(c, early)
		close(answered)
		return skipData(r)
	}
	tests := []struct {
		name string
		mode TLSMode
		// answer reads the body up to its dot, having written the early
		// reply where the case puts it.
		answer func(c net.Conn, r *bufio.Reader) error
		// big: the body's end is written only once the server has
		// answered, having read its start.
		big bool
	}{
		{"250 written with the 354", TLSNone, func(c net.Conn, r *bufio.Reader) error {
			io.WriteString(c, "354 go ahead\r\n"+early)
			return skipData(r)
		}, false},
		{"250 written with the 354, under TLS", TLSRequired, func(c net.Conn, r *bufio.Reader) error {
			io.WriteString(c, "354 go ahead\r\n"+early)
			return skipData(r)
		}, false},
		// Two records, the 354's and the 250's, in one segment: the
		// relay's TLS reads both from the socket to give the 354, and
		// the 250 waits in the TLS layer, neither in the socket nor in
		// the reply buffer.
		{"250 written with the 354 in a record of its own, under TLS", TLSRequired, func(c net.Conn, r *bufio.Reader) error {
			corked(c, func() {
				io.WriteString(c, "354 go ahead\r\n")
				io.WriteString(c, early)
			})
			return skipData(r)
		}, false},
		{"250 written while the body comes", TLSNone, answerWhileTheBodyComes, true},
		{"250 written while the body comes, under TLS", TLSRequired, answerWhileTheBodyComes, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var first connLog
			var ended atomic.Int32 // messages whose end of data the server read
			h := startHostile(t, "", func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
				switch {
				case strings.HasPrefix(strings.ToUpper(line), "EHLO"):
					io.WriteString(c, "250-customer.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
				case strings.EqualFold(line, "DATA") && first.onFirst(c):
					if tt.answer(c, r) != nil {
						return false
					}
					ended.Add(1)
					io.WriteString(c, final)
				case strings.EqualFold(line, "DATA"):
					return h.accept(c, r)
				default:
					io.WriteString(c, "250 ok\r\n")
				}
				return true
			})
			r := hostileRelay(func(c *Config) { c.CommandTimeout, c.DataTimeout = 5*time.Second, 5*time.Second })
			route := Route{Addr: h.addr, TLS: tt.mode}
			tx, err := r.Begin(context.Background(), route, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); err != nil {
				t.Fatal(err)
			}
			answered = make(chan struct{})
			var msg io.Reader = strings.NewReader("Subject: hi\r\n\r\nbody\r\n")
			if tt.big {
				// More than the client's write buffer, so the start
				// leaves before the end is read.
				msg = io.MultiReader(&endlessMessage{n: 1000}, waitReader(answered), strings.NewReader("the end\r\n"))
			}
			reply, err := tx.Data(msg, textBits(""))
			tx.Close()
			var e *Error
			if !errors.As(err, &e) || !e.Temporary() || e.MaybeTaken {
				t.Fatalf("Data: %q, %v; want a temporary error, the message not taken (the server answered before it had it)", reply, err)
			}
			// The server never read the end of the data: it cannot
			// have taken the message.
			time.Sleep(200 * time.Millisecond)
			if n := ended.Load(); n != 0 {
				t.Errorf("the server read the end of the data %d times, want the data never ended", n)
			}
			// The session is not used again: the next message goes on a
			// new connection and is delivered.
			if err := deliver(r, route, "next"); err != nil {
				t.Fatalf("next message: %v", err)
			}
			if n := h.conns.Load(); n != 2 {
				t.Errorf("%d connections, want the session that answered early replaced", n)
			}
		})
	}
}

// waitReader reads as empty once ch is closed and the reply written
// before it has had time to arrive.
type waitReader chan struct{}

func (w waitReader) Read([]byte) (int, error) {
	<-w
	time.Sleep(100 * time.Millisecond)
	return 0, io.EOF
}

// TestStrayReplyInATransactionIsNotTheNextCommands: a customer's server
// that sends one reply more than it was asked for in the middle of a
// transaction (a second 250 with its reply to MAIL and the first RCPT,
// or one a moment later) had it read as the reply to the relay's next
// command: the next recipient, which the server refused with 550, was
// answered 250 to the sender, and that 550 was then read as the reply to
// DATA, so the whole message (its first recipient's, whom the server had
// taken) was refused for good. A reply waiting before a command is sent
// is no reply to it: the transaction is out of step, and the sender hears
// 451 for that recipient and the message, and tries again. Before DATA
// (the message's only recipient taken), nothing was delivered on the
// session, so the transaction goes again on a new connection, as after a
// session lost before DATA; DATA read the stray reply, and the sender
// heard 451.
func TestStrayReplyInATransactionIsNotTheNextCommands(t *testing.T) {
	stray := func(c net.Conn) { io.WriteString(c, "250 2.1.5 stray\r\n") }
	strayLater := func(c net.Conn) {
		go func() {
			time.Sleep(50 * time.Millisecond)
			io.WriteString(c, "250 2.1.5 stray\r\n")
		}()
	}
	tests := []struct {
		name string
		// stray writes the reply nobody asked for after the first
		// recipient's.
		stray func(c net.Conn)
		// carol: a second recipient follows, which the server refuses.
		carol bool
	}{
		{"with the first recipient's reply, a recipient next", stray, true},
		{"a moment after it, a recipient next", strayLater, true},
		{"with the first recipient's reply, DATA next", stray, false},
		{"a moment after it, DATA next", strayLater, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var first connLog
			h := startHostile(t, "250-customer.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n", func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
				switch {
				case strings.HasPrefix(line, "RCPT TO:<bob@"):
					io.WriteString(c, "250 2.1.5 ok\r\n")
					if first.onFirst(c) {
						tt.stray(c)
					}
				case strings.HasPrefix(line, "RCPT TO:<carol@"):
					io.WriteString(c, "550 5.1.1 no such user\r\n")
				case strings.EqualFold(line, "DATA"):
					return h.accept(c, r)
				default:
					io.WriteString(c, "250 ok\r\n")
				}
				return true
			})
			r := hostileRelay(func(c *Config) { c.CommandTimeout = 5 * time.Second })
			tx, err := r.Begin(context.Background(), Route{Addr: h.addr, TLS: TLSNone}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond) // the stray reply has come
			if !tt.carol {
				if _, err := tx.Data(message("Subject: hi\r\n\r\nbody\r\n")); err != nil {
					t.Errorf("Data: %v, want delivered on a new connection", err)
				}
				if n, c := h.delivered.Load(), h.conns.Load(); n != 1 || c != 2 {
					t.Errorf("the server took %d messages over %d connections, want 1 over 2", n, c)
				}
				return
			}
			err = tx.Rcpt(mailaddr.Address{Local: "carol", Domain: "customer.test"})
			var e *Error
			if !errors.As(err, &e) || !e.Temporary() {
				t.Errorf("RCPT carol@, refused by the server after a stray 250: %v, want a temporary error (not the stray reply's 250)", err)
			}
			_, err = tx.Data(message("Subject: hi\r\n\r\nbody\r\n"))
			if !errors.As(err, &e) || !e.Temporary() {
				t.Errorf("Data: %v, want a temporary error, not a refusal read from another command's reply", err)
			}
			if n := h.delivered.Load(); n != 0 {
				t.Errorf("the server took %d messages, want none", n)
			}
		})
	}
}
