package smtpd

import (
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPeekedBytesPassThroughThenBufferReturned: what the PROXY header check
// read ahead reaches the session in order, however small its reads, with
// what follows read straight from the connection once the lent buffer is
// drained and given back.
func TestPeekedBytesPassThroughThenBufferReturned(t *testing.T) {
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
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	gc := &gateConn{Conn: conn, srv: srv}
	defer gc.Close()

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
