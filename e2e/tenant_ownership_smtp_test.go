package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/tenant"
)

// tenantAPIAs calls n's admin API with bearer.
func tenantAPIAs(t *testing.T, n *nodetest.Node, bearer, method, path string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	if body == nil {
		b = nil
	}
	req, _ := http.NewRequest(method, "http://"+n.HTTPAddr()+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestOwnershipOverSMTP: a reseller's new domain is refused at RCPT like an
// unknown one until it is proven; once the loopback DNS server serves the
// proof, the leader's periodic re-check activates it within the interval
// (measured), or the operator approves it.
func TestOwnershipOverSMTP(t *testing.T) {
	const interval = 500 * time.Millisecond
	for _, proof := range []string{"txt", "mx", "approve"} {
		t.Run(proof, func(t *testing.T) {
			dns := dnstest.Start(t)
			sink := nodetest.StartSink(t)
			cfg := nodetest.Config(t)
			cfg.DNS.Server = dns.Addr
			cfg.Cluster.MXHosts = []string{"mx1.mxgrid.test", "mx2.mxgrid.test"}
			cfg.Tenants.VerifyInterval = interval
			tok := filepath.Join(t.TempDir(), "operator.token")
			if err := os.WriteFile(tok, []byte(tenantOpToken), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg.Admin.OperatorTokenFile = tok
			n := nodetest.Start(t, cfg, tenantNoChecks)

			res := tenantMustCreate(t, n, "/api/v1/resellers", map[string]any{"name": "R"})
			cust := tenantMustCreate(t, n, "/api/v1/customers", map[string]any{"name": "C", "reseller_id": res})
			code, out := tenantAPI(t, n, "POST", "/api/v1/tokens", map[string]any{"name": "r", "reseller_id": res})
			if code != 201 {
				t.Fatalf("token: %d %v", code, out)
			}
			reseller := out["token"].(string)
			domain := proof + ".claimed.example"
			code, out = tenantAPIAs(t, n, reseller, "POST", "/api/v1/domains", map[string]any{"name": domain, "customer_id": cust, "route": sink.Addr, "tls": "none"})
			if code != 201 || out["status"] != tenant.StatusPending {
				t.Fatalf("create as reseller: %d %v, want 201 pending", code, out)
			}
			id := int64(out["id"].(float64))
			token := out["verify_token"].(string)

			// Several re-check rounds pass: still refused, like an unknown domain.
			time.Sleep(3 * interval)
			if got := tenantRcpt(t, n.SMTPAddr(), "alice@"+domain, false); got != 550 {
				t.Fatalf("pending domain at RCPT: %d, want 550", got)
			}
			if got := tenantRcpt(t, n.SMTPAddr(), "alice@unknown.example", false); got != 550 {
				t.Fatalf("unknown domain at RCPT: %d, want 550", got)
			}

			switch proof {
			case "txt":
				dns.AddTXT(domain, admin.VerifyPrefix+token)
			case "mx":
				dns.Add(t, domain+". 300 IN MX 10 mx1.mxgrid.test.", domain+". 300 IN MX 10 mx2.mxgrid.test.")
			case "approve":
				if code, out := tenantAPIAs(t, n, reseller, "POST", fmt.Sprintf("/api/v1/domains/%d/approve", id), nil); code != 403 {
					t.Fatalf("approve as reseller: %d %v, want 403", code, out)
				}
				if code, out := tenantAPI(t, n, "POST", fmt.Sprintf("/api/v1/domains/%d/approve", id), nil); code != 200 || out["status"] != tenant.StatusActive {
					t.Fatalf("approve as operator: %d %v", code, out)
				}
			}
			took := tenantWaitAccepted(t, n, "alice@"+domain, interval+time.Second)
			t.Logf("%s: proof to RCPT 250 in %v (verify_interval %v)", proof, took.Round(time.Millisecond), interval)
			if got := tenantRcpt(t, n.SMTPAddr(), "alice@"+domain, true); got != 250 {
				t.Fatalf("active domain: %d", got)
			}
		})
	}
}

// TestTransactionStaysWithOneCustomer: two customers' domains share a route
// and a policy, yet a transaction never mixes them: the second customer's
// recipient gets 452 4.5.3 and arrives in the sender's retry, alone.
func TestTransactionStaysWithOneCustomer(t *testing.T) {
	sink := nodetest.StartSink(t)
	cfg := nodetest.Config(t)
	tok := filepath.Join(t.TempDir(), "operator.token")
	if err := os.WriteFile(tok, []byte(tenantOpToken), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Admin.OperatorTokenFile = tok
	n := nodetest.Start(t, cfg, tenantNoChecks)
	res := tenantMustCreate(t, n, "/api/v1/resellers", map[string]any{"name": "R"})
	for _, c := range []string{"one", "two"} {
		cust := tenantMustCreate(t, n, "/api/v1/customers", map[string]any{"name": c, "reseller_id": res})
		tenantMustCreate(t, n, "/api/v1/domains", map[string]any{"name": c + ".example", "customer_id": cust, "route": sink.Addr, "tls": "none"})
		tenantWaitAccepted(t, n, "x@"+c+".example", 5*time.Second)
	}
	c := tenantDialSMTP(t, n.SMTPAddr())
	c.send(map[string]int{"alice@one.example": 250, "bob@two.example": 452, "carol@one.example": 250},
		"alice@one.example", "bob@two.example", "carol@one.example")
	c.send(map[string]int{"bob@two.example": 250}, "bob@two.example")
	if got, want := tenantRcptsOf(sink), [][]string{{"alice@one.example", "carol@one.example"}, {"bob@two.example"}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("downstream received %v, want %v", got, want)
	}
}
