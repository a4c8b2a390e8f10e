package smtpd_test

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/smtptest"
)

// BenchmarkTransaction is one message as scripts/bench-smtp.sh's
// smtp-source sends it: a new connection, HELO, MAIL, RCPT, DATA with a
// 5 KB message, QUIT, relayed over the cached connection to Postfix's
// smtp-sink (another process, so that -benchmem counts the node and this
// small client only). No scan stages: it measures the session, relay
// path, not the checks. Its allocs/op are what to compare; its time
// depends on the machine.
func BenchmarkTransaction(b *testing.B) { benchTransaction(b, nil) }

// BenchmarkTransactionAtWarn is BenchmarkTransaction on a node logging at
// warn and above, as docs/benchmarks.md's node does: no transaction line.
func BenchmarkTransactionAtWarn(b *testing.B) {
	benchTransaction(b, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// BenchmarkConnectionAtWarn is BenchmarkTransactionAtWarn's connection
// without its message: the greeting, HELO and QUIT. smtp-source, as
// scripts/bench-smtp.sh runs it, opens a connection for every message, so
// this is the part of each message's cost that a client keeping its
// connection (smtp-source -d) would not pay.
func BenchmarkConnectionAtWarn(b *testing.B) {
	benchSession(b, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})), false)
}

// benchTransaction runs BenchmarkTransaction with the node's logger log,
// if not nil.
func benchTransaction(b *testing.B, log *slog.Logger) { benchSession(b, log, true) }

// benchSession runs one connection a loop, with a transaction when
// withMessage.
func benchSession(b *testing.B, log *slog.Logger, withMessage bool) {
	sinkAddr := startSMTPSink(b)
	cfg := testConfig(b)
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sinkAddr))
	deps := configDeps(b, cfg, nil)
	if log != nil {
		deps.Log = log
	}
	n := startWith(b, cfg, deps)

	var msg bytes.Buffer
	msg.WriteString("From: <sender@bench.test>\r\nTo: <rcpt@example.org>\r\nDate: Sun, 6 Dec 2026 21:00:00 +0000\r\nMessage-Id: <1@bench.test>\r\n\r\n")
	for msg.Len() < 5120 {
		msg.WriteString("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvw\r\n")
	}
	msg.WriteString(".\r\n")
	script := []struct {
		send []byte
		want byte // the reply's first digit
	}{
		{nil, '2'},
		{[]byte("HELO client.bench.test\r\n"), '2'},
		{[]byte("MAIL FROM:<sender@bench.test>\r\n"), '2'},
		{[]byte("RCPT TO:<rcpt@example.org>\r\n"), '2'},
		{[]byte("DATA\r\n"), '3'},
		{msg.Bytes(), '2'},
		{[]byte("QUIT\r\n"), '2'},
	}
	if !withMessage {
		script = append(script[:2], script[len(script)-1])
	}
	r := bufio.NewReader(nil)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for b.Loop() {
		c, err := net.Dial("tcp", n.SMTPAddr())
		if err != nil {
			b.Fatal(err)
		}
		r.Reset(c)
		for _, step := range script {
			if _, err := c.Write(step.send); err != nil {
				b.Fatal(err)
			}
			for {
				line, err := r.ReadSlice('\n')
				if err != nil || len(line) < 4 || line[0] != step.want {
					b.Fatalf("after %q: %q %v", step.send, line, err)
				}
				if line[3] == ' ' {
					break
				}
			}
		}
		c.Close()
	}
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU time (user and system) this process has used: the
// node and this client, not smtp-sink. The loop's wall time is mostly
// round trips, waiting, and moves with the machine's load; the CPU time a
// message costs is what scripts/bench-smtp.sh's throughput depends on.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startSMTPSink runs Postfix's smtp-sink on a loopback port until the end
// of the benchmark, and returns its address.
func startSMTPSink(b *testing.B) string {
	b.Helper()
	bin, err := exec.LookPath("smtp-sink")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/smtp-sink"); err != nil {
			b.Skip("needs Postfix's smtp-sink")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{addr, "1024"}
	if os.Geteuid() == 0 {
		// It drops privileges when run as root, to a user named here.
		args = append([]string{"-u", "nobody"}, args...)
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b.Fatalf("smtp-sink did not listen on %s: %v", addr, err)
		}
	}
}
