package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// envelopeLog records the senders and recipients a backend took.
type envelopeLog struct {
	mu   sync.Mutex
	cmds []string
}

func (l *envelopeLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cmds = append(l.cmds, s)
}

func (l *envelopeLog) took() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.cmds...)
}

// envelopeLogSession takes every sender and every body (a whole one is
// logged as DATA) but one saying "refuse", which it answers with 554, and
// every recipient but busy@, which it answers with 421 (closing), and
// elsewhere@, which it defers to another transaction with 452 4.5.3. It
// logs why the server closes, when a limit closes it.
type envelopeLogSession struct{ l *envelopeLog }

func (envelopeLogSession) Reset()        {}
func (envelopeLogSession) Logout() error { return nil }

// Closing logs why the server closed, as "closing: <reason>".
func (s envelopeLogSession) Closing(reason error) { s.l.add("closing: " + reason.Error()) }
func (s envelopeLogSession) Data(r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if bytes.Contains(body, []byte("refuse")) {
		return &SMTPError{Code: 554, EnhancedCode: EnhancedCode{5, 7, 1}, Message: "refused"}
	}
	s.l.add("DATA")
	return nil
}
func (s envelopeLogSession) Mail(from string, _ *MailOptions) error {
	s.l.add("MAIL " + from)
	return nil
}

func (s envelopeLogSession) Rcpt(to string, _ *RcptOptions) error {
	if strings.HasPrefix(to, "busy@") {
		return &SMTPError{Code: 421, EnhancedCode: EnhancedCode{4, 7, 0}, Message: "closing"}
	}
	if strings.HasPrefix(to, "elsewhere@") {
		return &SMTPError{Code: 452, EnhancedCode: EnhancedCode{4, 5, 3}, Message: "send it in another transaction"}
	}
	s.l.add("RCPT " + to)
	return nil
}

// TestNothingAfterTheEnd: once the server has said it is closing (221 to
// QUIT, 421 from itself or the backend, too many errors), it executes
// nothing the client pipelined after (RFC 5321 §4.1.1.10, §3.8). Upstream
// went on with whatever was already read: a MAIL after QUIT reached a
// session already logged out, a nil dereference and a logged stack trace
// for any client that asked; after a 421 the transaction went on, and a
// pipelined BDAT LAST could deliver a message the client had been told
// would not be.
func TestNothingAfterTheEnd(t *testing.T) {
	const ehlo = "EHLO c.test\r\n"
	for _, tc := range []struct {
		name, input string
		readTimeout time.Duration
		want        []string
		envelope    []string
	}{
		{name: "QUIT", input: ehlo + "QUIT\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n",
			want: []string{"250", "221"}},
		{name: "421 from the backend", input: ehlo + "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<busy@example.org>\r\nRCPT TO:<c@example.org>\r\nBDAT 4 LAST\r\nSubj",
			want: []string{"250", "250", "250", "421"}, envelope: []string{"MAIL a@example.org", "RCPT b@example.org"}},
		{name: "too many errors", input: ehlo + strings.Repeat("BOGUS\r\n", errThreshold+1) + "MAIL FROM:<a@example.org>\r\n",
			want: append(append([]string{"250"}, strings.Fields(strings.Repeat("501 ", errThreshold+1))...), "421"), envelope: []string{"closing: smtp: too many errors"}},
		// A line cut short by a timeout is no command: it used to be run
		// as one (500 for "NOO"), and its reply reset the deadline.
		{name: "half a command, then silence", readTimeout: 200 * time.Millisecond, input: ehlo + "NOO",
			want: []string{"250", "421"}, envelope: []string{"closing: smtp: command not received in time"}},
		// AUTH where none is offered is an error, not "TLS is required".
		{name: "AUTH not offered", input: ehlo + strings.Repeat("AUTH PLAIN AGEAYg==\r\n", errThreshold+1) + "MAIL FROM:<a@example.org>\r\n",
			want: append(append([]string{"250"}, strings.Fields(strings.Repeat("502 ", errThreshold+1))...), "421"), envelope: []string{"closing: smtp: too many errors"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			elog := &envelopeLog{}
			rest, errLog := converse(t, elog, func(s *Server) { s.ReadTimeout = tc.readTimeout }, tc.input)
			if got := replyCodes(bufio.NewReader(strings.NewReader(rest)), -1); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("replies %v, want %v", got, tc.want)
			}
			if took := elog.took(); strings.Join(took, " ") != strings.Join(tc.envelope, " ") {
				t.Errorf("backend took %q, want %q", took, tc.envelope)
			}
			if errLog != "" {
				t.Errorf("server logged: %s", errLog)
			}
		})
	}
}

// TestHeloRepliesCarryNoEnhancedCodes: a client that greets with HELO has
// not negotiated ENHANCEDSTATUSCODES (RFC 2034 §3), so no reply to it
// carries one; after EHLO every reply does. Upstream sent them to all.
func TestHeloRepliesCarryNoEnhancedCodes(t *testing.T) {
	const transaction = "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nVRFY b\r\nDATA\r\nrefuse\r\n.\r\n"
	rest, _ := converse(t, &envelopeLog{}, nil, "HELO c.test\r\n"+transaction+"EHLO c.test\r\n"+transaction+"QUIT\r\n")
	want := []string{
		"250 localhost Hello c.test", "250 Ok", "250 Ok",
		"252 Cannot VRFY user, but will accept message", "354 Go ahead. End your data with <CR><LF>.<CR><LF>", "554 refused", "250 SIZE",
		"250 2.1.0 Ok", "250 2.1.5 Ok",
		"252 2.5.0 Cannot VRFY user, but will accept message", "354 Go ahead. End your data with <CR><LF>.<CR><LF>", "554 5.7.1 refused",
		"221 2.0.0 Bye",
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSuffix(rest, "\r\n"), "\r\n") {
		if len(line) > 3 && line[3] == ' ' {
			got = append(got, line)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("replies:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestUnknownCommandEchoedPrintable: the reply to an unknown command
// names it in printable ASCII (RFC 5321 §4.2). Upstream echoed the four
// octets raw: a NUL, a bare CR or 8-bit octets went back in our reply.
func TestUnknownCommandEchoedPrintable(t *testing.T) {
	rest, _ := converse(t, &envelopeLog{}, nil, "XY\x00Z\r\nXY\rZ\r\nX\xc3\xa9Z\r\nQUIT\r\n")
	want := "500 5.5.2 Syntax errors, XY?Z command unrecognized\r\n" +
		"500 5.5.2 Syntax errors, XY?Z command unrecognized\r\n" +
		"500 5.5.2 Syntax errors, X??Z command unrecognized\r\n" +
		"221 2.0.0 Bye\r\n"
	if rest != want {
		t.Errorf("replies %q, want %q", rest, want)
	}
}

// converse sends input to a fresh server whose sessions log to elog and
// returns all it answered after its greeting, up to its close, and what it
// logged.
func converse(t *testing.T, elog *envelopeLog, configure func(*Server), input string) (replies, errLog string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	s := NewServer(BackendFunc(func(*Conn) (Session, error) { return envelopeLogSession{elog}, nil }))
	s.Domain = "localhost"
	s.ErrorLog = log.New(lockedWriter{&logMu, &logBuf}, "", 0)
	if configure != nil {
		configure(s)
	}
	go s.Serve(l)
	defer s.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprint(c, input)
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Errorf("connection not closed: %v", err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	return string(rest), logBuf.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// TestBrokenBodyEndsTheSession: when the body could not be read to its end
// (a read timed out, a line over the limit), the server answers the
// transaction and closes: it no longer knows where the body ends, so what
// follows is not a command. Upstream read on: the rest of the body was
// executed as commands (here a MAIL the client sent as message text), and
// after a line over the limit a second, unsolicited reply followed. A BDAT
// chunk that could not be read got 554 (permanent) and the same, and so did
// the chunk of a BDAT command the server could not parse; a BDAT LAST chunk
// cut short by the end of the connection was taken for the whole message
// and delivered.
func TestBrokenBodyEndsTheSession(t *testing.T) {
	const open = "EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
	const later = "MAIL FROM:<body@example.org>\r\n"
	for _, tc := range []struct {
		name, input string
		// then is sent after a pause, past the read timeout if timeout;
		// with halfClose the client then sends nothing more.
		then      string
		timeout   bool
		halfClose bool
		want      []string
	}{
		{name: "DATA timed out", input: open + "DATA\r\nSubject: x\r\n", then: later, timeout: true,
			want: []string{"250", "250", "250", "354", "554"}},
		{name: "BDAT chunk timed out", input: open + "BDAT 100\r\nSubject: x\r\n", then: later, timeout: true,
			want: []string{"250", "250", "250", "421"}},
		{name: "BDAT LAST chunk cut short", input: open + "BDAT 100 LAST\r\nSubject: x\r\n", halfClose: true,
			want: []string{"250", "250", "250", "421"}},
		{name: "BDAT size unreadable", input: open + "BDAT 99999999999\r\n", then: later, want: []string{"250", "250", "250", "501"}},
		{name: "BDAT unknown parameter", input: open + "BDAT 4 FIRST\r\n", then: later, want: []string{"250", "250", "250", "501"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			elog := &envelopeLog{}
			s := NewServer(BackendFunc(func(*Conn) (Session, error) { return envelopeLogSession{elog}, nil }))
			s.Domain = "localhost"
			s.MaxLineLength = 100
			pause := 50 * time.Millisecond
			if tc.timeout {
				s.ReadTimeout = 200 * time.Millisecond
				pause = 400 * time.Millisecond
			}
			s.ErrorLog = log.New(io.Discard, "", 0)
			go s.Serve(l)
			defer s.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			r := bufio.NewReader(c)
			r.ReadString('\n')
			fmt.Fprint(c, tc.input)
			time.Sleep(pause)
			fmt.Fprint(c, tc.then)
			if tc.halfClose {
				c.(*net.TCPConn).CloseWrite()
			}
			rest, err := io.ReadAll(r)
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("connection not closed: %v", err)
			}
			if got := replyCodes(bufio.NewReader(bytes.NewReader(rest)), -1); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("replies %v, want %v", got, tc.want)
			}
			if took := elog.took(); len(took) != 2 {
				t.Errorf("backend took %q, want the first MAIL and RCPT only", took)
			}
		})
	}
}

// TestDataLinesAreNotLimited: a body line far over MaxLineLength reaches
// the backend whole, what the body holds is never a command, and the
// command after the body is held to the limit again. (Commands read
// ahead with the body's end escape the limit, but they fit the reader's
// 16 KiB buffer, far below mxgrid's 64 KiB limit.)
func TestDataLinesAreNotLimited(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	elog := &envelopeLog{}
	s := NewServer(BackendFunc(func(*Conn) (Session, error) { return envelopeLogSession{elog}, nil }))
	s.Domain = "localhost"
	s.MaxLineLength = 100
	s.ErrorLog = log.New(io.Discard, "", 0)
	go s.Serve(l)
	defer s.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	long := "Subject: " + strings.Repeat("x", 5000) + "\r\n\r\nMAIL FROM:<body@example.org>\r\n"
	fmt.Fprint(c, "EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
	got := replyCodes(r, 4) // the body only after 354, as RFC 2920 says
	fmt.Fprint(c, long+".\r\n")
	got = append(got, replyCodes(r, 1)...)
	fmt.Fprint(c, "NOOP "+strings.Repeat("y", 200)+"\r\n")
	got = append(got, replyCodes(r, -1)...)
	if strings.Join(got, " ") != "250 250 250 354 250 500" {
		t.Errorf("replies %v, want the body taken and the long command after it refused", got)
	}
	if took := elog.took(); strings.Join(took, " ") != "MAIL a@example.org RCPT b@example.org DATA" {
		t.Errorf("backend took %q, want one transaction", took)
	}
}
