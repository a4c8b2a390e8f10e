package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/store"
)

// BenchmarkTenantScale runs three `mxgrid serve` processes on one
// PostgreSQL database holding MXGRID_BENCH_TENANTS domains × recipients
// (default 1000x50; the sizes are 10000x250 and 100000x100) and
// reports:
//   - start-up from the store and from the snapshot file (the store down):
//     process start until a stored recipient is accepted;
//   - how long after the API call a new domain is accepted over SMTP by
//     all three nodes (p50, p99, max over MXGRID_BENCH_TENANT_CHANGES
//     changes, default 50);
//   - each node's resident and peak resident memory.
//
// Run: scripts/test.sh -run '^$' -bench TenantScale -benchtime 1x ./e2e/
func BenchmarkTenantScale(b *testing.B) {
	domains, rcpts := benchSize(b)
	changes := 50
	if v := os.Getenv("MXGRID_BENCH_TENANT_CHANGES"); v != "" {
		changes, _ = strconv.Atoi(v)
	}
	dsn := testenv.PostgresDB(b)
	bin := testenv.BuildMxgrid(b)
	dir := b.TempDir()
	// The customers' server: nodes verify recipients with it at RCPT.
	route := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	testenv.StartProcess(b, "sink", filepath.Join(dir, "sink.log"), bin, "loadgen", "sink", "--listen", route, "--report", filepath.Join(dir, "sink.ids"))
	t0 := time.Now()
	populateTenants(b, dsn, route, domains, rcpts)
	b.Logf("populated %d domains × %d recipients in %v", domains, rcpts, time.Since(t0).Round(time.Millisecond))
	tokFile := filepath.Join(dir, "operator.token")
	if err := os.WriteFile(tokFile, []byte(tenantOpToken+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	known := fmt.Sprintf("u%d@d%d.example", rcpts-1, domains)
	b.ResetTimer()

	nodes := make([]*scaleNode, 3)
	var gossip []string
	for range nodes {
		gossip = append(gossip, fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b)))
	}
	for i := range nodes {
		nodes[i] = &scaleNode{name: fmt.Sprintf("node-%d", i), dir: filepath.Join(dir, fmt.Sprintf("node-%d", i)),
			smtp: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b)), api: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b)),
			gossip: gossip[i], join: gossip}
	}
	// All three start at once, as after a cluster-wide restart.
	for _, n := range nodes {
		n.start(b, bin, dsn, tokFile)
	}
	var fromStore []time.Duration
	for _, n := range nodes {
		fromStore = append(fromStore, n.waitAccepted(b, known, 5*time.Minute))
	}

	lat := make([]time.Duration, 0, changes)
	for i := range changes {
		dom := fmt.Sprintf("new%d.example", i)
		start := time.Now()
		code, out := tenantAPIAt(b, nodes[i%3].api, "POST", "/api/v1/domains",
			map[string]any{"name": dom, "customer_id": 1, "route": route, "tls": "none"})
		if code != 201 {
			b.Fatalf("create %s: %d %v", dom, code, out)
		}
		pending := slices.Clone(nodes)
		for len(pending) > 0 {
			pending = slices.DeleteFunc(pending, func(n *scaleNode) bool { return tenantRcpt(b, n.smtp, "x@"+dom, false) == 250 })
			if time.Since(start) > 30*time.Second {
				b.Fatalf("%s not accepted by %d nodes after 30 s", dom, len(pending))
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "change-p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "change-p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "change-max-ms")
	var rss, peak float64
	for _, n := range nodes {
		r, p := n.memory(b)
		rss, peak = max(rss, r), max(peak, p)
	}
	b.ReportMetric(rss, "max-node-rss-MB")
	b.ReportMetric(peak, "max-node-peak-rss-MB")
	slices.Sort(fromStore)
	b.ReportMetric(fromStore[len(fromStore)-1].Seconds(), "startup-store-s")

	// Restart one node with the store unreachable: it serves its snapshot
	// file and journal, the changes above included.
	for _, n := range nodes {
		n.proc.Stop()
	}
	down := nodes[0]
	down.start(b, bin, "postgres://mxgrid@127.0.0.1:1/down?connect_timeout=1", tokFile)
	fromFile := down.waitAccepted(b, fmt.Sprintf("x@new%d.example", changes-1), 5*time.Minute)
	b.ReportMetric(fromFile.Seconds(), "startup-file-s")
	_, p := down.memory(b)
	b.ReportMetric(p, "file-node-peak-rss-MB")
	b.Logf("%d×%d: start-up from the store %v (slowest of 3), from the file %v; change accepted by all 3 nodes p50 %v, p99 %v, max %v over %d; node RSS ≤ %.0f MB, peak ≤ %.0f MB",
		domains, rcpts, fromStore[len(fromStore)-1].Round(time.Millisecond), fromFile.Round(time.Millisecond),
		lat[len(lat)/2].Round(time.Millisecond), lat[min(len(lat)-1, len(lat)*99/100)].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), changes, rss, peak)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func benchSize(b *testing.B) (int, int) {
	v := os.Getenv("MXGRID_BENCH_TENANTS")
	if v == "" {
		return 1000, 50
	}
	ds, rs, ok := strings.Cut(v, "x")
	d, err1 := strconv.Atoi(ds)
	r, err2 := strconv.Atoi(rs)
	if !ok || err1 != nil || err2 != nil || d < 1 || r < 1 {
		b.Fatalf("MXGRID_BENCH_TENANTS=%q: want DOMAINSxRECIPIENTS, e.g. 10000x250", v)
	}
	return d, r
}

// populateTenants writes one reseller, a customer per ten domains, the
// domains d1.example … and recipients u0 … on each, with COPY, and leaves
// the change log empty as after an import.
func populateTenants(b *testing.B, dsn, route string, domains, rcpts int) {
	ctx := context.Background()
	st, err := store.Open(store.Config{Driver: store.Postgres, DSN: dsn, Timeout: time.Minute}, "")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := store.NewTenants(st).Load(ctx); err != nil { // migrates
		b.Fatal(err)
	}
	st.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	now := time.Now().UnixMicro()
	customers := max(1, domains/10)
	copyRows := func(table string, cols []string, n int, row func(i int) []any) {
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			i++
			return row(i), nil
		})
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, src); err != nil {
			b.Fatalf("copy %s: %v", table, err)
		}
	}
	copyRows("resellers", []string{"id", "name", "policy", "created_us", "updated_us"}, 1,
		func(i int) []any { return []any{i, "bench", "{}", now, now} })
	copyRows("customers", []string{"id", "reseller_id", "name", "policy", "created_us", "updated_us"}, customers,
		func(i int) []any { return []any{i, 1, fmt.Sprintf("customer %d", i), "{}", now, now} })
	copyRows("domains", []string{"id", "customer_id", "name", "route", "tls", "policy", "created_us", "updated_us"}, domains,
		func(i int) []any {
			return []any{i, (i-1)%customers + 1, fmt.Sprintf("d%d.example", i), route, "none", "{}", now, now}
		})
	copyRows("recipients", []string{"domain_id", "local", "created_us"}, domains*rcpts,
		func(i int) []any { return []any{(i-1)/rcpts + 1, fmt.Sprintf("u%d", (i-1)%rcpts), now} })
	for _, q := range []string{
		"SELECT setval('resellers_id_seq', 1)",
		fmt.Sprintf("SELECT setval('customers_id_seq', %d)", customers),
		fmt.Sprintf("SELECT setval('domains_id_seq', %d)", domains),
		"UPDATE tenant_version SET version = 1",
		"ANALYZE",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
}

type scaleNode struct {
	name, dir, smtp, api, gossip string
	join                         []string
	proc                         *testenv.Process
	started                      time.Time
}

func (n *scaleNode) start(b *testing.B, bin, dsn, tokFile string) {
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(n.dir, "mxgrid.yaml")
	body := fmt.Sprintf(`node: {name: %s}
log: {level: warn}
data_dir: %s
smtp: {listen: "%s", hostname: %s.test, shutdown_grace: 2s}
http: {listen: "%s", management_listen: "127.0.0.1:0"}
cluster: {bind: "%s", join: ["%s"], insecure_no_key: true}
store: {driver: postgres, dsn: "%s", timeout: 5m}
admin: {operator_token_file: %s}
relay: {allowed_route_networks: ["127.0.0.0/8"]}
dns: {server: "127.0.0.1:9"}
`, n.name, n.dir, n.smtp, n.name, n.api, n.gossip, strings.Join(n.join, `", "`), dsn, tokFile)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		b.Fatal(err)
	}
	n.started = time.Now()
	n.proc = testenv.StartProcess(b, n.name, filepath.Join(n.dir, "log"), bin, "serve", "--config", cfg)
}

// waitAccepted polls RCPT until to is accepted; the time since the start.
func (n *scaleNode) waitAccepted(b *testing.B, to string, bound time.Duration) time.Duration {
	code := 0
	for {
		if smtpReadyOnce(n.smtp) {
			if code = tenantRcpt(b, n.smtp, to, false); code == 250 {
				return time.Since(n.started)
			}
		}
		if time.Since(n.started) > bound {
			b.Fatalf("%s did not accept %s within %v (last RCPT reply %d); log:\n%s", n.name, to, bound, code, n.proc.Log(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// memory is the node's resident and peak resident set in MB.
func (n *scaleNode) memory(b *testing.B) (float64, float64) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.proc.Pid()))
	if err != nil {
		b.Fatal(err)
	}
	field := func(name string) float64 {
		for _, line := range strings.Split(string(raw), "\n") {
			if rest, ok := strings.CutPrefix(line, name+":"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				return kb / 1024
			}
		}
		return 0
	}
	return field("VmRSS"), field("VmHWM")
}

// smtpReadyOnce reports whether addr greets with 220 now.
func smtpReadyOnce(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Write([]byte("QUIT\r\n"))
	return err == nil && strings.HasPrefix(line, "220")
}
