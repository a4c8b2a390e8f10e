package smtp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestShutdownBeforeServe: a server shut down before Serve registered its
// listener still stops: Serve returns and the listener is closed.
func TestShutdownBeforeServe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(BackendFunc(func(*Conn) (Session, error) { return nil, nil }))
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		l.Close()
		t.Fatal("Serve still accepting after Shutdown")
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("listener still open")
	}
}

// TestConnectionBuffersReleased: when a connection ends, its pooled
// buffers go back and c.text is nil, so a late use fails loudly instead of
// sharing a buffer with the next connection; the next connections, some
// overlapping, each read and write through their own.
func TestConnectionBuffersReleased(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(BackendFunc(func(*Conn) (Session, error) { return nil, nil }))
	s.Domain = "localhost"
	go s.Serve(l)
	defer s.Close()

	open := func() map[*Conn]struct{} {
		s.locker.Lock()
		defer s.locker.Unlock()
		m := map[*Conn]struct{}{}
		for c := range s.conns {
			m[c] = struct{}{}
		}
		return m
	}
	// session greets, calls greeted, then sends a NOOP whose argument
	// spans several buffer fills and QUIT, and checks both replies.
	session := func(name string, greeted func()) {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		line := func() string {
			s, _ := r.ReadString('\n')
			return s
		}
		if g := line(); !strings.HasPrefix(g, "220 ") {
			t.Errorf("%s: greeting %q", name, g)
			return
		}
		greeted()
		fmt.Fprintf(c, "NOOP %s\r\nQUIT\r\n", strings.Repeat(name, 900))
		if got := line() + line(); got != "250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n" {
			t.Errorf("%s: replies %q", name, got)
		}
	}
	var first *Conn
	session("a", func() {
		for c := range open() {
			first = c
		}
	})
	if first == nil {
		t.Fatal("no open connection after the greeting")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := open()[first]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the connection never ended")
		}
		time.Sleep(time.Millisecond)
	}
	if first.text != nil {
		t.Error("an ended connection still holds its buffers")
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			session(name, func() {})
		}(string(rune('b' + i)))
	}
	wg.Wait()
}

// TestWorkersServeTheNextConnection: a connection that arrives after one
// has ended is served by the goroutine that served the first (its stack
// already grown), and Shutdown does not wait for idle workers' timeout.
func TestWorkersServeTheNextConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var served []string
	s := NewServer(BackendFunc(func(*Conn) (Session, error) {
		buf := make([]byte, 64)
		id, _, _ := strings.Cut(strings.TrimPrefix(string(buf[:runtime.Stack(buf, false)]), "goroutine "), " ")
		mu.Lock()
		served = append(served, id)
		mu.Unlock()
		return nil, fmt.Errorf("no session")
	}))
	s.Domain = "localhost"
	go s.Serve(l)

	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		r.ReadString('\n') // greeting
		fmt.Fprintf(c, "HELO client.test\r\n")
		r.ReadString('\n') // the backend's refusal
		fmt.Fprintf(c, "QUIT\r\n")
		r.ReadString('\n')
		// The server closes after QUIT; wait for it so the worker is idle.
		r.ReadString('\n')
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	if len(served) != 3 || served[0] != served[1] || served[1] != served[2] {
		t.Errorf("sessions served by goroutines %v, want one goroutine for all three", served)
	}
	mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), workerIdle/2)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with an idle worker: %v", err)
	}
}

// readCountingConn is a connection whose peer has already sent everything:
// each Read returns as much of the rest as fits, as a socket with the whole
// message in its receive queue does.
type readCountingConn struct {
	net.Conn
	rest  []byte
	reads int
}

func (c *readCountingConn) Read(p []byte) (int, error) {
	c.reads++
	if len(c.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

// TestDataBodyReadInFewReads: a body already received is taken from the
// connection a read buffer at a time, so the buffer's size is the number
// of read system calls per message; a 12 KB body takes one (upstream's
// 4 KiB reader took three).
func TestDataBodyReadInFewReads(t *testing.T) {
	body := strings.Repeat(strings.Repeat("x", 78)+"\r\n", 150) // 12,000 bytes
	conn := &readCountingConn{rest: []byte(body + ".\r\n")}
	c := newConn(conn, NewServer(BackendFunc(func(*Conn) (Session, error) { return nil, nil })))
	defer c.releaseText()
	got, err := io.ReadAll(newDataReader(c))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != body {
		t.Fatalf("read %d bytes, want the %d sent", len(got), len(body))
	}
	if conn.reads != 1 {
		t.Errorf("the body took %d reads of the connection, want 1", conn.reads)
	}
}
