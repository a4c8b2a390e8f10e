package smtpd

import (
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPeekedBytesPassThroughThenBufferReturned: what the PROXY header check
// read ahead reaches the session in order, however small its reads, with
// what follows read straight from the connection once the lent buffer is
// drained and given back.
func TestPeekedBytesPassThroughThenBufferReturned(t *testing.T) {
	client, gc := gateOverTCP(t)

	readAll := func(want string) {
		t.Helper()
		var got strings.Builder
		buf := make([]byte, 5)
		for got.Len() < len(want) {
			n, err := gc.Read(buf)
			if err != nil {
				t.Fatalf("after %q: %v", got.String(), err)
			}
			got.Write(buf[:n])
		}
		if got.String() != want {
			t.Fatalf("read %q, sent %q", got.String(), want)
		}
	}
	for _, sent := range []string{"EHLO client.example\r\nMAIL FROM:<a@b.example>\r\n", "RCPT TO:<c@d.example>\r\n"} {
		if _, err := client.Write([]byte(sent)); err != nil {
			t.Fatal(err)
		}
		readAll(sent)
		if gc.peeked != nil {
			t.Fatalf("after %q the session still holds the peek buffer (%d bytes buffered)", sent, gc.peeked.Buffered())
		}
	}
}

// gateOverTCP returns a client connected to a gateConn of a server with
// the default configuration, both closed when the test ends.
func gateOverTCP(t *testing.T) (client net.Conn, gc *gateConn) {
	t.Helper()
	srv, err := New(DefaultConfig(), Deps{
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry: prometheus.NewRegistry(),
		SpoolDir: filepath.Join(t.TempDir(), "spool"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	gc = &gateConn{Conn: conn, srv: srv}
	t.Cleanup(func() { gc.Close() })
	return client, gc
}

// TestDeadlineSkipsOnlySmallExtensions: an extension by less than a
// sixteenth of the time left (at most a second) keeps the deadline in
// force; a longer one, an earlier deadline and clearing it are applied.
func TestDeadlineSkipsOnlySmallExtensions(t *testing.T) {
	now := time.Now()
	steps := []struct {
		name    string
		t       time.Time
		applied bool
	}{
		{"first", now.Add(5 * time.Minute), true},
		{"10 ms later", now.Add(5*time.Minute + 10*time.Millisecond), false},
		{"2 s later", now.Add(5*time.Minute + 2*time.Second), true},
		{"earlier", now.Add(time.Minute), true},
		{"cleared", time.Time{}, true},
		{"after none", now.Add(time.Minute), true},
		{"short timeout", now.Add(160 * time.Millisecond), true},
		{"short, 40 ms more", now.Add(200 * time.Millisecond), true},
		{"short, 2 ms more", now.Add(202 * time.Millisecond), false},
	}
	var d deadline
	var set []time.Time
	apply := func(t time.Time) error { set = append(set, t); return nil }
	for _, st := range steps {
		before := len(set)
		if err := d.set(st.t, apply); err != nil {
			t.Fatal(err)
		}
		if applied := len(set) > before; applied != st.applied {
			t.Errorf("%s: applied %v, want %v", st.name, applied, st.applied)
		}
	}
	if err := d.set(now.Add(time.Hour), func(time.Time) error { return net.ErrClosed }); err == nil {
		t.Error("the connection's error was not returned")
	}
	if err := d.set(now.Add(time.Hour+time.Millisecond), apply); err != nil || set[len(set)-1] != now.Add(time.Hour+time.Millisecond) {
		t.Error("a deadline that failed to apply was remembered as set")
	}
}

// TestGateShowsTheSocket: go-smtp can look through the gate at what a
// client sent and the session has not read (how it tells a client that
// did not wait for a reply, Server.ForbidUnauthPipelining), and looking
// consumes nothing.
func TestGateShowsTheSocket(t *testing.T) {
	client, gc := gateOverTCP(t)
	const sent = "MAIL FROM:<a@b.example>\r\n"
	if _, err := client.Write([]byte(sent)); err != nil {
		t.Fatal(err)
	}
	sc, ok := net.Conn(gc).(syscall.Conn)
	if !ok {
		t.Fatal("the gate hides the socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n := 0
	deadline := time.Now().Add(5 * time.Second)
	for n == 0 && time.Now().Before(deadline) {
		rc.Control(func(fd uintptr) {
			n, _, _ = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		})
	}
	if string(buf[:max(n, 0)]) != sent {
		t.Fatalf("peeked %q, sent %q", buf[:max(n, 0)], sent)
	}
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(gc, got); err != nil || string(got) != sent {
		t.Fatalf("read %q (%v) after the peek, sent %q", got, err, sent)
	}
}
