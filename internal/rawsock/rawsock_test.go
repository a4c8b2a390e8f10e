//go:build linux

package rawsock

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestWrapOnlyTCP: a wrapper's own Read and Write must run, so only a
// plain TCP connection is read beneath.
func TestWrapOnlyTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c, _ := pair(t)
	for _, tc := range []struct {
		name string
		conn net.Conn
		want bool
	}{
		{"pipe", a, false},
		{"wrapped TCP", struct{ net.Conn }{c}, false},
		{"TCP", c, true},
	} {
		if got := Wrap(tc.conn) != nil; got != tc.want {
			t.Errorf("%s: Wrap gave a Conn: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReadWriteAsNetConn: what a Conn reads, writes and reports is what
// the net.Conn would: the bytes, io.EOF at the end, the deadline's timeout,
// a closed connection, a reset, each with net.Conn's error text.
func TestReadWriteAsNetConn(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup acts on the connection's peer and on the connection
		// itself (through its net.Conn), before the read.
		setup  func(t *testing.T, peer, self *net.TCPConn)
		want   string // what the read returns
		wantIs error  // nil: no error
	}{
		{
			name:  "data",
			setup: func(t *testing.T, peer, _ *net.TCPConn) { peer.Write([]byte("250 OK\r\n")) },
			want:  "250 OK\r\n",
		},
		{
			name:   "peer closed",
			setup:  func(t *testing.T, peer, _ *net.TCPConn) { peer.Close() },
			wantIs: io.EOF,
		},
		{
			name:   "read deadline",
			setup:  func(t *testing.T, _, self *net.TCPConn) { self.SetReadDeadline(time.Now().Add(20 * time.Millisecond)) },
			wantIs: os.ErrDeadlineExceeded,
		},
		{
			name:   "closed here",
			setup:  func(t *testing.T, _, self *net.TCPConn) { self.Close() },
			wantIs: net.ErrClosed,
		},
		{
			name: "reset by peer",
			setup: func(t *testing.T, peer, self *net.TCPConn) {
				peer.SetLinger(0) // close sends a reset
				peer.Close()
				time.Sleep(20 * time.Millisecond)
			},
			wantIs: syscall.ECONNRESET,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The same case on a plain net.Conn and on a Conn: the
			// results must match, the error's text too (logs read it).
			var results [2]struct {
				got string
				err error
			}
			for i, raw := range []bool{false, true} {
				peer, self := pair(t)
				var r io.Reader = self
				if raw {
					r = Wrap(self)
				}
				tc.setup(t, peer, self)
				buf := make([]byte, 64)
				n, err := r.Read(buf)
				results[i].got, results[i].err = string(buf[:n]), err
			}
			plain, raw := results[0], results[1]
			if raw.got != tc.want {
				t.Errorf("read %q, want %q", raw.got, tc.want)
			}
			if (tc.wantIs == nil) != (raw.err == nil) || tc.wantIs != nil && !errors.Is(raw.err, tc.wantIs) {
				t.Fatalf("error %v, want one that is %v", raw.err, tc.wantIs)
			}
			if raw.err == nil {
				return
			}
			// Addresses differ between the two connections; the rest of
			// the text must not.
			if strip(raw.err.Error()) != strip(plain.err.Error()) {
				t.Errorf("error text %q, net.Conn's %q", raw.err, plain.err)
			}
			var ne net.Error
			if tc.wantIs == os.ErrDeadlineExceeded && (!errors.As(raw.err, &ne) || !ne.Timeout()) {
				t.Errorf("%v is no net.Error timeout", raw.err)
			}
		})
	}
}

// strip replaces the addresses in a net.OpError's text.
func strip(s string) string { return addrs.ReplaceAllString(s, "ADDR") }

var addrs = regexp.MustCompile(`127\.0\.0\.1:[0-9]+`)

// TestWriteWaitsForRoom: a write the socket cannot take at once waits in
// the netpoller and completes (the EAGAIN path), within MaxWrite or past
// it (through the net.Conn), and a peer that reads nothing makes the write
// deadline expire as for a net.Conn.
func TestWriteWaitsForRoom(t *testing.T) {
	for _, size := range []int{MaxWrite, 4 * MaxWrite} {
		peer, self := pair(t)
		self.SetWriteBuffer(4096) // the kernel's least: the write must wait
		peer.SetReadBuffer(4096)
		c := Wrap(self)
		data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		got := make(chan []byte, 1)
		go func() {
			time.Sleep(50 * time.Millisecond) // let the writer find the buffer full
			b, _ := io.ReadAll(io.LimitReader(peer, int64(len(data))))
			got <- b
		}()
		n, err := c.Write(data)
		if err != nil || n != len(data) {
			t.Fatalf("size %d: wrote %d, %v", size, n, err)
		}
		if b := <-got; !bytes.Equal(b, data) {
			t.Fatalf("size %d: peer read %d bytes, not what was written", size, len(b))
		}
	}

	_, self := pair(t)
	self.SetWriteBuffer(4096)
	c := Wrap(self)
	self.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	var err error
	for i := 0; i < 1000 && err == nil; i++ { // until the peer's window and our buffer are full
		_, err = c.Write(make([]byte, MaxWrite))
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("writing to a peer that reads nothing: %v, want the write deadline", err)
	}
}

// TestNoAllocations: a Conn is made once a connection so that its reads
// and writes, every command and reply, allocate nothing.
func TestNoAllocations(t *testing.T) {
	peer, self := pair(t)
	c := Wrap(self)
	go io.Copy(peer, peer) // echo
	msg := []byte("MAIL FROM:<a@example.org>\r\n")
	buf := make([]byte, len(msg))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a write and a read allocate %v times", allocs)
	}
}
