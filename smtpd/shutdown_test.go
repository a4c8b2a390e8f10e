package smtpd_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/smtpd"
)

// A transaction still running when the shutdown grace expires is aborted:
// its connection is closed and nothing reaches the customer, so the
// sender's retry elsewhere is the only delivery.
func TestShutdownGraceExpiredAbortsTransactions(t *testing.T) {
	sink := smtptest.StartSink(t)
	sc := slowScanner{started: make(chan struct{})}
	srv, addr := startServer(t, sink, sc)
	conn, c := inData(t, addr)
	w := c.c.DotWriter()
	w.Write([]byte(strings.ReplaceAll(testMessage, "\r\n", "\n")))
	w.Close()
	<-sc.started

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := srv.Shutdown(ctx)
	if err == nil {
		t.Error("Shutdown reported a clean drain although the grace expired")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	// The session was ended by Shutdown, not left running: the client
	// sees its connection end (possibly after a 4xx), never a 250.
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	for {
		line, err := c.c.ReadLine()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("connection still open after Shutdown returned")
		}
		if err != nil {
			break
		}
		if strings.HasPrefix(line, "2") {
			t.Fatalf("sender got %q after an aborted shutdown", line)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("%d message(s) delivered after the transaction was aborted", n)
	}
}

// TestShutdownCutOfABodyIsNoError: a sender still sending its body when
// the shutdown grace runs out has its connection closed, and retries
// another MX. Its read then failed with "use of closed network
// connection", logged at ERROR as an "unclassified error answered with
// 451" and tracked as our local error, once per such session at every
// shutdown, where operators alert.
func TestShutdownCutOfABodyIsNoError(t *testing.T) {
	sink := smtptest.StartSink(t)
	rec := &logRecords{min: slog.LevelError}
	srv, addr := startServerLogged(t, sink, slowScanner{started: make(chan struct{})}, slog.New(rec))
	conn, c := inData(t, addr)
	// Half a body, then nothing: the sender is still sending at shutdown.
	fmt.Fprint(c.c.W, "Subject: slow\r\n\r\nfirst line\r\n")
	c.c.W.Flush()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown reported a clean drain although a body was still coming")
	}
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.Copy(io.Discard, c.c.R); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("connection still open after Shutdown returned")
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.msgs) > 0 {
		t.Errorf("a body cut off at shutdown was logged as an error: %q", rec.msgs)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("%d message(s) delivered from a cut-off body", n)
	}
}

// Idle clients hear 421 4.3.2 when the node shuts down, and the line is
// whole: the session writes it itself, so it cannot interleave with a reply.
func TestShutdownSays421ToIdleClients(t *testing.T) {
	sink := smtptest.StartSink(t)
	srv, addr := startServer(t, sink, slowScanner{started: make(chan struct{})})
	var clients []*client
	for range 3 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, greet(t, conn))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with only idle clients: %v", err)
	}
	for i, c := range clients {
		code, msg, err := c.c.ReadResponse(0)
		if code != 421 || !strings.HasPrefix(msg, "4.3.2") {
			t.Errorf("client %d got %d %q (%v), want 421 4.3.2", i, code, msg, err)
		}
		if _, err := c.c.ReadLine(); err == nil {
			t.Errorf("client %d: connection still open after the goodbye", i)
		}
	}
}

// A client idle after STARTTLS, during the handshake or before its next
// EHLO, is not sent the goodbye in clear text: inside TLS that line would
// corrupt the stream (the client sees a bad record, not the end), so the
// connection is only closed.
func TestShutdownSendsNoClearTextIntoTLS(t *testing.T) {
	certPath, keyPath := writeCert(t)
	sink := smtptest.StartSink(t)
	cfg := testConfig(t)
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
	cfg.SMTP.TLSCert, cfg.SMTP.TLSKey = certPath, keyPath
	srv, err := smtpd.New(cfg.SMTP, configDeps(t, cfg, nil))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", listen(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	c := greet(t, conn)
	c.cmd(220, "STARTTLS")
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with an idle TLS client: %v", err)
	}
	n, err := tc.Read(make([]byte, 512))
	if err == nil || strings.Contains(err.Error(), "tls:") {
		t.Fatalf("after the shutdown the TLS client read %d bytes, %v; want the connection closed", n, err)
	}
}

// inData connects and opens a transaction up to DATA's 354: a sender about
// to send its body when the node shuts down.
func inData(t *testing.T, addr string) (net.Conn, *client) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := greet(t, conn)
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.cmd(354, "DATA")
	return conn, c
}
