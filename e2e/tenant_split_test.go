package e2e

import (
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/tenant"
)

// tenantSMTPClient is a raw SMTP client that checks each reply's code.
type tenantSMTPClient struct {
	t *testing.T
	c *textproto.Conn
}

func tenantDialSMTP(t *testing.T, addr string) *tenantSMTPClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &tenantSMTPClient{t: t, c: textproto.NewConn(conn)}
	t.Cleanup(func() { c.c.Close() })
	c.cmd(220, "")
	c.cmd(250, "EHLO client.test")
	return c
}

// cmd sends line (none when empty) and wants code; it returns the reply text.
func (c *tenantSMTPClient) cmd(want int, line string) string {
	c.t.Helper()
	if line != "" {
		if err := c.c.PrintfLine("%s", line); err != nil {
			c.t.Fatalf("%s: %v", line, err)
		}
	}
	code, msg, err := c.c.ReadResponse(0)
	if err != nil && code == 0 {
		c.t.Fatalf("%q: %v", line, err)
	}
	if code != want {
		c.t.Fatalf("%q: got %d %s, want %d", line, code, msg, want)
	}
	return msg
}

// send runs one transaction whose recipients get the given RCPT codes and
// whose DATA must be accepted.
func (c *tenantSMTPClient) send(rcpts map[string]int, order ...string) {
	c.t.Helper()
	c.cmd(250, "MAIL FROM:<a@sender.test>")
	for _, r := range order {
		msg := c.cmd(rcpts[r], "RCPT TO:<"+r+">")
		if rcpts[r] == 452 && !strings.HasPrefix(msg, "4.5.3") {
			c.t.Fatalf("RCPT %s: %q, want 4.5.3", r, msg)
		}
	}
	c.cmd(354, "DATA")
	w := c.c.DotWriter()
	fmt.Fprintf(w, "From: a@sender.test\r\nTo: staff@split.example\r\nSubject: split\r\n\r\nOne note for two mail systems.\r\n")
	w.Close()
	c.cmd(250, "")
}

// tenantRcptsOf lists each received message's recipients.
func tenantRcptsOf(s *nodetest.Sink) [][]string {
	var out [][]string
	for _, m := range s.Messages() {
		out = append(out, m.Rcpts)
	}
	return out
}

// TestSplitDomainOverSMTP: one domain, mailboxes on two servers. A message
// to a recipient on each is split by the one-route-per-transaction rule
// (452 4.5.3 for the second), the sender's retry delivers the rest, and
// each server receives only its own recipients; for a domain from the
// config file and for one created through the admin API.
func TestSplitDomainOverSMTP(t *testing.T) {
	for _, setup := range []string{"config", "api"} {
		t.Run(setup, func(t *testing.T) {
			suite, onprem := nodetest.StartSink(t), nodetest.StartSink(t)
			cfg := nodetest.Config(t)
			rules := []tenant.RouteRule{{Recipients: []string{"bob", "sales-*"}, Route: onprem.Addr, TLS: "none"}}
			var n *nodetest.Node
			switch setup {
			case "config":
				d := nodetest.Domain("split.example", suite.Addr)
				d.Routes = rules
				cfg.Domains = append(cfg.Domains, d)
				n = nodetest.Start(t, cfg, tenantNoChecks)
			case "api":
				tok := filepath.Join(t.TempDir(), "operator.token")
				if err := os.WriteFile(tok, []byte(tenantOpToken), 0o600); err != nil {
					t.Fatal(err)
				}
				cfg.Admin.OperatorTokenFile = tok
				n = nodetest.Start(t, cfg, tenantNoChecks)
				res := tenantMustCreate(t, n, "/api/v1/resellers", map[string]any{"name": "R"})
				cust := tenantMustCreate(t, n, "/api/v1/customers", map[string]any{"name": "C", "reseller_id": res})
				id := tenantMustCreate(t, n, "/api/v1/domains", map[string]any{"name": "split.example", "customer_id": cust,
					"route": suite.Addr, "tls": "none", "routes": rules})
				code, out := tenantAPI(t, n, "GET", fmt.Sprintf("/api/v1/domains/%d", id), nil)
				if code != 200 || fmt.Sprint(out["routes"]) != fmt.Sprintf("[map[recipients:[bob sales-*] route:%s tls:none]]", onprem.Addr) {
					t.Fatalf("GET domain: %d %v", code, out)
				}
				tenantWaitAccepted(t, n, "alice@split.example", 5*time.Second)
			}

			c := tenantDialSMTP(t, n.SMTPAddr())
			// The first recipient sets the transaction's server; the other
			// server's recipient is deferred, its own server's joins.
			c.send(map[string]int{"alice@split.example": 250, "bob@split.example": 452, "carol@split.example": 250},
				"alice@split.example", "bob@split.example", "carol@split.example")
			// The sender's retry of the deferred recipient, and the other
			// way round: an on-prem first recipient defers the suite's.
			c.send(map[string]int{"bob@split.example": 250, "sales-eu@split.example": 250, "dave@split.example": 452},
				"bob@split.example", "sales-eu@split.example", "dave@split.example")
			c.send(map[string]int{"dave@split.example": 250}, "dave@split.example")

			if got, want := tenantRcptsOf(suite), [][]string{{"alice@split.example", "carol@split.example"}, {"dave@split.example"}}; !reflect.DeepEqual(got, want) {
				t.Errorf("suite server received %v, want %v", got, want)
			}
			if got, want := tenantRcptsOf(onprem), [][]string{{"bob@split.example", "sales-eu@split.example"}}; !reflect.DeepEqual(got, want) {
				t.Errorf("on-prem server received %v, want %v", got, want)
			}
		})
	}
}
