package smtp

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// step is what a client sends at once, and how many replies it waits for
// before it sends more.
type step struct {
	send    string
	replies int
}

// roundTrips plays steps against a fresh server whose sessions log to elog
// (envelopeLogSession), each after the replies to the one before, and
// returns the reply codes and whether the server closed the connection.
func roundTrips(t *testing.T, elog *envelopeLog, configure func(*Server), steps []step) (codes []string, closed bool) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(BackendFunc(func(*Conn) (Session, error) { return envelopeLogSession{elog}, nil }))
	s.Domain = "localhost"
	configure(s)
	go s.Serve(l)
	defer s.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if codes := replyCodes(r, 1); len(codes) != 1 {
		t.Fatal("no greeting")
	}
	for _, st := range steps {
		if _, err := io.WriteString(c, st.send); err != nil {
			return codes, true
		}
		got := replyCodes(r, st.replies)
		codes = append(codes, got...)
		if len(got) < st.replies {
			return codes, true
		}
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = r.ReadByte()
	return codes, errors.Is(err, io.EOF)
}

// TestJunkCommandsCountRoundTrips: Server.MaxJunkCommands bounds the
// commands that move no mail a client had to wait for since its last
// accepted message, and closes with 421 past it, as Postfix's
// smtpd_junk_command_limit does. A command pipelined behind another costs
// no round trip and is not counted: a client may pipeline thousands of
// NOOPs (RFC 2920) and get every reply. Upstream had no limit: a NOOP now
// and then kept a connection for ever.
func TestJunkCommandsCountRoundTrips(t *testing.T) {
	const limit = 3
	ehlo := step{"EHLO c.test\r\n", 1}
	noop := step{"NOOP\r\n", 1}
	message := []step{{"MAIL FROM:<a@example.org>\r\n", 1}, {"RCPT TO:<b@example.org>\r\n", 1}, {"DATA\r\n", 1}, {"hello\r\n.\r\n", 1}}
	refused := append(append([]step(nil), message[:3]...), step{"refuse\r\n.\r\n", 1})
	for _, tc := range []struct {
		name   string
		steps  []step
		want   string
		closed bool
	}{
		{"up to the limit", []step{ehlo, noop, {"RSET\r\n", 1}},
			"250 250 250", false},
		{"one more is refused", []step{ehlo, noop, {"RSET\r\n", 1}, {"VRFY b\r\n", 1}},
			"250 250 250 421", true},
		{"a pipelined group counts once", []step{ehlo, {strings.Repeat("NOOP\r\n", 500) + "QUIT\r\n", 501}},
			"250 " + strings.Repeat("250 ", 500) + "221", true},
		{"an accepted message starts over", append(append([]step{ehlo, noop}, message...), noop, noop, ehlo, noop),
			"250 250 250 250 354 250 250 250 250 421", true},
		{"a refused one does not", append(append([]step{ehlo, noop}, refused...), noop, noop),
			"250 250 250 250 354 554 250 421", true},
		// A command refused moves no mail either: MAIL nested in a
		// transaction, RCPT or BDAT before MAIL, an address the backend
		// refuses. Without this, such a command now and then (each reply
		// restarts the command timeout) held a connection for ever. The
		// refusal that goes past the limit is followed by the 421, as
		// with too many errors.
		{"refused commands count", []step{ehlo, {"MAIL FROM:<a@example.org>\r\n", 1}, {"MAIL FROM:<a@example.org>\r\n", 1}, {"RCPT TO:<busy@example.org> X=Y\r\n", 1}, {"MAIL FROM:<a@example.org>\r\n", 2}},
			"250 250 503 555 503 421", true},
		// Pipelined or not, as Postfix's smtpd_hard_error_limit: in a
		// group they cost the client nothing, and every one was refused
		// (and logged) by the backend, write after write.
		{"refused commands in a group count each", []step{ehlo, {"MAIL FROM:<a@example.org>\r\n", 1}, {strings.Repeat("MAIL FROM:<a@example.org>\r\n", 100), 100}, {"QUIT\r\n", 1}},
			"250 250 503 503 503 421", true},
		// A MAIL the client waited for moves no mail when its
		// transaction ends without a message: "MAIL FROM, RSET" written
		// at once every so often held a connection for ever, the RSET
		// free as pipelined and MAIL no junk command.
		// A recipient deferred to another transaction (452 4.5.3, as
		// past a recipient limit) is flow control, not an error: a
		// long list pipelined meets it in bulk, and shown out, the
		// message to the recipients accepted was lost with it.
		{"recipients deferred in a group are free", []step{ehlo, {"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n" + strings.Repeat("RCPT TO:<elsewhere@example.org>\r\n", 10) + "DATA\r\n", 13}, {"hello\r\n.\r\n", 1}},
			"250 250 250 " + strings.Repeat("452 ", 10) + "354 250", false},
		{"a recipient deferred counts when waited for", []step{ehlo, {"MAIL FROM:<a@example.org>\r\n", 1}, {"RCPT TO:<elsewhere@example.org>\r\n", 1}, {"RCPT TO:<elsewhere@example.org>\r\n", 1}, {"RCPT TO:<elsewhere@example.org>\r\n", 2}},
			"250 250 452 452 452 421", true},
		{"MAIL then RSET in one go counts", []step{ehlo, {"MAIL FROM:<a@example.org>\r\nRSET\r\n", 2}, {"MAIL FROM:<a@example.org>\r\nRSET\r\n", 2}, {"MAIL FROM:<a@example.org>\r\nRSET\r\n", 2}},
			"250 250 250 250 250 250 421", true},
		{"MAIL then EHLO in one go counts", []step{ehlo, {"MAIL FROM:<a@example.org>\r\nEHLO c.test\r\n", 2}, {"MAIL FROM:<a@example.org>\r\nEHLO c.test\r\n", 2}, {"MAIL FROM:<a@example.org>\r\nEHLO c.test\r\n", 2}},
			"250 250 250 250 250 250 421", true},
		{"MAIL then BDAT given up in one go counts", []step{ehlo, {"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 0\r\nRSET\r\n", 4}, {"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 0\r\nRSET\r\n", 4}, {"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 0\r\nRSET\r\n", 4}},
			"250 250 250 250 250 250 250 250 250 250 250 250 421", true},
		{"a round trip counts once", []step{ehlo, {"NOOP\r\nMAIL FROM:<a@example.org>\r\nRSET\r\n", 3}, {"NOOP\r\nMAIL FROM:<a@example.org>\r\nRSET\r\n", 3}, {"QUIT\r\n", 1}},
			"250 250 250 250 250 250 250 221", true},
		{"an accepted message starts refusals over", append(append([]step{ehlo, {"RCPT TO:<b@example.org>\r\n", 1}, {"DATA\r\n", 1}}, message...), step{"RCPT TO:<b@example.org>\r\n", 1}, step{"DATA\r\n", 1}, noop, step{"DATA\r\n", 2}),
			"250 503 503 250 250 354 250 503 503 250 503 421", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			elog := &envelopeLog{}
			codes, closed := roundTrips(t, elog, func(s *Server) { s.MaxJunkCommands = limit }, tc.steps)
			if got := strings.Join(codes, " "); got != tc.want || closed != tc.closed {
				t.Errorf("replies %s (closed %v), want %s (closed %v)", got, closed, tc.want, tc.closed)
			}
			// A limit's close tells the session why; a QUIT's does not.
			took := elog.took()
			if told := len(took) > 0 && took[len(took)-1] == "closing: "+ErrTooMuchJunk.Error(); told != strings.HasSuffix(tc.want, "421") {
				t.Errorf("session heard %q", took)
			}
		})
	}
}

// TestLastReplyIsNotLostToAReset: the server ends a session with the
// client's input still unread (thousands of refused commands pipelined in
// one write, shown out with a 421). Closed at once, the socket sent a TCP
// reset, and a client that got it before reading the 421 lost it; read
// after, it still saw ECONNRESET, not the end of the stream. The close
// now lingers: the client reads every reply, the 421 last, then EOF.
func TestLastReplyIsNotLostToAReset(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(BackendFunc(func(*Conn) (Session, error) { return envelopeLogSession{&envelopeLog{}}, nil }))
	s.Domain = "localhost"
	s.MaxJunkCommands = 3
	go s.Serve(l)
	defer s.Close()
	// 50 KB, over the server's read buffer: most of it is still in the
	// socket when the last reply is written.
	junk := strings.Repeat("RCPT TO:<b@example.org>\r\n", 2000)
	for _, tc := range []struct {
		name, send, last string
	}{
		{"junk limit", "EHLO c.test\r\n" + junk, "421 4.7.0 Too many commands without a message, closing connection"},
		// QUIT closes at once only when nothing follows it.
		{"junk behind QUIT", "EHLO c.test\r\nQUIT\r\n" + junk, "221 2.0.0 Bye"},
		{"QUIT", "EHLO c.test\r\nQUIT\r\n", "221 2.0.0 Bye"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			go io.WriteString(c, tc.send)
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("reading the replies: %v", err)
			}
			if !strings.HasSuffix(string(got), "\r\n"+tc.last+"\r\n") {
				if len(got) > 200 {
					got = got[len(got)-200:]
				}
				t.Errorf("the replies end %q, want %q", got, tc.last)
			}
		})
	}
}

// TestStressLimits: while Server.Stressed says so, StressJunkCommands
// replaces a higher MaxJunkCommands and the first error closes the
// connection, as Postfix's smtpd_junk_command_limit and
// smtpd_hard_error_limit do under stress; a sender that greets, sends a
// message and greets again still fits. The session hears that only the
// stress limit closed it.
func TestStressLimits(t *testing.T) {
	ehlo := step{"EHLO c.test\r\n", 1}
	noop := step{"NOOP\r\n", 1}
	message := []step{{"MAIL FROM:<a@example.org>\r\n", 1}, {"RCPT TO:<b@example.org>\r\n", 1}, {"DATA\r\n", 1}, {"hello\r\n.\r\n", 1}}
	for _, tc := range []struct {
		name     string
		stressed bool
		steps    []step
		want     string
		reason   error // the session's last note, if it was told
	}{
		{"without stress", false, []step{ehlo, noop, noop, noop, {"BOGUS\r\n", 1}}, "250 250 250 250 501", nil},
		{"junk under stress", true, []step{ehlo, noop, noop}, "250 250 421", errTooMuchJunkStressed},
		{"an error under stress", true, []step{ehlo, {"BOGUS\r\n", 2}}, "250 501 421", errTooManyErrorsStressed},
		{"a sender under stress", true, append(append([]step{ehlo, ehlo}, message...), ehlo, noop, step{"QUIT\r\n", 1}),
			"250 250 250 250 354 250 250 250 221", nil},
		{"a group under stress", true, []step{ehlo, {strings.Repeat("NOOP\r\n", 10) + "QUIT\r\n", 11}},
			"250 " + strings.Repeat("250 ", 10) + "221", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			elog := &envelopeLog{}
			codes, _ := roundTrips(t, elog, func(s *Server) {
				s.MaxJunkCommands = 100
				s.StressJunkCommands = 2
				s.Stressed = func(*Conn) bool { return tc.stressed }
			}, tc.steps)
			if got := strings.Join(codes, " "); got != tc.want {
				t.Errorf("replies %s, want %s", got, tc.want)
			}
			took := elog.took()
			var told string
			if len(took) > 0 && strings.HasPrefix(took[len(took)-1], "closing: ") {
				told = took[len(took)-1]
			}
			want := ""
			if tc.reason != nil {
				want = "closing: " + tc.reason.Error()
			}
			if told != want {
				t.Errorf("session heard %q, want %v", took, tc.reason)
			}
		})
	}
	if !errors.Is(errTooMuchJunkStressed, ErrTooMuchJunk) || !errors.Is(errTooMuchJunkStressed, ErrStressed) {
		t.Error("a stress close is not both the limit's and ErrStressed")
	}
}
