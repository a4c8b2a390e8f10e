package clamav

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseScanReply(t *testing.T) {
	tests := []struct {
		reply     string
		wantVirus string
		wantErr   string
	}{
		{"stream: OK", "", ""},
		{"stream: Win.Test.EICAR_HDB-1 FOUND", "Win.Test.EICAR_HDB-1", ""},
		{"stream: MxGrid.Test.String.UNOFFICIAL FOUND", "MxGrid.Test.String.UNOFFICIAL", ""},
		{"INSTREAM size limit exceeded. ERROR", "", ErrSizeLimit.Error()},
		{"stream: Can't allocate memory ERROR", "", "clamd: stream: Can't allocate memory ERROR"},
		{"stream:  FOUND", "", "FOUND without a signature name"},
		{"UNKNOWN COMMAND", "", "unexpected reply"},
	}
	for _, tt := range tests {
		virus, err := parseScanReply(tt.reply)
		if virus != tt.wantVirus || tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("parseScanReply(%q) = %q, %v; want %q, %q", tt.reply, virus, err, tt.wantVirus, tt.wantErr)
		}
	}
}

// fakeClamd is a scripted clamd for failures a real one will not produce
// on demand. It decodes INSTREAM and hands the stream to reply.
type fakeClamd struct {
	ln      net.Listener
	reply   func(cmd string, stream []byte) string
	active  atomic.Int32
	maxSeen atomic.Int32
	hold    chan struct{} // when non-nil, each connection waits on it before replying
	limit   int           // when >0, answer the size-limit error past this many stream bytes
}

func startFake(t *testing.T, network, addr string, f *fakeClamd) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	var wg sync.WaitGroup
	t.Cleanup(func() {
		if f.hold != nil {
			close(f.hold)
		}
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				f.serve(conn)
			}()
		}
	}()
	if network == "unix" {
		return "unix://" + addr
	}
	return "tcp://" + ln.Addr().String()
}

func (f *fakeClamd) serve(conn net.Conn) {
	n := f.active.Add(1)
	defer f.active.Add(-1)
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	br := bufio.NewReader(conn)
	cmd, err := br.ReadString(0)
	if err != nil {
		return
	}
	var stream []byte
	if cmd == "zINSTREAM\x00" {
		for {
			var hdr [4]byte
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return
			}
			size := binary.BigEndian.Uint32(hdr[:])
			if size == 0 {
				break
			}
			chunk := make([]byte, size)
			if _, err := io.ReadFull(br, chunk); err != nil {
				return
			}
			stream = append(stream, chunk...)
			if f.limit > 0 && len(stream) > f.limit {
				_, _ = io.WriteString(conn, "INSTREAM size limit exceeded. ERROR\x00")
				return
			}
		}
	}
	if f.hold != nil {
		<-f.hold
	}
	_, _ = io.WriteString(conn, f.reply(cmd, stream)+"\x00")
}

func TestClientAgainstFake(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160 KB: several chunks
	var got []byte
	f := &fakeClamd{reply: func(cmd string, stream []byte) string {
		if cmd == "zPING\x00" {
			return "PONG"
		}
		got = stream
		if bytes.Contains(stream, []byte("BAD")) {
			return "stream: Fake.Sig FOUND"
		}
		return "stream: OK"
	}}
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "clamd.sock")
			}
			c, err := NewClient(startFake(t, network, addr, f), 2)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := c.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			virus, err := c.Scan(ctx, bytes.NewReader(payload))
			if err != nil || virus != "" || !bytes.Equal(got, payload) {
				t.Errorf("Scan(clean) = %q, %v; stream intact: %v", virus, err, bytes.Equal(got, payload))
			}
			virus, err = c.Scan(ctx, strings.NewReader("xxBADxx"))
			if err != nil || virus != "Fake.Sig" {
				t.Errorf("Scan(bad) = %q, %v", virus, err)
			}
		})
	}
}

func TestClientSizeLimit(t *testing.T) {
	f := &fakeClamd{limit: 100 << 10, reply: func(string, []byte) string { return "stream: OK" }}
	c, _ := NewClient(startFake(t, "tcp", "127.0.0.1:0", f), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Far beyond the limit: the fake stops reading mid-stream, as clamd does.
	_, err := c.Scan(ctx, bytes.NewReader(make([]byte, 8<<20)))
	if !errors.Is(err, ErrSizeLimit) {
		t.Errorf("Scan over the limit: err = %v, want ErrSizeLimit", err)
	}
}

func TestClientDeadlineAndSlots(t *testing.T) {
	f := &fakeClamd{hold: make(chan struct{}), reply: func(string, []byte) string { return "stream: OK" }}
	c, _ := NewClient(startFake(t, "tcp", "127.0.0.1:0", f), 2)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Scan(ctx, strings.NewReader("hello"))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("scan %d: err = %v, want a deadline error", i, err)
		}
	}
	if m := f.maxSeen.Load(); m > 2 {
		t.Errorf("%d connections at once, max_conns is 2", m)
	}
}

func TestClientDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	c, _ := NewClient("tcp://"+addr, 1)
	if _, err := c.Scan(context.Background(), strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Scan with clamd down: err = %v", err)
	}
}
