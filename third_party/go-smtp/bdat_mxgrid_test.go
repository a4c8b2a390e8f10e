package smtp

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// dataWatchSession records whether Reset or Logout ever ran while its Data
// was still running. Data lingers after its reader fails, as a backend
// that records the failed transaction does: that is the window in which a
// Reset clears state Data is still reading.
type dataWatchSession struct {
	inData  atomic.Bool
	overlap atomic.Int32
	calls   atomic.Int32 // Data calls that returned
}

func (s *dataWatchSession) check() {
	if s.inData.Load() {
		s.overlap.Add(1)
	}
}

func (s *dataWatchSession) Reset()                          { s.check() }
func (s *dataWatchSession) Logout() error                   { s.check(); return nil }
func (s *dataWatchSession) Mail(string, *MailOptions) error { return nil }
func (s *dataWatchSession) Rcpt(string, *RcptOptions) error { return nil }
func (s *dataWatchSession) Data(r io.Reader) error {
	s.inData.Store(true)
	defer s.inData.Store(false)
	defer s.calls.Add(1)
	_, err := io.Copy(io.Discard, r)
	if err != nil {
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// TestAbortedBdatDataReturnsBeforeReset: BDAT hands the backend's Data the
// message in a goroutine of its own. When the transfer ends without LAST
// (RSET, EHLO, STARTTLS, a chunk past the size limit, QUIT, a dropped
// connection), upstream closed the pipe and called the session's Reset or
// Logout at once, while Data was still running: mxgrid's session had its
// transaction cleared under it (a data race; a nil dereference when Reset
// dropped the downstream transaction as Data read it) and a pipelined next
// transaction could begin before the old Data had finished with the
// session. The transfer now ends only once Data has returned.
func TestAbortedBdatDataReturnsBeforeReset(t *testing.T) {
	const open = "EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 4\r\nSubj"
	for _, tc := range []struct {
		name, then string
		tls        bool
	}{
		{name: "RSET", then: "RSET\r\nMAIL FROM:<a@example.org>\r\nQUIT\r\n"},
		{name: "EHLO", then: "EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nQUIT\r\n"},
		{name: "chunk past the size limit", then: "BDAT 2100\r\n" + strings.Repeat("xx\r\n", 525) + "QUIT\r\n"},
		{name: "QUIT", then: "QUIT\r\n"},
		{name: "connection dropped"},
		{name: "STARTTLS", then: "STARTTLS\r\n", tls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess := &dataWatchSession{}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := NewServer(BackendFunc(func(*Conn) (Session, error) { return sess, nil }))
			s.Domain = "localhost"
			s.MaxMessageBytes = 1000
			if tc.tls {
				cert, err := tls.X509KeyPair(localhostCert, localhostKey)
				if err != nil {
					t.Fatal(err)
				}
				s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			}
			go s.Serve(l)
			defer s.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			fmt.Fprint(c, open+tc.then)
			if tc.tls {
				waitFor(t, r, "220 2.0.0 Ready to start TLS")
				tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				fmt.Fprint(tc, "QUIT\r\n")
				r = bufio.NewReader(tc)
				waitFor(t, r, "221 ")
			} else if tc.then != "" {
				waitFor(t, r, "221 ")
			} else {
				waitFor(t, r, "250 2.0.0 Continue")
				c.Close()
			}
			deadline := time.Now().Add(5 * time.Second)
			for sess.calls.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // a late Reset or Logout
			if sess.calls.Load() != 1 {
				t.Fatalf("Data returned %d times, want 1", sess.calls.Load())
			}
			if n := sess.overlap.Load(); n != 0 {
				t.Errorf("Reset or Logout ran %d times while Data was still running", n)
			}
		})
	}
}

// waitFor reads replies until one starts with prefix.
func waitFor(t *testing.T, r *bufio.Reader, prefix string) {
	t.Helper()
	var seen []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for %q after %q: %v", prefix, seen, err)
		}
		if strings.HasPrefix(line, prefix) {
			return
		}
		seen = append(seen, line)
	}
}

// TestTinyChunksAllocateLittle: each BDAT chunk was copied to the backend
// through io.Copy, which allocates a 32 KiB buffer per call, so a client
// pipelining "BDAT 1" commands (ten octets each) made the server allocate
// some 3,000 times what it sent: CPU spent on garbage at the sender's
// choosing. The copy buffer is now lent for the chunk.
func TestTinyChunksAllocateLittle(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops buffers at random under the race detector")
	}
	const chunks = 2000
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sess := &dataWatchSession{}
	s := NewServer(BackendFunc(func(*Conn) (Session, error) { return sess, nil }))
	s.Domain = "localhost"
	go s.Serve(l)
	defer s.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	replyCodes(r, 1)
	io.WriteString(c, "EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n")
	replyCodes(r, 3)
	script := strings.Repeat("BDAT 1\r\nx", chunks) + "BDAT 0 LAST\r\n"
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	go io.WriteString(c, script)
	codes := replyCodes(r, chunks+1)
	runtime.ReadMemStats(&after)
	if len(codes) != chunks+1 || codes[chunks] != "250" {
		t.Fatalf("got %d replies, the last %v", len(codes), codes[len(codes)-1:])
	}
	per := (after.TotalAlloc - before.TotalAlloc) / chunks
	t.Logf("%d bytes allocated per chunk", per)
	if per > 4<<10 {
		t.Errorf("%d bytes allocated per 1-octet chunk, want under 4 KiB", per)
	}
}

// TestBdatNeedsEhlo: a client that greeted with HELO was offered no
// CHUNKING (RFC 3030 2): its BDAT is refused, and its chunk, which follows
// all the same, skipped rather than run as commands.
func TestBdatNeedsEhlo(t *testing.T) {
	elog := &envelopeLog{}
	chunk := "RSET\r\nQUIT\r\n"
	rest, errLog := converse(t, elog, nil, "HELO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"+
		fmt.Sprintf("BDAT %d LAST\r\n%sNOOP\r\nQUIT\r\n", len(chunk), chunk))
	var got []string
	for _, line := range strings.Split(strings.TrimSuffix(rest, "\r\n"), "\r\n") {
		got = append(got, line)
	}
	want := []string{"250 localhost Hello c.test", "250 Ok", "250 Ok",
		"503 BDAT needs EHLO: CHUNKING was not offered", "250 Ok", "221 Bye"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("replies:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if took := elog.took(); strings.Join(took, " ") != "MAIL a@example.org RCPT b@example.org" {
		t.Errorf("backend took %q", took)
	}
	if errLog != "" {
		t.Errorf("server logged: %s", errLog)
	}
}
