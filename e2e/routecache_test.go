package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
)

// TestRouteChecksDoNotEvictRoutes: a route given by host name is relayed
// to on its last answer while DNS gives none, which the route names' own
// cache keeps, out of reach of the names senders choose. The admin API's
// check of a route being set went through that cache too, so a reseller
// setting its routes to names of its own (twenty changes a second, each
// checked and cached, found or not) evicted every other customer's route,
// and once DNS failed their mail got 451.
func TestRouteChecksDoNotEvictRoutes(t *testing.T) {
	dns := dnstest.Start(t)
	dns.AddA("mail.customer.example", "127.0.0.1")
	sink := nodetest.StartSink(t)
	_, port, _ := net.SplitHostPort(sink.Addr)
	cfg := nodetest.Config(t)
	cfg.Domains = append(cfg.Domains, nodetest.Domain("example.org", "mail.customer.example:"+port))
	cfg.DNS.Server = dns.Addr
	cfg.DNS.Timeout = 200 * time.Millisecond
	cfg.DNS.CacheSize = 20
	cfg.DNS.CacheTTL = 300 * time.Millisecond
	cfg.Relay.Cache.Enabled = false // every message looks its route up
	tok := filepath.Join(t.TempDir(), "operator.token")
	if err := os.WriteFile(tok, []byte(tenantOpToken), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Admin.OperatorTokenFile = tok
	n := nodetest.Start(t, cfg, tenantNoChecks)
	msg := []byte("From: a@sender.example\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n")
	if code, text := smtptest.Send(t, n.SMTPAddr(), "a@sender.example", "bob@example.org", msg); code != 250 {
		t.Fatalf("with DNS up: %d %s", code, text)
	}

	res := tenantMustCreate(t, n, "/api/v1/resellers", map[string]any{"name": "R"})
	cust := tenantMustCreate(t, n, "/api/v1/customers", map[string]any{"name": "C", "reseller_id": res})
	code, out := tenantAPI(t, n, "POST", "/api/v1/tokens", map[string]any{"name": "r", "reseller_id": res})
	if code != 201 {
		t.Fatalf("token: %d %v", code, out)
	}
	reseller := out["token"].(string)
	code, out = tenantAPIAs(t, n, reseller, "POST", "/api/v1/domains", map[string]any{"name": "flood.example", "customer_id": cust, "route": "r0.flood.example:25"})
	if code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}
	id := int64(out["id"].(float64))
	for i := 1; i <= 2*cfg.DNS.CacheSize; i++ {
		if code, out := tenantAPIAs(t, n, reseller, "PATCH", fmt.Sprintf("/api/v1/domains/%d", id), map[string]any{"route": fmt.Sprintf("r%d.flood.example:25", i)}); code != 200 {
			t.Fatalf("route %d: %d %v", i, code, out)
		}
	}

	dns.ServFail("mail.customer.example")
	time.Sleep(cfg.DNS.CacheTTL + 100*time.Millisecond)
	if code, text := smtptest.Send(t, n.SMTPAddr(), "a@sender.example", "bob@example.org", msg); code != 250 {
		t.Fatalf("with the route's name failing to resolve: %d %s, want it relayed on the last answer", code, text)
	}
	if got := len(sink.Messages()); got != 2 {
		t.Fatalf("customer got %d messages, want 2", got)
	}
}
