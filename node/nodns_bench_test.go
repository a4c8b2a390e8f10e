package node_test

import (
	"bytes"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
)

// BenchmarkNoDNS measures what sender authentication, on by default, costs
// a node whose DNS does not answer: per message over real SMTP through the
// default pipeline to a sink, with authentication off, with a resolver
// port that refuses (ICMP unreachable) and with one that swallows queries
// (a firewall dropping them). It reports p50 and p99 in milliseconds; the
// "-added" figures are the difference from authentication off. Every
// relayed message must carry our Authentication-Results.
//
//	go test ./node -run '^$' -bench NoDNS -benchtime 500x
func BenchmarkNoDNS(b *testing.B) {
	blackhole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer blackhole.Close() // never read: queries sit in its buffer unanswered
	msg := []byte("From: alice@sender.test\r\nTo: bob@example.org\r\nSubject: minutes\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <m1@sender.test>\r\n\r\nHere are the minutes of today's meeting; the next one is on Thursday.\r\n")
	var offP50, offP99 float64
	for _, mode := range []struct {
		name   string
		config func(*config.Config)
	}{
		{"auth-off", func(c *config.Config) { c.Auth.SPF, c.Auth.DKIM, c.Auth.DMARC = false, false, false }},
		{"dns-refused", func(c *config.Config) { c.DNS.Server = nodetest.NoDNS }},
		{"dns-blackholed", func(c *config.Config) { c.DNS.Server = blackhole.LocalAddr().String() }},
	} {
		b.Run(mode.name, func(b *testing.B) {
			n, sink := nodetest.StartWithSink(b, mode.config)
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				if code, text := smtptest.Send(b, n.SMTPAddr(), "alice@sender.test", "bob@example.org", msg); code != 250 {
					b.Fatalf("%d %s", code, text)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			if mode.name != "auth-off" {
				for _, m := range sink.Messages() {
					if !bytes.Contains(m.Data, []byte("\r\nAuthentication-Results: mx.test; spf=temperror")) {
						b.Fatal("a message was relayed without Authentication-Results")
					}
				}
			}
			slices.Sort(lat)
			p50 := ms(lat[len(lat)/2])
			p99 := ms(lat[min(len(lat)-1, len(lat)*99/100)])
			b.ReportMetric(p50, "p50-ms")
			b.ReportMetric(p99, "p99-ms")
			if mode.name == "auth-off" {
				offP50, offP99 = p50, p99
				return
			}
			b.ReportMetric(p50-offP50, "p50-added-ms")
			b.ReportMetric(p99-offP99, "p99-added-ms")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
