package node_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
)

// TestRouteNameOutlivesSenderLookups: a route given by host name is
// relayed to on its last answer while DNS gives none (RFC 8767), which
// the node's one DNS cache kept. Senders choose most of the names that
// cache holds (SPF, DMARC, DKIM and DNSBL lookups of their own domains),
// so a few dozen messages from random domains, or a busy hour, evicted a
// quiet customer's route, and once DNS failed its mail got 451.
func TestRouteNameOutlivesSenderLookups(t *testing.T) {
	srv := dnstest.Start(t)
	srv.AddA("mail.customer.example", "127.0.0.1")
	sink := nodetest.StartSink(t)
	other := nodetest.StartSink(t)
	_, port, _ := net.SplitHostPort(sink.Addr)
	cfg := nodetest.Config(t)
	cfg.Domains = append(cfg.Domains,
		nodetest.Domain("example.org", "mail.customer.example:"+port),
		nodetest.Domain("other.example", other.Addr))
	cfg.DNS.Server = srv.Addr
	cfg.DNS.Timeout = 200 * time.Millisecond
	cfg.DNS.CacheSize = 20
	cfg.DNS.CacheTTL = 300 * time.Millisecond
	cfg.Relay.Cache.Enabled = false // every message looks its route up
	n := nodetest.Start(t, cfg, nil)
	msg := []byte("From: a@sender.example\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n")

	if code, text := smtptest.Send(t, n.SMTPAddr(), "a@sender.example", "bob@example.org", msg); code != 250 {
		t.Fatalf("with DNS up: %d %s", code, text)
	}
	// Mail to another customer, from senders whose names fill the cache.
	for i := range 30 {
		sender := fmt.Sprintf("x@r%d.flood.example", i)
		if code, text := smtptest.Send(t, n.SMTPAddr(), sender, "carol@other.example", msg); code != 250 {
			t.Fatalf("flood message %d: %d %s", i, code, text)
		}
	}
	srv.ServFail("mail.customer.example")
	time.Sleep(cfg.DNS.CacheTTL + 100*time.Millisecond)
	if code, text := smtptest.Send(t, n.SMTPAddr(), "a@sender.example", "bob@example.org", msg); code != 250 {
		t.Fatalf("with the route's name failing to resolve: %d %s, want it relayed on the last answer", code, text)
	}
	if got := len(sink.Messages()); got != 2 {
		t.Fatalf("customer got %d messages, want 2", got)
	}
}
