package smtpd_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// pipeListener hands in-memory connections to the server, so a fuzz input
// runs a whole session without sockets.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 25} }

// FuzzSession feeds arbitrary bytes to a full SMTP session (commands,
// addresses, PROXY-looking prefixes, DATA bodies) and checks that every
// session ends, that no reply leaks go-smtp's internal-error text, and that
// the customer's server (a raw-byte recorder) only ever sees one
// well-formed address per MAIL/RCPT line and CRLF, dot-stuffed bodies.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"EHLO a\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@example.org>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
		"HELO\r\nMAIL FROM:<>\r\nRCPT TO:<@example.org>\r\n",
		"EHLO x\r\nMAIL FROM:<a@b> SIZE=99999999999999999999\r\n",
		"EHLO x\r\nRCPT TO:<u@example.org>\r\nDATA\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nEHLO x\r\n",
		"EHLO x\r\nMAIL FROM:<\x00@\xff>\r\nRCPT TO:<u@EXAMPLE.org.>\r\nRSET\r\nNOOP\r\nVRFY u\r\nSTARTTLS\r\n",
		"EHLO x\nMAIL FROM:<a@b.test>\rRCPT TO:<u@example.org>\n",
		"EHLO x\r\nMAIL FROM:<a@b.test> SMTPUTF8\r\nRCPT TO:<ü@example.org>\r\nDATA\r\n\r\n.\r\n",
		"EHLO x\r\nBDAT 5 LAST\r\nhello",
		"EHLO x\r\nMAIL FROM:<\"a> AUTH=x\"@b.test>\r\nRCPT TO:<\"v@e.test> ORCPT=rfc822;x\"@example.org>\r\nDATA\r\na\r.\rb\n.\nc\r\n.\rd\r\n.\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@example.org>\r\nBDAT 9 LAST\r\na\n.\nb\r.\r",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	sink := startRawSink(f)
	snap, err := tenant.NewSnapshot(1, []*tenant.Domain{{Name: "example.org", Route: tenant.Route{Addr: sink.Addr, TLS: tenant.TLSNone}}})
	if err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	cfg := smtpd.DefaultConfig()
	cfg.Hostname = "mx.test"
	cfg.CommandTimeout = 2 * time.Second
	cfg.MaxMessageBytes = 64 << 10
	srv, err := smtpd.New(cfg, smtpd.Deps{
		Directory: tenant.NewDirectory(snap),
		Scanner:   scanner.NewPipeline(nil, time.Second, log, reg),
		Relay:     smtpd.Relay{Relay: relay.New(relay.DefaultConfig(), "mx.test", smtptest.Guard(), log, reg)},
		Log:       log,
		Registry:  reg,
		SpoolDir:  filepath.Join(f.TempDir(), "spool"),
	})
	if err != nil {
		f.Fatal(err)
	}
	l := &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	go srv.Serve(l)
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})

	f.Fuzz(func(t *testing.T, input []byte) {
		lines, bodies := len(sink.commands("")), len(sink.messages())
		client, server := net.Pipe()
		l.conns <- server
		var out bytes.Buffer
		readDone := make(chan struct{})
		go func() {
			io.Copy(&out, client)
			close(readDone)
		}()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(input)
		client.Write([]byte("\r\n.\r\nQUIT\r\n"))
		select {
		case <-readDone:
		case <-time.After(10 * time.Second):
			client.Close()
			t.Fatalf("session did not end; output so far:\n%s", out.String())
		}
		client.Close()
		if bytes.Contains(out.Bytes(), []byte("transaction failed:")) {
			t.Fatalf("internal error text leaked to the client:\n%s", out.String())
		}
		// Other inputs' sessions may still be closing; they are checked too.
		for _, l := range sink.commands("")[lines:] {
			if strings.HasPrefix(l, "MAIL") || strings.HasPrefix(l, "RCPT") {
				checkEnvelopeLine(t, l)
			}
		}
		for _, b := range sink.messages()[bodies:] {
			checkCRLFStuffed(t, b)
		}
	})
}
