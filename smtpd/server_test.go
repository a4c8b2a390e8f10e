package smtpd_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// slowScanner takes its time unless the transaction is cancelled, like a
// check waiting on a slow network service.
type slowScanner struct{ started chan struct{} }

func (s slowScanner) Scan(ctx context.Context, _ *scanner.Envelope, _ *scanner.Message, _ scanner.Policy) scanner.Verdict {
	close(s.started)
	select {
	case <-ctx.Done():
		return scanner.Verdict{Action: scanner.Tempfail}
	case <-time.After(10 * time.Second):
		return scanner.Verdict{Action: scanner.Deliver}
	}
}

// startServer runs a bare smtpd.Server relaying example.org to sink.
func startServer(t *testing.T, sink *smtptest.Sink, sc smtpd.Scanner) (*smtpd.Server, string) {
	t.Helper()
	return startServerLogged(t, sink, sc, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// startServerLogged is startServer logging to log.
func startServerLogged(t *testing.T, sink *smtptest.Sink, sc smtpd.Scanner, log *slog.Logger) (*smtpd.Server, string) {
	t.Helper()
	snap, err := tenant.NewSnapshot(1, []*tenant.Domain{{Name: "example.org", Route: tenant.Route{Addr: sink.Addr, TLS: tenant.TLSNone}}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := smtpd.DefaultConfig()
	cfg.Hostname = "mx.test"
	cfg.Listen = "127.0.0.1:0"
	srv, err := smtpd.New(cfg, smtpd.Deps{
		Directory: tenant.NewDirectory(snap),
		Scanner:   sc,
		Relay:     smtpd.Relay{Relay: relay.New(relay.DefaultConfig(), "mx.test", smtptest.Guard(), log, reg)},
		Log:       log,
		Registry:  reg,
		SpoolDir:  filepath.Join(t.TempDir(), "spool"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv, listen(t, srv)
}

// listen starts srv serving and returns its address; the test shuts it
// down itself.
func listen(t *testing.T, srv *smtpd.Server) string {
	t.Helper()
	l, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	return l.Addr().String()
}

// A short first command (under 16 octets) is answered at once: the check
// for a PROXY header from an untrusted peer must not wait for more bytes
// than a client sends before waiting for our reply. An empty line is one
// too, although "\r\n" also begins a PROXY v2 signature: waiting for the
// signature's third octet held a client that sent one until the command
// timeout, before its "500".
func TestShortFirstCommandIsAnsweredAtOnce(t *testing.T) {
	sink := smtptest.StartSink(t)
	srv, addr := startServer(t, sink, slowScanner{started: make(chan struct{})})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	for _, tc := range []struct{ send, want string }{
		{"HELO a.b\r\n", "250"},
		{"\r\n", "500"},
		{"\n", "500"},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		br := bufio.NewReader(conn)
		if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "220") {
			t.Fatalf("greeting %q, %v", line, err)
		}
		conn.Write([]byte(tc.send))
		if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, tc.want) {
			t.Errorf("reply to %q: %q, %v; want %s", tc.send, line, err, tc.want)
		}
	}
}
