package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/store"
)

const tenantOpToken = "operator-token-for-the-propagation-tests-0123456789"

// tenantRcpt runs one SMTP transaction up to RCPT (or through DATA with send)
// and returns the RCPT reply code.
func tenantRcpt(t testing.TB, addr, to string, send bool) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := textproto.NewConn(conn)
	step := func(want int, line string) int {
		if line != "" {
			if err := c.PrintfLine("%s", line); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
		}
		code, msg, err := c.ReadResponse(want)
		if err != nil && want != 0 {
			t.Fatalf("%q: got %d %s", line, code, msg)
		}
		return code
	}
	step(220, "")
	step(250, "EHLO client.test")
	step(250, "MAIL FROM:<a@sender.test>")
	code := step(0, "RCPT TO:<"+to+">")
	if code == 250 && send {
		step(354, "DATA")
		w := c.DotWriter()
		fmt.Fprintf(w, "From: a@sender.test\nTo: %s\nSubject: hello\n\nA short, ordinary note.\n", to)
		w.Close()
		step(250, "")
	}
	c.PrintfLine("QUIT")
	return code
}

// tenantAPI calls node's admin API as the operator.
func tenantAPI(t *testing.T, n *nodetest.Node, method, path string, body any) (int, map[string]any) {
	t.Helper()
	return tenantAPIAt(t, n.HTTPAddr(), method, path, body)
}

// tenantAPIAt calls the admin API at addr as the operator.
func tenantAPIAt(t testing.TB, addr, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, "http://"+addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+tenantOpToken)
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func tenantMustCreate(t *testing.T, n *nodetest.Node, path string, body any) int64 {
	t.Helper()
	code, out := tenantAPI(t, n, "POST", path, body)
	if code != 201 {
		t.Fatalf("POST %s: %d %v", path, code, out)
	}
	return int64(out["id"].(float64))
}

// tenantClusterConfig is a node of a cluster sharing dsn; join is the first
// node's gossip address ("" for the first).
func tenantClusterConfig(t *testing.T, name, dsn, join string) config.Config {
	cfg := nodetest.Config(t)
	cfg.Node.Name = name
	if join == "" {
		cfg.Cluster.Bind = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	} else {
		cfg.Cluster.Join = []string{join}
	}
	cfg.Store = store.Config{Driver: store.Postgres, DSN: dsn, Timeout: 3 * time.Second}
	tokFile := filepath.Join(t.TempDir(), "operator.token")
	if err := os.WriteFile(tokFile, []byte(tenantOpToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Admin.OperatorTokenFile = tokFile
	return cfg
}

// tenantNoChecks keeps the scan pipeline out of these tests: they are about
// which domains a node accepts.
var tenantNoChecks = []scanner.Stage{}

// tenantWaitMembers waits until n sees want members in the cluster.
func tenantWaitMembers(t *testing.T, n *nodetest.Node, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + n.ManagementAddr() + "/api/v1/cluster")
		if err == nil {
			var out struct {
				Members []struct{ Name string } `json:"members"`
			}
			b := new(bytes.Buffer)
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if json.Unmarshal(b.Bytes(), &out) == nil && len(out.Members) >= want {
				return
			}
			if len(out.Members) == 0 && strings.Count(b.String(), `"name"`) >= want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not reach %d members", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tenantWaitAccepted polls until n accepts to and returns how long it took.
func tenantWaitAccepted(t *testing.T, n *nodetest.Node, to string, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for tenantRcpt(t, n.SMTPAddr(), to, false) != 250 {
		if time.Since(start) > bound {
			t.Fatalf("%s not accepted by %s within %v", to, n.Config.Node.Name, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestPropagationThreeNodes: a domain created through node A's API is
// accepted over SMTP by B and C within 5 s, by announcement alone (the
// periodic reload is set far beyond the bound).
func TestPropagationThreeNodes(t *testing.T) {
	dsn := testenv.PostgresDB(t)
	sink := nodetest.StartSink(t)
	cfgA := tenantClusterConfig(t, "node-a", dsn, "")
	cfgA.Tenants.ReloadInterval = 10 * time.Minute
	a := nodetest.Start(t, cfgA, tenantNoChecks)
	var others []*nodetest.Node
	for _, name := range []string{"node-b", "node-c"} {
		cfg := tenantClusterConfig(t, name, dsn, cfgA.Cluster.Bind)
		cfg.Tenants.ReloadInterval = 10 * time.Minute
		others = append(others, nodetest.Start(t, cfg, tenantNoChecks))
	}
	tenantWaitMembers(t, a, 3)

	res := tenantMustCreate(t, a, "/api/v1/resellers", map[string]any{"name": "R"})
	cust := tenantMustCreate(t, a, "/api/v1/customers", map[string]any{"name": "C", "reseller_id": res})
	var lat []time.Duration
	for i := range 7 {
		dom := fmt.Sprintf("prop%d.example", i)
		tenantMustCreate(t, a, "/api/v1/domains", map[string]any{"name": dom, "customer_id": cust, "route": sink.Addr, "tls": "none"})
		start := time.Now()
		for _, n := range others {
			tenantWaitAccepted(t, n, "x@"+dom, 5*time.Second)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("propagation to B and C over %d changes: p50 %v, max %v", len(lat), lat[len(lat)/2], lat[len(lat)-1])

	// Every node reports the same config version in gossip and metrics.
	_, out := tenantAPI(t, a, "GET", "/api/v1/domains?limit=1", nil)
	if out == nil {
		t.Fatal("domains list failed")
	}
	for _, n := range append(others, a) {
		resp, err := http.Get("http://" + n.ManagementAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b := new(bytes.Buffer)
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		for _, m := range []string{"mxgrid_tenant_config_version 9", "mxgrid_tenant_config_age_seconds"} {
			if !strings.Contains(b.String(), m) {
				t.Errorf("%s /metrics lacks %q", n.Config.Node.Name, m)
			}
		}
	}
}

// TestDatabaseOutage: with PostgreSQL stopped, nodes keep accepting mail
// for known domains, a restarted node starts from its snapshot file (and
// defers mail for domains it does not know), API writes fail with 503,
// and once PostgreSQL is back writes work again.
func TestDatabaseOutage(t *testing.T) {
	pg := testenv.StartPostgres(t)
	sink := nodetest.StartSink(t)
	cfgA := tenantClusterConfig(t, "node-a", pg.DSN, "")
	cfgA.Tenants.ReloadInterval = 200 * time.Millisecond
	cfgA.Tenants.StaleAfter = 2
	a := nodetest.Start(t, cfgA, tenantNoChecks)
	cfgB := tenantClusterConfig(t, "node-b", pg.DSN, cfgA.Cluster.Bind)
	cfgB.Tenants.ReloadInterval = 200 * time.Millisecond
	b := nodetest.Start(t, cfgB, tenantNoChecks)
	tenantWaitMembers(t, a, 2)

	res := tenantMustCreate(t, a, "/api/v1/resellers", map[string]any{"name": "R"})
	cust := tenantMustCreate(t, a, "/api/v1/customers", map[string]any{"name": "C", "reseller_id": res})
	tenantMustCreate(t, a, "/api/v1/domains", map[string]any{"name": "known.example", "customer_id": cust, "route": sink.Addr, "tls": "none"})
	// Both nodes must know the domain before the database goes: a's own
	// reload after its write runs as b's does, and either may finish first.
	for _, n := range []*nodetest.Node{a, b} {
		tenantWaitAccepted(t, n, "x@known.example", 5*time.Second)
	}

	pg.Stop()
	for _, n := range []*nodetest.Node{a, b} {
		if code := tenantRcpt(t, n.SMTPAddr(), "x@known.example", true); code != 250 {
			t.Fatalf("%s with the database down: RCPT %d, want 250", n.Config.Node.Name, code)
		}
	}
	code, out := tenantAPI(t, a, "POST", "/api/v1/domains", map[string]any{"name": "new.example", "customer_id": cust, "route": sink.Addr})
	if code != 503 || !strings.Contains(fmt.Sprint(out["error"]), "database is unavailable") {
		t.Fatalf("write with the database down: %d %v; want 503 saying why", code, out)
	}
	// Stale after 2 failed 200 ms reloads: degraded, still in rotation.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + a.ManagementAddr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body := new(bytes.Buffer)
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(body.String(), "tenant snapshot version") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz did not report a stale snapshot: %d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// B restarts while the database is down: it serves its snapshot file.
	b.Stop(t)
	b2 := nodetest.Start(t, cfgB, tenantNoChecks)
	if code := tenantRcpt(t, b2.SMTPAddr(), "x@known.example", true); code != 250 {
		t.Fatalf("restarted node: RCPT %d, want 250 from the snapshot file", code)
	}
	// A domain the file lacks may have been added since it was saved (on
	// another node, before the database went): with the list unconfirmed,
	// its mail is deferred, never bounced, as Postfix answers when its
	// relay_domains lookup fails.
	if code := tenantRcpt(t, b2.SMTPAddr(), "x@unknown.example", false); code != 451 {
		t.Fatalf("restarted node: unknown domain RCPT %d, want 451 while the store cannot confirm the list", code)
	}
	if got := len(sink.Messages()); got != 3 {
		t.Fatalf("sink holds %d messages, want 3", got)
	}

	pg.Start()
	deadline = time.Now().Add(15 * time.Second)
	for {
		code, out = tenantAPI(t, a, "POST", "/api/v1/domains", map[string]any{"name": "new.example", "customer_id": cust, "route": sink.Addr, "tls": "none"})
		if code == 201 {
			break
		}
		if code != 503 || time.Now().After(deadline) {
			t.Fatalf("write after the database came back: %d %v", code, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	tenantWaitAccepted(t, b2, "x@new.example", 5*time.Second)
}
