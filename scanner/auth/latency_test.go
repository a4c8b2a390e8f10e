package auth

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/dnsresolver"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/dnsbl"
)

// reportPercentiles adds p50 and p99 of the per-message times to the
// benchmark's output: the mean hides the tail that DNS round trips make.
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)*50/100].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[min(len(d)-1, len(d)*99/100)].Microseconds()), "p99-µs")
}

// BenchmarkAuthAndDNSBL is the added latency per message of SPF (MAIL FROM
// and HELO), DKIM (one ed25519 signature), ARC (none), DMARC and DNSBL (two IP zones,
// one domain zone, three URL domains) through the pipeline, against the
// loopback DNS server. "cold" disables the cache so every lookup is a
// round trip; "warm" is a repeat sender with every answer cached.
func BenchmarkAuthAndDNSBL(b *testing.B) {
	for _, bc := range []struct {
		name      string
		cacheSize int
	}{{"cold", 0}, {"warm", 10000}} {
		b.Run(bc.name, func(b *testing.B) {
			w := newWorld(b)
			w.srv.AddA("10.2.0.192.bl.test", "127.0.0.2")
			rcfg := dnsresolver.DefaultConfig()
			rcfg.Server = w.srv.Addr
			rcfg.CacheSize = bc.cacheSize
			res := dnsresolver.New(rcfg, prometheus.NewRegistry())

			acfg := DefaultConfig()
			acfg.SPF, acfg.DKIM, acfg.DMARC = true, true, true
			acfg.AuthservID = "mx.mxgrid.test"
			a, err := New(acfg, res, w.discard, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			dcfg := dnsbl.DefaultConfig()
			dcfg.IPZones = []dnsbl.Zone{
				{Zone: "bl.test", Weights: map[string]float64{"127.0.0.2": 3}},
				{Zone: "bl2.test", Weights: map[string]float64{"127.0.0.2": 3}},
			}
			dcfg.DomainZones = []dnsbl.Zone{{Zone: "dbl.test", Weights: map[string]float64{"127.0.1.2": 4}}}
			d := dnsbl.New(dcfg, res, w.discard, prometheus.NewRegistry())
			p := scanner.NewPipeline([]scanner.Stage{a.Stage(), d.Stage()}, 10*time.Second, w.discard, prometheus.NewRegistry())

			msg := scanner.Parse(w.sign(b, testMessage("alice@example.org"), "example.org", "ed"))
			for _, dom := range []string{"example.org", "shop.example", "cdn.example"} {
				msg.URLs = append(msg.URLs, scanner.URL{Host: dom, Domain: dom})
			}
			env := &scanner.Envelope{ClientIP: netip.MustParseAddr("192.0.2.10"), HELO: "mail.example.org", MailFrom: "alice@example.org"}
			durations := make([]time.Duration, 0, 1024)
			for b.Loop() {
				start := time.Now()
				v := p.Scan(context.Background(), env, msg, scanner.Policy{})
				durations = append(durations, time.Since(start))
				if len(v.Incomplete) != 0 || len(v.AuthResults) != 5 {
					b.Fatalf("verdict = %+v", v)
				}
			}
			reportPercentiles(b, durations)
		})
	}
}

// BenchmarkCheck is the check's own cost per message with every DNS answer
// cached: a DKIM-signed message, and the unsigned one scripts/bench-smtp.sh
// has smtp-source send.
func BenchmarkCheck(b *testing.B) {
	w := newWorld(b)
	rcfg := dnsresolver.DefaultConfig()
	rcfg.Server = w.srv.Addr
	res := dnsresolver.New(rcfg, prometheus.NewRegistry())
	cfg := DefaultConfig()
	cfg.AuthservID = "mx.mxgrid.test"
	c, err := New(cfg, res, w.discard, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	var unsigned strings.Builder
	unsigned.WriteString("From: <sender@bench.test>\r\nTo: <rcpt@example.org>\r\n" +
		"Date: Fri,  4 Dec 2026 08:06:24 +0000 (UTC)\r\nMessage-Id: <4bd6.0003.0000@client.bench.test>\r\n\r\n")
	for i := 1; i <= 64; i++ {
		fmt.Fprintf(&unsigned, "%d%s\r\n", i%10, strings.Repeat("X", 77))
	}
	for _, bc := range []struct {
		name string
		raw  []byte
		env  scanner.Envelope
	}{
		{"signed", w.sign(b, testMessage("alice@example.org"), "example.org", "ed"),
			scanner.Envelope{ClientIP: netip.MustParseAddr("192.0.2.10"), HELO: "mail.example.org", MailFrom: "alice@example.org"}},
		{"unsigned", []byte(unsigned.String()),
			scanner.Envelope{ClientIP: netip.MustParseAddr("127.0.0.1"), HELO: "client.bench.test", MailFrom: "sender@bench.test"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := scanner.Parse(bc.raw)
			b.ReportAllocs()
			for b.Loop() {
				r, err := c.Check(context.Background(), &bc.env, msg)
				if err != nil || len(r.AuthResults) != 5 {
					b.Fatalf("result %+v, err %v", r, err)
				}
			}
		})
	}
}
