package node_test

import (
	"context"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/store"
)

// TestDefaultNodeReadyAndLocatesSpam: a node with no GeoIP configuration is
// ready, not degraded, and records a refused spam's country from the
// embedded database. The spam arrives through a trusted PROXY header, so
// its source is a public address although the test connects on loopback.
func TestDefaultNodeReadyAndLocatesSpam(t *testing.T) {
	sink := nodetest.StartSink(t)
	cfg := nodetest.Config(t)
	if cfg.Geo.Database != "" {
		t.Fatalf("geo.database %q by default, want the embedded database", cfg.Geo.Database)
	}
	cfg.Domains = append(cfg.Domains, nodetest.Domain("example.org", sink.Addr))
	cfg.SMTP.TrustedProxies = []string{"127.0.0.1"}
	cfg.Events.FlushInterval = 100 * time.Millisecond
	n := nodetest.Start(t, cfg, []scanner.Stage{{Check: spamCheck{}}})
	if level, conds := n.Health().Report(); level.String() != "ok" {
		t.Fatalf("readiness %s %v, want ok", level, conds)
	}

	conn, err := net.Dial("tcp", n.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("PROXY TCP4 8.8.8.8 127.0.0.1 40000 25\r\n")); err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "mx.test")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("spammer@sender.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@example.org"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: offer\r\n\r\nbuy now\r\n"))
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("spam: %v, want a 550", err)
	}

	st, err := store.Open(cfg.Store, cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got []store.StoredEvent
		err := st.RecentEvents(context.Background(), 10, time.Time{}, func(e store.StoredEvent) error {
			got = append(got, e)
			return nil
		})
		if err == nil && len(got) == 1 {
			if e := got[0]; e.IP.String() != "8.8.8.8" || !e.Located || e.Country != "US" {
				t.Fatalf("event %s located %v country %q, want 8.8.8.8 in US", e.IP, e.Located, e.Country)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event recorded (%d events, %v)", len(got), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
