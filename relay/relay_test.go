package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/prometheus/client_golang/prometheus"
)

// downstream records how each session arrived: HELO name, TLS, message.
type downstream struct {
	mu       sync.Mutex
	helo     []string
	tls      []bool
	messages []string
}

type dsSession struct {
	d *downstream
	c *smtp.Conn
}

func (s *dsSession) Reset()                                    {}
func (s *dsSession) Logout() error                             { return nil }
func (s *dsSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (s *dsSession) Rcpt(to string, _ *smtp.RcptOptions) error { return nil }
func (s *dsSession) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	_, tlsOn := s.c.TLSConnectionState()
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.helo = append(s.d.helo, s.c.Hostname())
	s.d.tls = append(s.d.tls, tlsOn)
	s.d.messages = append(s.d.messages, string(b))
	return nil
}

func startDownstream(t *testing.T, withTLS bool) (*downstream, string) {
	t.Helper()
	d := &downstream{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &dsSession{d: d, c: c}, nil }))
	srv.Domain = "customer.test"
	srv.AllowInsecureAuth = true
	if withTLS {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{smtptest.SelfSigned(t, "customer.test")}}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return d, l.Addr().String()
}

// loopbackGuard lets tenant routes reach the loopback downstreams of tests,
// as relay.allowed_route_networks: [127.0.0.0/8] would.
func loopbackGuard() *netguard.Guard {
	return netguard.New(nil, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
}

func newRelay() *Relay {
	return New(DefaultConfig(), "mx1.mxgrid.test", loopbackGuard(), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
}

func send(t *testing.T, r *Relay, route Route) error {
	t.Helper()
	tx, err := r.Begin(context.Background(), route, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
	if err != nil {
		return err
	}
	defer tx.Close()
	if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); err != nil {
		return err
	}
	_, err = tx.Data(message("Subject: hi\r\n\r\nbody\r\n"))
	return err
}

// message is a body for Data with the 8-bit checks smtpd makes.
func message(s string) (io.Reader, EightBit) {
	return strings.NewReader(s), textBits(s)
}

// textBits is EightBit for a message without MIME parts: its header is
// what comes before the first empty line.
type textBits string

func (s textBits) Any() bool { return has8Bit(string(s)) }

func (s textBits) InHeader() (bool, error) {
	head, _, _ := strings.Cut(string(s), "\r\n\r\n")
	return has8Bit(head), nil
}

func has8Bit(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r >= utf8.RuneSelf })
}

func TestTLSModes(t *testing.T) {
	tests := []struct {
		name      string
		serverTLS bool
		mode      TLSMode
		wantTLS   bool
		wantCode  int // 0: delivered
	}{
		{"none ignores offered STARTTLS", true, TLSNone, false, 0},
		{"opportunistic uses offered STARTTLS", true, TLSOpportunistic, true, 0},
		{"opportunistic falls back to clear text", false, TLSOpportunistic, false, 0},
		{"required uses STARTTLS", true, TLSRequired, true, 0},
		{"required refuses clear text", false, TLSRequired, false, 451},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, addr := startDownstream(t, tt.serverTLS)
			err := send(t, newRelay(), Route{Addr: addr, TLS: tt.mode})
			if tt.wantCode != 0 {
				var re *Error
				if !errors.As(err, &re) || re.Code != tt.wantCode {
					t.Fatalf("err = %v, want code %d", err, tt.wantCode)
				}
				if len(d.messages) != 0 {
					t.Fatal("message sent although the route's TLS mode forbids it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(d.messages) != 1 || d.tls[0] != tt.wantTLS {
				t.Fatalf("delivered %d, tls %v; want 1 with tls=%v", len(d.messages), d.tls, tt.wantTLS)
			}
			// Customer servers with HELO checks refuse "localhost".
			if d.helo[0] != "mx1.mxgrid.test" {
				t.Errorf("HELO name %q, want our hostname", d.helo[0])
			}
		})
	}
}

func TestUnreachableAndCancelled(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	_, err := newRelay().Begin(context.Background(), Route{Addr: addr, TLS: TLSNone}, mailaddr.Address{Local: "a", Domain: "b.test"}, MailOptions{})
	var re *Error
	if !errors.As(err, &re) || re.Code != 451 || re.Enhanced != [3]int{4, 4, 1} {
		t.Fatalf("unreachable: %v, want 451 4.4.1", err)
	}

	// A server that accepts but never greets: cancelling the context must
	// unblock Begin at once rather than wait for the command timeout.
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = newRelay().Begin(ctx, Route{Addr: silent.Addr().String(), TLS: TLSNone}, mailaddr.Address{Local: "a", Domain: "b.test"}, MailOptions{})
	if !errors.As(err, &re) || !re.Temporary() {
		t.Fatalf("silent server: %v, want a temporary error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancelled Begin took %v", d)
	}
}

func TestDownstreamErrorMapping(t *testing.T) {
	tests := []struct {
		name         string
		err          error
		wantCode     int
		wantEnhanced [3]int
	}{
		{"permanent with enhanced code", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, 550, [3]int{5, 1, 1}},
		{"temporary without enhanced code", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.NoEnhancedCode, Message: "later"}, 451, [3]int{4, 0, 0}},
		{"enhanced class contradicting the code", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{5, 1, 1}}, 450, [3]int{4, 0, 0}},
		// RFC 3463 §2: subject and detail are one to three digits. The
		// code goes into our reply as the server wrote it.
		{"negative subject", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, -1, 1}, Message: "no"}, 550, [3]int{5, 0, 0}},
		{"detail of four digits", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1000}, Message: "no"}, 550, [3]int{5, 0, 0}},
		{"subject of 999", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 999, 0}, Message: "later"}, 450, [3]int{4, 999, 0}},
		{"connection lost", io.ErrUnexpectedEOF, 451, [3]int{4, 4, 2}},
		{"non-ASCII text", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Postfach unbekannt: müller"}, 550, [3]int{5, 1, 1}},
		// 421 closes the session it is said in (RFC 5321 §3.8): passed on,
		// it would close the sender's too, for a failure of ours.
		{"closing", &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Idle timeout"}, 451, [3]int{4, 4, 2}},
		{"closing without enhanced code", &smtp.SMTPError{Code: 421, EnhancedCode: smtp.NoEnhancedCode, Message: "busy"}, 451, [3]int{4, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := downstreamError(Route{Addr: "h:25"}, "RCPT", tt.err)
			if e.Code != tt.wantCode || e.Enhanced != tt.wantEnhanced || e.Message == "" {
				t.Fatalf("got %d %v %q", e.Code, e.Enhanced, e.Message)
			}
			// RFC 5321 §4.2: our reply's text is printable ASCII.
			if strings.ContainsFunc(e.Message, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
				t.Errorf("reply text %q is not printable ASCII", e.Message)
			}
		})
	}
}

// floodingDownstream greets with greeting, answers EHLO with ehlo and, at
// the command named flood (GREETING: at once), starts a reply it streams
// until the connection breaks. It reports how many bytes of it were
// written.
func floodingDownstream(t *testing.T, greeting, ehlo, flood, chunk string) (addr string, written <-chan int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	done := make(chan int, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		stream := func() {
			block := []byte(strings.Repeat(chunk, 64<<10/len(chunk)+1))
			n := 0
			for {
				m, err := c.Write(block)
				n += m
				if err != nil {
					done <- n
					return
				}
			}
		}
		if flood == "GREETING" {
			stream()
			return
		}
		io.WriteString(c, greeting)
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				done <- 0
				return
			}
			switch cmd := strings.ToUpper(strings.Fields(line + " x")[0]); {
			case cmd == flood:
				stream()
				return
			case cmd == "EHLO":
				io.WriteString(c, ehlo)
			default:
				io.WriteString(c, "250 ok\r\n")
			}
		}
	}()
	return l.Addr().String(), done
}

// TestEndlessReplyRefused: a customer's server (any tenant can name one)
// that never ends a reply, or a line of one, costs the sender a 451 once
// smtp.MaxReplyBytes of it are read, not the command timeout, and the node
// no more memory than that. Without the bound the relay read, and kept,
// the stream until the timeout: 7.7 GB of resident memory in 60 s.
func TestEndlessReplyRefused(t *testing.T) {
	const ehlo = "250-customer.test\r\n250 PIPELINING\r\n"
	// Lines of a kilobyte: read fastest, short of the line length limits.
	text := strings.Repeat("a", 1000)
	for _, tc := range []struct{ name, greeting, flood, chunk string }{
		{"greeting of endless lines", "", "GREETING", "220-" + text + "\r\n"},
		{"greeting of one endless line", "", "GREETING", "220 " + text},
		{"EHLO reply of endless lines", "220 customer.test\r\n", "EHLO", "250-" + text + "\r\n"},
		{"MAIL reply of endless lines", "220 customer.test\r\n", "MAIL", "250-" + text + "\r\n"},
		{"RCPT reply of endless lines", "220 customer.test\r\n", "RCPT", "550-" + text + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, written := floodingDownstream(t, tc.greeting, ehlo, tc.flood, tc.chunk)
			cfg := DefaultConfig()
			// Long enough that a relay waiting for the timeout is seen to read
			// far more than the bound.
			cfg.CommandTimeout = 3 * time.Second
			r := New(cfg, "mx1.mxgrid.test", loopbackGuard(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
			err := send(t, r, Route{Addr: addr, TLS: TLSNone})
			var re *Error
			if !errors.As(err, &re) || re.Code != 451 {
				t.Fatalf("err = %v, want 451", err)
			}
			// What the server wrote also fills both sockets' kernel buffers.
			if n := <-written; n > 32<<20 {
				t.Errorf("the server wrote %d MB of one reply before the relay hung up", n>>20)
			}
		})
	}
}

// slowRcptDownstream answers RCPT for slow@ only after delay (then 250),
// refuses gone@ with 550, and answers mixed@ with a reply whose code
// changes on its last line (then waits for more); it records every message
// it takes.
func slowRcptDownstream(t *testing.T, delay time.Duration) (addr string, delivered *int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	var n int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(c)
				io.WriteString(c, "220 customer.test\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch verb := strings.ToUpper(line[:4]); {
					case verb == "EHLO":
						io.WriteString(c, "250 customer.test\r\n")
					case strings.Contains(line, "slow@"):
						time.Sleep(delay)
						io.WriteString(c, "250 2.1.5 ok, at last\r\n")
					case strings.Contains(line, "gone@"):
						io.WriteString(c, "550 5.1.1 no such user\r\n")
					case strings.Contains(line, "mixed@"):
						io.WriteString(c, "250-2.1.5 ok\r\n550 5.1.1 no such user\r\n")
					case verb == "DATA":
						io.WriteString(c, "354 go ahead\r\n")
						if skipData(r) != nil {
							return
						}
						mu.Lock()
						n++
						mu.Unlock()
						io.WriteString(c, "250 2.0.0 queued\r\n")
					case verb == "QUIT":
						io.WriteString(c, "221 bye\r\n")
						return
					default:
						io.WriteString(c, "250 ok\r\n")
					}
				}
			}()
		}
	}()
	return l.Addr().String(), &n
}

// begunForBob begins a transaction to the server at addr, with
// bob@customer.test accepted, on a relay whose commands time out after
// commandTimeout; it is closed at the end of the test.
func begunForBob(t *testing.T, addr string, commandTimeout time.Duration) *Transaction {
	t.Helper()
	cfg := DefaultConfig()
	cfg.CommandTimeout = commandTimeout
	r := New(cfg, "mx1.mxgrid.test", loopbackGuard(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	tx, err := r.Begin(context.Background(), Route{Addr: addr, TLS: TLSNone}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tx.Close)
	if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); err != nil {
		t.Fatal(err)
	}
	return tx
}

// TestTimedOutRcptEndsTheTransaction: a RCPT whose reply did not come
// within command_timeout leaves that reply on its way, so the connection
// is out of step. Going on with it, the next RCPT read the late reply as
// its own (it came after the timeout but before the next one): gone@, which the customer's server refused, was answered 250,
// and the refusal then read as the reply to DATA (a 550 for the whole
// message). After a timeout or a broken connection, the transaction ends:
// every later RCPT and DATA answers 451, nothing is sent.
func TestTimedOutRcptEndsTheTransaction(t *testing.T) {
	addr, delivered := slowRcptDownstream(t, 800*time.Millisecond)
	tx := begunForBob(t, addr, 500*time.Millisecond)
	wantTempfail := func(step string, err error) {
		t.Helper()
		var e *Error
		if !errors.As(err, &e) || e.Code/100 != 4 {
			t.Errorf("%s: %v, want a 4xx", step, err)
		}
	}
	wantTempfail("RCPT slow@ (timed out)", tx.Rcpt(mailaddr.Address{Local: "slow", Domain: "customer.test"}))
	wantTempfail("RCPT gone@ after the timeout", tx.Rcpt(mailaddr.Address{Local: "gone", Domain: "customer.test"}))
	_, err := tx.Data(message("Subject: hi\r\n\r\nbody\r\n"))
	wantTempfail("DATA after the timeout", err)
	time.Sleep(1500 * time.Millisecond)
	if *delivered != 0 {
		t.Errorf("delivered %d messages after a timed-out RCPT, want 0", *delivered)
	}
}

// TestMixedCodeReplyEndsTheTransaction: a customer's server (any tenant
// names one) whose RCPT reply begins "250-" and ends "550 " said neither.
// The relay read the 550 line as more text of a 250 reply still going on
// and waited for its end: the sender waited the whole command timeout for
// a 451. Now the reply ends at its last line, as a protocol error: the
// sender hears 451 at once, and the connection, out of step, is not used
// again.
func TestMixedCodeReplyEndsTheTransaction(t *testing.T) {
	addr, delivered := slowRcptDownstream(t, 0)
	const timeout = 8 * time.Second
	tx := begunForBob(t, addr, timeout)
	start := time.Now()
	err := tx.Rcpt(mailaddr.Address{Local: "mixed", Domain: "customer.test"})
	var e *Error
	if !errors.As(err, &e) || e.Code != 451 {
		t.Fatalf("RCPT mixed@: %v, want 451", err)
	}
	if waited := time.Since(start); waited > timeout/2 {
		t.Errorf("RCPT mixed@ answered after %v, the relay waited for the timeout", waited)
	}
	if _, err := tx.Data(message("Subject: hi\r\n\r\nbody\r\n")); !errors.As(err, &e) || e.Code/100 != 4 {
		t.Errorf("DATA after the malformed reply: %v, want a 4xx", err)
	}
	if *delivered != 0 {
		t.Errorf("delivered %d messages after a malformed reply, want 0", *delivered)
	}
}

// skipData reads a message's data up to its lone dot, for fake servers
// that only answer it.
func skipData(r *bufio.Reader) error {
	for {
		l, err := r.ReadString('\n')
		if err != nil || l == ".\r\n" {
			return err
		}
	}
}

// failingReader gives its text, then err.
type failingReader struct {
	text string
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.text == "" {
		return 0, f.err
	}
	n := copy(p, f.text)
	f.text = f.text[n:]
	return n, nil
}

// A message that cannot be read to its end (a spool file's read error)
// must not be delivered: ending DATA after the part that was read had the
// customer's server commit the truncated message while the sender, told
// 451, sent it again.
func TestUnreadableMessageIsNotDelivered(t *testing.T) {
	sink := smtptest.StartSink(t)
	r := newRelay()
	tx, err := r.Begin(context.Background(), Route{Addr: sink.Addr, TLS: TLSNone}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); err != nil {
		t.Fatal(err)
	}
	msg := &failingReader{text: "Subject: hi\r\n\r\nthe first half\r\n", err: errors.New("read spool file: input/output error")}
	_, err = tx.Data(msg, textBits(""))
	var e *Error
	if !errors.As(err, &e) || !e.Temporary() {
		t.Errorf("Data: %v, want a temporary error", err)
	}
	tx.Close()
	time.Sleep(200 * time.Millisecond)
	if got := sink.Messages(); len(got) != 0 {
		t.Errorf("the customer's server got %d messages, want none: %q", len(got), got[0].Data)
	}
}

// askedBits is EightBit that counts the header questions asked.
type askedBits struct {
	any      bool
	inHeader error
	asked    int
}

func (a *askedBits) Any() bool { return a.any }

func (a *askedBits) InHeader() (bool, error) {
	a.asked++
	return false, a.inHeader
}

// TestEightBitHeaderAskedOnlyWhereItMatters: whether a header field is
// 8-bit may cost a second read of a spooled message, so Data asks it only
// of an 8-bit message whose sender asked for SMTPUTF8, for a server without
// it. An error reading the message is a temporary failure, with no DATA
// sent: a spool file's read error must not refuse mail for good.
func TestEightBitHeaderAskedOnlyWhereItMatters(t *testing.T) {
	readErr := errors.New("read spool file: input/output error")
	tests := []struct {
		name      string
		smtputf8  bool // the server offers SMTPUTF8
		utf8      bool // the sender asked for it
		bits      askedBits
		wantAsked int
		wantCode  int // 0: delivered
	}{
		{name: "server offers SMTPUTF8", smtputf8: true, utf8: true, bits: askedBits{any: true}},
		{name: "sender did not ask for SMTPUTF8", bits: askedBits{any: true}},
		{name: "7-bit message", utf8: true},
		{name: "8-bit message", utf8: true, bits: askedBits{any: true}, wantAsked: 1},
		{name: "unreadable message", utf8: true, bits: askedBits{any: true, inHeader: readErr}, wantAsked: 1, wantCode: 451},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ehlo := "250-customer.test\r\n250 8BITMIME\r\n"
			if tc.smtputf8 {
				ehlo = "250-customer.test\r\n250-SMTPUTF8\r\n250 8BITMIME\r\n"
			}
			h := startHostile(t, ehlo, func(h *hostile, c net.Conn, r *bufio.Reader, line string) bool {
				if strings.EqualFold(line, "DATA") {
					return h.accept(c, r)
				}
				io.WriteString(c, "250 ok\r\n")
				return true
			})
			r := hostileRelay(nil)
			tx, err := r.Begin(context.Background(), Route{Addr: h.addr, TLS: TLSNone}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{UTF8: tc.utf8})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			if err := tx.Rcpt(mailaddr.Address{Local: "bob", Domain: "customer.test"}); err != nil {
				t.Fatal(err)
			}
			_, err = tx.Data(strings.NewReader("Subject: hi\r\n\r\nbody\r\n"), &tc.bits)
			var e *Error
			switch {
			case tc.wantCode == 0 && err != nil:
				t.Fatalf("Data: %v, want delivered", err)
			case tc.wantCode != 0 && (!errors.As(err, &e) || e.Code != tc.wantCode || !errors.Is(err, readErr)):
				t.Fatalf("Data: %v, want %d with the read error", err, tc.wantCode)
			}
			if tc.bits.asked != tc.wantAsked {
				t.Errorf("InHeader asked %d times, want %d", tc.bits.asked, tc.wantAsked)
			}
			want := int32(1)
			if tc.wantCode != 0 {
				want = 0
			}
			if h.delivered.Load() != want {
				t.Errorf("server got %d messages, want %d", h.delivered.Load(), want)
			}
		})
	}
}
