package smtp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countingSession accepts everything and counts the messages it was given.
type countingSession struct {
	acceptingSession
	messages *atomic.Int32
}

func (s countingSession) Data(r io.Reader) error {
	s.messages.Add(1)
	_, err := io.Copy(io.Discard, r)
	return err
}

// TestForbidUnauthPipelining: with the server forbidding it, a client that
// sends more behind a command than RFC 2920 allows gets 554 5.5.0 and the
// connection closes before the command runs; a group RFC 2920 allows, a
// BDAT chunk and what a client sends behind a message's end are served.
// Without the option the same input is served, as upstream does. Each case
// runs twice: with what follows a command read along with it, and left in
// the kernel (byte_reads), where the server must ask the socket.
func TestForbidUnauthPipelining(t *testing.T) {
	const (
		mailRcpt = "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
		message  = "Subject: x\r\n\r\nbody\r\n.\r\n"
	)
	// Each step is written at once; then its replies are read, a reply
	// being a line starting "NNN ". A step's "want" is the codes in order.
	type step struct {
		send string
		want []string
	}
	tests := []struct {
		name      string
		greeted   bool // the client reads the greeting before its first step
		steps     []step
		violation string // the command reported, "" for none
		messages  int32
	}{
		{"a group RFC 2920 allows, the message after the 354", true, []step{
			{"EHLO c.test\r\n", []string{"250"}},
			{mailRcpt + "DATA\r\n", []string{"250", "250", "354"}},
			{message + "QUIT\r\n", []string{"250", "221"}},
		}, "", 1},
		{"the message behind DATA without waiting for the 354", true, []step{
			{"EHLO c.test\r\n", []string{"250"}},
			{mailRcpt + "DATA\r\n" + message, []string{"250", "250", "554"}},
		}, "DATA", 0},
		{"a transaction pipelined after HELO", true, []step{
			{"HELO c.test\r\n", []string{"250"}},
			{mailRcpt, []string{"554"}},
		}, "MAIL", 0},
		{"commands before the greeting", false, []step{
			{"EHLO c.test\r\n" + mailRcpt, []string{"220", "554"}},
		}, "EHLO", 0},
		{"two NOOPs at once", true, []step{
			{"EHLO c.test\r\n", []string{"250"}},
			{"NOOP\r\nNOOP\r\n", []string{"554"}},
		}, "NOOP", 0},
		{"a command behind STARTTLS", true, []step{
			{"EHLO c.test\r\n", []string{"250"}},
			{"STARTTLS\r\nMAIL FROM:<a@example.org>\r\n", []string{"554"}},
		}, "STARTTLS", 0},
		{"a chunk behind a BDAT that does not parse", true, []step{
			{"EHLO c.test\r\n", []string{"250"}},
			{mailRcpt + "BDAT\t20 LAST\r\nSubject: x\r\n\r\nbody\r\n", []string{"250", "250", "554"}},
		}, "BDAT\t20 LAST", 0},
		{"a command behind one that does not parse", true, []step{
			{"EHLO c.test\r\n", []string{"250"}},
			{"XCLIENT ADDR=192.0.2.1\r\nMAIL FROM:<a@example.org>\r\n", []string{"554"}},
		}, "XCLIENT ADDR=192.0.2.1", 0},
		{"a BDAT chunk behind its command, a group behind it", true, []step{
			{"EHLO c.test\r\n", []string{"250"}},
			{mailRcpt + "BDAT 20 LAST\r\nSubject: x\r\n\r\nbody\r\nRSET\r\nQUIT\r\n", []string{"250", "250", "250", "250", "221"}},
		}, "", 1},
	}
	for _, forbid := range []bool{true, false} {
		for _, tt := range tests {
			for _, byByte := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/forbid=%v/byte_reads=%v", tt.name, forbid, byByte), func(t *testing.T) {
					var (
						messages  atomic.Int32
						mu        sync.Mutex
						reported  []string
						reportedB []string
					)
					tl, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						t.Fatal(err)
					}
					s := NewServer(BackendFunc(func(*Conn) (Session, error) { return countingSession{messages: &messages}, nil }))
					s.Domain = "localhost"
					s.ForbidUnauthPipelining = forbid
					s.ImproperPipelining = func(_ *Conn, after string, unexpected []byte) {
						mu.Lock()
						reported, reportedB = append(reported, after), append(reportedB, string(unexpected))
						mu.Unlock()
					}
					if byByte {
						tl = byteListener{tl}
					}
					go s.Serve(tl)
					t.Cleanup(func() { s.Close() })
					c, err := net.Dial("tcp", tl.Addr().String())
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(10 * time.Second))
					r := bufio.NewReader(c)
					if tt.greeted {
						if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "220 ") {
							t.Fatalf("greeting %q, %v", line, err)
						}
					}
					violated := forbid && tt.violation != ""
					for i, st := range tt.steps {
						if _, err := io.WriteString(c, st.send); err != nil {
							t.Fatal(err)
						}
						want := st.want
						if !violated && want[len(want)-1] == "554" {
							// Served as upstream does: the step's every command
							// is answered; only the count of replies is checked.
							continue
						}
						for _, code := range want {
							var line string
							for {
								line, err = r.ReadString('\n')
								if err != nil {
									t.Fatalf("step %d: want %s, got %v", i, code, err)
								}
								if len(line) > 3 && line[3] == ' ' {
									break
								}
							}
							if !strings.HasPrefix(line, code+" ") {
								t.Fatalf("step %d: reply %q, want %s", i, line, code)
							}
							if code == "554" && !strings.Contains(line, "Error: SMTP protocol synchronization") {
								t.Errorf("554 reply %q", line)
							}
						}
					}
					if violated {
						// Closed with the client's input unread, the socket
						// answers it with a reset rather than an end of stream.
						if rest, err := io.ReadAll(r); (err != nil && !errors.Is(err, syscall.ECONNRESET)) || len(rest) != 0 {
							t.Errorf("after the 554: %q, %v; want the connection closed", rest, err)
						}
					}
					c.Close()
					s.Close()
					mu.Lock()
					defer mu.Unlock()
					switch {
					case violated && (len(reported) != 1 || reported[0] != tt.violation):
						t.Errorf("reported %q, want one violation after %s", reported, tt.violation)
					case violated && len(reportedB[0]) == 0:
						t.Errorf("reported no unexpected input")
					case !violated && len(reported) != 0:
						t.Errorf("reported %q, want none", reported)
					}
					if forbid && messages.Load() != tt.messages {
						t.Errorf("%d messages reached the session, want %d", messages.Load(), tt.messages)
					}
				})
			}
		}
	}
}

// byteListener's connections give the server one octet per read, so it
// reads a command's line without what the client wrote behind it, which
// waits in the kernel as a later segment's octets would. A single small
// write on loopback arrives whole, so the test does not depend on timing.
type byteListener struct{ net.Listener }

func (l byteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return byteConn{c.(*net.TCPConn)}, nil
}

// byteConn keeps *net.TCPConn's SyscallConn: the server may ask the
// socket what is waiting.
type byteConn struct{ *net.TCPConn }

func (c byteConn) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return c.TCPConn.Read(p)
}
