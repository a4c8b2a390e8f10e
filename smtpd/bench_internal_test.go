package smtpd

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/internal/bytebudget"
	"github.com/mxgrid/mxgrid/scanner"
)

// BenchmarkReadParseCompose is a 5 KB message's way through the session
// around the checks, as scripts/bench-smtp.sh has smtp-source send it: the
// body read, parsed, and the fields we prepend composed. One op is one
// message.
//
//	go test ./smtpd -run '^$' -bench ReadParseCompose -benchmem
func BenchmarkReadParseCompose(b *testing.B) {
	var msg strings.Builder
	msg.WriteString("From: <sender@bench.test>\r\nTo: <rcpt@example.org>\r\n" +
		"Date: Fri,  4 Dec 2026 08:06:24 +0000 (UTC)\r\nMessage-Id: <4bd6.0003.0000@client.bench.test>\r\n\r\n")
	for i := 1; i <= 64; i++ {
		fmt.Fprintf(&msg, "%d%s\r\n", i%10, strings.Repeat("X", 77))
	}
	raw := []byte(msg.String())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sp, err := newSpool(filepath.Join(b.TempDir(), "spool"), 1<<20, 0, prometheus.NewRegistry(), log)
	if err != nil {
		b.Fatal(err)
	}
	ss := &session{
		srv:      &Server{cfg: Config{Hostname: "mx.bench.test"}, log: log, parser: scanner.NewParser(nil).ForSMTP()},
		conn:     &smtp.Conn{},
		clientIP: netip.MustParseAddr("192.0.2.1"),
		log:      log,
		queueID:  newQueueID(),
		rcpts:    []string{"rcpt@example.org"},
	}
	v := scanner.Verdict{AuthResults: []string{"spf=none smtp.mailfrom=bench.test", "dkim=none", "dmarc=none header.from=bench.test"}}
	budget := bytebudget.New(1 << 30)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		res := reservation{budget: budget}
		body, err := readBody(bytes.NewReader(raw), &res, holdFactor, sp)
		if err != nil {
			b.Fatal(err)
		}
		m := body.parse(ss.srv.parser)
		if head, off := ss.compose(m, v, scanner.Policy{TagScore: 5, RejectScore: 10}); len(head) == 0 || off != 0 {
			b.Fatalf("compose = %d bytes, offset %d", len(head), off)
		}
		res.release()
	}
}
