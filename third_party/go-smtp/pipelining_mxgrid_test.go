package smtp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// acceptingSession takes every sender, every recipient but bad@, and
// every body.
type acceptingSession struct{}

func (acceptingSession) Reset()                          {}
func (acceptingSession) Logout() error                   { return nil }
func (acceptingSession) Mail(string, *MailOptions) error { return nil }
func (acceptingSession) Data(r io.Reader) error          { _, err := io.Copy(io.Discard, r); return err }
func (acceptingSession) Rcpt(to string, _ *RcptOptions) error {
	if strings.HasPrefix(to, "bad@") {
		return &SMTPError{Code: 550, EnhancedCode: EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	return nil
}

// writeRecordingListener records every Write the server makes to its
// connections, one entry per write.
type writeRecordingListener struct {
	net.Listener
	mu     sync.Mutex
	writes []string
}

func (l *writeRecordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &writeRecordingConn{Conn: c, l: l}, nil
}

func (l *writeRecordingListener) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.writes
	l.writes = nil
	return w
}

type writeRecordingConn struct {
	net.Conn
	l *writeRecordingListener
}

func (c *writeRecordingConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, string(p))
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// pipeliningClient starts a server and returns a client connection that has
// been greeted and said EHLO, with the server's writes so far forgotten.
func pipeliningClient(t *testing.T) (net.Conn, *bufio.Reader, *writeRecordingListener) {
	t.Helper()
	c, r, l := greetedClient(t)
	fmt.Fprintf(c, "EHLO client.test\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "250 ") {
			break
		}
	}
	l.take()
	return c, r, l
}

// greetedClient starts a server and returns a client connection that has
// read the greeting.
func greetedClient(t *testing.T) (net.Conn, *bufio.Reader, *writeRecordingListener) {
	t.Helper()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &writeRecordingListener{Listener: tl}
	s := NewServer(BackendFunc(func(*Conn) (Session, error) { return acceptingSession{}, nil }))
	s.Domain = "localhost"
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	return c, r, l
}

func readReplies(t *testing.T, r *bufio.Reader, n int) string {
	t.Helper()
	var got strings.Builder
	for i := 0; i < n; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reply %d of %d: %v (so far %q)", i+1, n, err, got.String())
		}
		got.WriteString(line)
	}
	return got.String()
}

// TestPipelinedGroupAnsweredInOneWrite: the replies to a pipelined group,
// a refused recipient among them, leave in one write, in order (RFC 2920
// allows a server to hold replies while more of the group is read).
func TestPipelinedGroupAnsweredInOneWrite(t *testing.T) {
	c, r, l := pipeliningClient(t)
	fmt.Fprintf(c, "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<bad@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n")
	got := readReplies(t, r, 5)
	want := []string{"250 ", "250 ", "550 ", "250 ", "354 "}
	lines := strings.SplitAfter(got, "\r\n")
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Fatalf("replies %q, want codes %v in order", got, want)
		}
	}
	if writes := l.take(); len(writes) != 1 {
		t.Errorf("the group's replies took %d writes, want 1: %q", len(writes), writes)
	}
	fmt.Fprintf(c, "Subject: x\r\n\r\nbody\r\n.\r\nRSET\r\nQUIT\r\n")
	if got := readReplies(t, r, 3); !strings.HasPrefix(got, "250 ") || !strings.Contains(got, "\r\n221 ") {
		t.Errorf("after the body: %q", got)
	}
}

// TestPartOfAGroupIsAnswered: a client that has sent one command and part
// of the next, and waits, gets the reply to the first: replies held back
// are sent before the server waits for more input (RFC 2920 §3.1 (7)).
func TestPartOfAGroupIsAnswered(t *testing.T) {
	c, r, _ := pipeliningClient(t)
	fmt.Fprintf(c, "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@exa")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got := readReplies(t, r, 1); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("reply to MAIL: %q", got)
	}
	fmt.Fprintf(c, "mple.org>\r\n")
	if got := readReplies(t, r, 1); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("reply to RCPT: %q", got)
	}
}

// TestTooManyErrorsInAGroupAreSent: a connection closed for too many
// errors after a reply held back in a group still sends every reply, the
// last one saying why, before it closes.
func TestTooManyErrorsInAGroupAreSent(t *testing.T) {
	c, r, _ := pipeliningClient(t)
	fmt.Fprintf(c, "MAIL FROM:<a@example.org>\r\n%sNOOP\r\n", strings.Repeat("BOGUS\r\n", errThreshold+1))
	rest, err := io.ReadAll(r)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(rest), "\r\n"), "\r\n")
	if len(lines) != errThreshold+3 || !strings.Contains(lines[len(lines)-1], "Too many errors") {
		t.Errorf("replies before the close: %q", rest)
	}
}

// TestCommandsOutOfSequence: a command the transaction's state does not
// allow gets 503 (RFC 5321 §4.3.2's "bad sequence of commands"; upstream
// said 502, "not implemented", which a client may take as "never try
// again"), and changes nothing. MAIL while a transaction is open is one
// (§4.1.4): upstream replaced the sender and kept the recipients, so DATA
// went on with a backend session that had started over. DATA, RSET and
// EHLO end a transaction, so MAIL after each of them is taken.
func TestCommandsOutOfSequence(t *testing.T) {
	body := "Subject: x\r\n\r\nbody\r\n.\r\n"
	const ehlo = "EHLO client.test\r\n"
	for _, tc := range []struct {
		name  string
		input string
		codes []string
	}{
		{"MAIL before EHLO", "MAIL FROM:<a@example.org>\r\n" + ehlo + "MAIL FROM:<a@example.org>\r\n", []string{"503", "250", "250"}},
		{"RCPT before MAIL", ehlo + "RCPT TO:<b@example.org>\r\n", []string{"250", "503"}},
		{"DATA before RCPT", ehlo + "MAIL FROM:<a@example.org>\r\nDATA\r\nRCPT TO:<b@example.org>\r\n", []string{"250", "250", "503", "250"}},
		{"DATA with every recipient refused", ehlo + "MAIL FROM:<a@example.org>\r\nRCPT TO:<bad@example.org>\r\nDATA\r\n", []string{"250", "250", "550", "503"}},
		{"BDAT before RCPT", ehlo + "MAIL FROM:<a@example.org>\r\nBDAT 4 LAST\r\nNOOPNOOP\r\n", []string{"250", "250", "503", "250"}},
		{"MAIL during BDAT", ehlo + "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 4\r\nSubjMAIL FROM:<c@example.org>\r\nBDAT 7 LAST\r\nject: x", []string{"250", "250", "250", "250", "503", "250"}},
		{"nested MAIL", ehlo + "MAIL FROM:<a@example.org>\r\nMAIL FROM:<c@example.org>\r\n", []string{"250", "250", "503"}},
		{"nested MAIL after RCPT, transaction kept", ehlo + "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nMAIL FROM:<c@example.org>\r\nDATA\r\n" + body,
			[]string{"250", "250", "250", "503", "354", "250"}},
		{"MAIL after DATA", ehlo + "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" + body + "MAIL FROM:<c@example.org>\r\n",
			[]string{"250", "250", "250", "354", "250", "250"}},
		{"MAIL after RSET", ehlo + "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRSET\r\nMAIL FROM:<c@example.org>\r\n", []string{"250", "250", "250", "250", "250"}},
		{"MAIL after EHLO", ehlo + "MAIL FROM:<a@example.org>\r\n" + ehlo + "MAIL FROM:<c@example.org>\r\n", []string{"250", "250", "250", "250"}},
		{"MAIL after a refused MAIL", ehlo + "MAIL FROM:<a@example.org> FOO=BAR\r\nMAIL FROM:<c@example.org>\r\n", []string{"250", "555", "250"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, r, _ := greetedClient(t)
			fmt.Fprint(c, tc.input)
			var got []string
			for len(got) < len(tc.codes) {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				if len(line) > 3 && line[3] == '-' {
					continue // an EHLO reply's continuation
				}
				got = append(got, line[:3])
			}
			if strings.Join(got, " ") != strings.Join(tc.codes, " ") {
				t.Errorf("replies %v, want %v", got, tc.codes)
			}
		})
	}
}

// TestGreetingReplyNamesTheServer: the reply to EHLO and HELO starts with
// the server's name (RFC 5321 §4.1.1.1), where clients look for it, and
// HELO's has no enhanced status code (none was negotiated).
func TestGreetingReplyNamesTheServer(t *testing.T) {
	for _, tc := range []struct{ cmd, want string }{
		{"EHLO client.test", "250-localhost Hello client.test\r\n"},
		{"HELO client.test", "250 localhost Hello client.test\r\n"},
	} {
		c, r, _ := greetedClient(t)
		fmt.Fprintf(c, "%s\r\n", tc.cmd)
		if got, err := r.ReadString('\n'); err != nil || got != tc.want {
			t.Errorf("%s: first reply line %q (%v), want %q", tc.cmd, got, err, tc.want)
		}
	}
}
