package deploy

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/testenv"
)

// compose is the part of docker-compose.yml the checks read.
type compose struct {
	Services map[string]struct {
		Image       string
		Build       struct{ Context, Dockerfile string }
		Command     []string
		Ports       []string
		Volumes     []string
		Environment map[string]string
		Ulimits     map[string]yaml.Node
		StopGrace   string `yaml:"stop_grace_period"`
	}
}

func readCompose(t *testing.T) (root string, c compose) {
	t.Helper()
	root = testenv.RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return root, c
}

// mounts maps a service's container paths to the repository files bound
// there (named volumes are left out).
func mounts(root string, volumes []string) map[string]string {
	out := map[string]string{}
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && strings.HasPrefix(parts[0], "./") {
			out[parts[1]] = filepath.Join(root, parts[0])
		}
	}
	return out
}

var nodeServices = []string{"node-a", "node-b", "node-c"}

// secretsDir is where the services mount the generated secrets volume.
const secretsDir = "/run/mxgrid-secrets"

// TestComposeCluster checks docker-compose.yml statically (no Docker engine
// is needed): the services are there, the three nodes' configs are valid
// for this code and agree with each other and with the other services.
func TestComposeCluster(t *testing.T) {
	root, c := readCompose(t)
	for _, s := range append([]string{"secrets", "postgres", "memcached", "clamav", "prometheus", "grafana", "mailpit"}, nodeServices...) {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("service %s missing", s)
		}
	}
	pg := c.Services["postgres"].Environment
	if pg["POSTGRES_PASSWORD"] != "" || pg["POSTGRES_PASSWORD_FILE"] != secretsDir+"/db_password" {
		t.Errorf("postgres: password %q from file %q, want only the generated %s/db_password", pg["POSTGRES_PASSWORD"], pg["POSTGRES_PASSWORD_FILE"], secretsDir)
	}
	providers := map[string]bool{}
	cfgs := map[string]config.Config{}
	for _, name := range nodeServices {
		svc := c.Services[name]
		if svc.Build.Dockerfile != "deploy/Dockerfile" || svc.Build.Context != "." {
			t.Errorf("%s: build %+v, want deploy/Dockerfile in context .", name, svc.Build)
		}
		m := mounts(root, svc.Volumes)
		if !slices.Equal(svc.Command, []string{"serve", "--config", "/etc/mxgrid/mxgrid.yaml"}) || m["/etc/mxgrid/mxgrid.yaml"] == "" {
			t.Fatalf("%s: command %v with mounts %v: want serve --config of a mounted file", name, svc.Command, m)
		}
		data, err := os.ReadFile(m["/etc/mxgrid/mxgrid.yaml"])
		if err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		if err := config.Parse(data, &cfg); err != nil {
			t.Fatalf("%s config: %v", name, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s config: %v", name, err)
		}
		cfgs[name] = cfg
		if cfg.Node.Name != name {
			t.Errorf("%s: node.name %q, want the service name", name, cfg.Node.Name)
		}
		providers[cfg.Node.Provider] = true

		// The gossip key and the database password come from the secrets
		// volume the secrets service fills at first start, never from a
		// committed file.
		if !strings.HasPrefix(cfg.Cluster.SecretKeyFile, secretsDir+"/") || !slices.Contains(svc.Volumes, "secrets:"+secretsDir+":ro") {
			t.Errorf("%s: cluster.secret_key_file %q is not in the secrets volume at %s (volumes %v)", name, cfg.Cluster.SecretKeyFile, secretsDir, svc.Volumes)
		}
		if cfg.Cluster.SecretKey != "" {
			t.Errorf("%s: cluster.secret_key is committed in its config", name)
		}

		// Routes to the demo mail server, the shared PostgreSQL and memcached.
		for _, d := range cfg.Domains {
			if d.Route != "mailpit:1025" {
				t.Errorf("%s: domain %s routes to %s, want the demo mail server mailpit:1025", name, d.Name, d.Route)
			}
		}
		if len(cfg.Domains) == 0 {
			t.Errorf("%s: no domain routed to the demo mail server", name)
		}
		wantDSN := "postgres://" + pg["POSTGRES_USER"] + "@postgres:5432/" + pg["POSTGRES_DB"] + "?sslmode=disable&passfile=" + secretsDir + "/pgpass"
		if cfg.Store.Driver != "postgres" || cfg.Store.DSN != wantDSN {
			t.Errorf("%s: store %s %s, want postgres %s", name, cfg.Store.Driver, cfg.Store.DSN, wantDSN)
		}
		if !slices.Equal(cfg.Geo.Memcached, []string{"memcached:11211"}) {
			t.Errorf("%s: geo.memcached %v, want [memcached:11211]", name, cfg.Geo.Memcached)
		}
		// The daemon's default open-file limit may be far below what
		// smtp.max_connections sessions need.
		if soft, want := nofileSoft(t, svc.Ulimits["nofile"]), descriptorsPerSession*cfg.SMTP.MaxConnections; soft < want {
			t.Errorf("%s: ulimits nofile %d, want at least %d for smtp.max_connections %d", name, soft, want, cfg.SMTP.MaxConnections)
		}
		// Published ports lead to the listeners.
		for _, l := range []string{cfg.SMTP.Listen, cfg.HTTP.Listen} {
			_, port, _ := net.SplitHostPort(l)
			if !slices.ContainsFunc(svc.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }) {
				t.Errorf("%s: %s is not published (ports %v)", name, l, svc.Ports)
			}
		}
	}
	if len(providers) != 3 {
		t.Errorf("providers %v, want three different ones", providers)
	}
	// Each node's join list names every other node at its gossip port.
	for name, cfg := range cfgs {
		for _, other := range nodeServices {
			_, port, _ := net.SplitHostPort(cfgs[other].Cluster.Bind)
			if other != name && !slices.Contains(cfg.Cluster.Join, net.JoinHostPort(other, port)) {
				t.Errorf("%s: cluster.join %v does not reach %s:%s", name, cfg.Cluster.Join, other, port)
			}
		}
	}

	t.Run("prometheus finds the nodes through service discovery", func(t *testing.T) {
		file := mounts(root, c.Services["prometheus"].Volumes)["/etc/prometheus/prometheus.yml"]
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("prometheus.yml not mounted: %v", err)
		}
		var pc struct {
			ScrapeConfigs []struct {
				JobName       string `yaml:"job_name"`
				HTTPSDConfigs []struct {
					URL string
				} `yaml:"http_sd_configs"`
			} `yaml:"scrape_configs"`
		}
		if err := yaml.Unmarshal(b, &pc); err != nil {
			t.Fatal(err)
		}
		var urls []string
		for _, sc := range pc.ScrapeConfigs {
			for _, sd := range sc.HTTPSDConfigs {
				urls = append(urls, sd.URL)
			}
		}
		for name, cfg := range cfgs {
			_, port, _ := net.SplitHostPort(cfg.HTTP.ManagementListen)
			want := "http://" + name + ":" + port + "/api/v1/cluster/prometheus-sd"
			if !slices.Contains(urls, want) {
				t.Errorf("no http_sd_configs url %s (have %v)", want, urls)
			}
		}
	})

	t.Run("grafana provisions the datasource and the dashboard", func(t *testing.T) {
		m := mounts(root, c.Services["grafana"].Volumes)
		prov, dash := m["/etc/grafana/provisioning"], m["/var/lib/grafana/dashboards"]
		ds, err := os.ReadFile(filepath.Join(prov, "datasources", "prometheus.yaml"))
		if err != nil || !strings.Contains(string(ds), "url: http://prometheus:9090") {
			t.Errorf("datasource provisioning: %v\n%s", err, ds)
		}
		dp, err := os.ReadFile(filepath.Join(prov, "dashboards", "mxgrid.yaml"))
		if err != nil || !strings.Contains(string(dp), "path: /var/lib/grafana/dashboards") {
			t.Errorf("dashboard provisioning: %v\n%s", err, dp)
		}
		if _, err := os.Stat(filepath.Join(dash, "mxgrid.json")); err != nil {
			t.Errorf("dashboard not mounted: %v", err)
		}
	})

	t.Run("docker compose config", func(t *testing.T) {
		// The Compose plugin parses and validates without an engine; the
		// plain docker client without the plugin cannot.
		if err := exec.Command("docker", "compose", "version").Run(); err != nil {
			t.Skip("docker compose plugin not installed (`docker compose version` fails): static checks only")
		}
		cmd := exec.Command("docker", "compose", "-f", filepath.Join(root, "docker-compose.yml"), "config", "--quiet")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker compose config: %v\n%s", err, out)
		}
	})
}

// descriptorsPerSession bounds what one SMTP session holds open: the
// sender's connection, the relay's, clamd's and a spool file.
const descriptorsPerSession = 4

// nofileSoft is the soft limit of a compose ulimits entry, given as one
// number or as soft and hard; 0 when unset.
func nofileSoft(t *testing.T, n yaml.Node) int {
	t.Helper()
	if n.Kind == 0 {
		return 0
	}
	var single int
	if n.Decode(&single) == nil {
		return single
	}
	var pair struct{ Soft int }
	if err := n.Decode(&pair); err != nil {
		t.Fatalf("ulimits nofile: %v", err)
	}
	return pair.Soft
}

// TestDashboardUsesExportedMetrics extracts every metric named in the
// Grafana dashboard's queries and checks it against what a running node
// exports.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "grafana", "dashboards", "mxgrid.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	exprs := queries(dash)
	if len(exprs) < 20 {
		t.Fatalf("found %d queries in the dashboard, want its panels' (at least 20)", len(exprs))
	}
	for _, e := range exprs {
		names := metricNames(e)
		if len(names) == 0 {
			t.Errorf("query %q names no metric", e)
		}
		for _, n := range names {
			if baseName(n, exported) == "" {
				t.Errorf("query %q uses %s, which the node does not export", e, n)
			}
		}
	}
}

// queries returns every PromQL expression in a dashboard: panel targets'
// "expr" and template variables' "query" (string or {query: ...}).
func queries(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if s, ok := c.(string); ok && (k == "expr" || k == "query") {
				out = append(out, s)
				continue
			}
			out = append(out, queries(c)...)
		}
	case []any:
		for _, c := range v {
			out = append(out, queries(c)...)
		}
	}
	return out
}

var (
	// Strings (label values, regexes), label matchers and range selectors
	// hold no metric names; Grafana's $variables neither.
	promqlNoise = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]|\$\w+`)
	// Grouping clauses name labels, not metrics.
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// metricNames returns the metric names in a PromQL expression (or a
// Grafana label_values(metric, label) query): identifiers that are not
// functions, keywords or a label argument.
func metricNames(expr string) []string {
	s := promqlNoise.ReplaceAllString(expr, " ")
	s = promqlGrouping.ReplaceAllString(s, " ")
	s = regexp.MustCompile(`,\s*[a-zA-Z_]\w*\s*\)`).ReplaceAllString(s, ")") // label_values' label
	var out []string
	for _, loc := range promqlIdent.FindAllStringIndex(s, -1) {
		id := s[loc[0]:loc[1]]
		rest := strings.TrimLeft(s[loc[1]:], " ")
		if strings.HasPrefix(rest, "(") || promqlKeywords[id] {
			continue // a function call or an operator
		}
		out = append(out, id)
	}
	return out
}

var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true,
}

func TestMetricNames(t *testing.T) {
	tests := []struct{ expr, want string }{
		{`histogram_quantile(0.95, sum by (le, check) (rate(mxgrid_scanner_check_duration_seconds_bucket{node=~"$node"}[$__rate_interval])))`, "mxgrid_scanner_check_duration_seconds_bucket"},
		{`max by (node) (mxgrid_cluster_is_leader) == 1`, "mxgrid_cluster_is_leader"},
		{`sum(rate(a_total[5m])) / sum(rate(b_total[5m])) or vector(0)`, "a_total b_total"},
		{`label_values(mxgrid_smtp_sessions_total, node)`, "mxgrid_smtp_sessions_total"},
		{`up{job="mxgrid", instance=~"x{1}"} unless on (instance) foo_info`, "up foo_info"},
	}
	for _, tt := range tests {
		if got := strings.Join(metricNames(tt.expr), " "); got != tt.want {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// TestDockerfile checks the image statically: a multi-stage build of a
// static binary, a final stage without a shell or libc, a non-root user.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	var user, entry string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
			user = "" // USER is per stage
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entry = strings.Join(f[1:], " ")
		}
	}
	if len(froms) < 2 {
		t.Fatalf("FROM lines %v: want a build stage and a runtime stage", froms)
	}
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("runtime image %s: want distroless/static or scratch", final)
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0:") || user == "0" {
		t.Errorf("runtime stage USER %q: want a non-root user", user)
	}
	if !strings.Contains(string(b), "CGO_ENABLED=0") || !strings.Contains(string(b), "./cmd/mxgrid") {
		t.Error("the binary is not built with CGO_ENABLED=0 from ./cmd/mxgrid")
	}
	if !strings.Contains(entry, "/usr/local/bin/mxgrid") {
		t.Errorf("ENTRYPOINT %s: want the mxgrid binary", entry)
	}
	// A HEALTHCHECK asking another config than serve's asks the wrong
	// port once an operator moves http.management_listen: every node unhealthy.
	serve := regexp.MustCompile(`(?m)^CMD \["serve", "--config", ("[^"]+")\]`).FindSubmatch(b)
	if serve == nil {
		t.Fatal(`no CMD ["serve", "--config", FILE]`)
	}
	if health := `"health", "--config", ` + string(serve[1]) + `]`; !strings.Contains(string(b), health) {
		t.Errorf("HEALTHCHECK: want mxgrid %s, serve's config", health)
	}
}

// TestSystemdUnit checks the hardening the deployment guide promises and,
// where systemd-analyze exists, that systemd accepts the unit.
// stopTimeoutNeeded is how long a node may take to stop on SIGTERM:
// smtp.shutdown_grace for the SMTP transactions in flight, as long again
// for the HTTP requests (a quarantine release delivering), and a few
// seconds to leave the cluster. A supervisor that kills it sooner cuts a
// release, whose outcome is then unknown and which is never retried.
func stopTimeoutNeeded() time.Duration {
	return 2*config.Default().SMTP.ShutdownGrace + 5*time.Second
}

// TestStopTimeoutsOutlastTheDrain: the compose nodes' stop_grace_period
// and the unit's TimeoutStopSec leave the node its whole drain.
func TestStopTimeoutsOutlastTheDrain(t *testing.T) {
	_, c := readCompose(t)
	for _, name := range nodeServices {
		d, err := time.ParseDuration(c.Services[name].StopGrace)
		if err != nil || d < stopTimeoutNeeded() {
			t.Errorf("%s: stop_grace_period %q (%v), want at least %s", name, c.Services[name].StopGrace, err, stopTimeoutNeeded())
		}
	}
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "systemd", "mxgrid.service"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("mxgrid.service has no TimeoutStopSec")
	}
	if d, err := time.ParseDuration(string(m[1])); err != nil || d < stopTimeoutNeeded() {
		t.Errorf("mxgrid.service: TimeoutStopSec=%s (%v), want at least %s", m[1], err, stopTimeoutNeeded())
	}
}

func TestSystemdUnit(t *testing.T) {
	path := filepath.Join(testenv.RepoRoot(t), "deploy", "systemd", "mxgrid.service")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	for _, tt := range []struct{ key, want string }{
		{"ExecStart", "/usr/local/bin/mxgrid serve --config /etc/mxgrid/mxgrid.yaml"},
		{"DynamicUser", "yes"},
		{"AmbientCapabilities", "CAP_NET_BIND_SERVICE"},
		{"CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"},
		{"ProtectSystem", "strict"},
		{"StateDirectory", "mxgrid"},
		{"NoNewPrivileges", "yes"},
		{"KillSignal", "SIGTERM"},
	} {
		if !slices.Contains(keys[tt.key], tt.want) {
			t.Errorf("%s=%v, want %s", tt.key, keys[tt.key], tt.want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: static checks only")
		return
	}
	// verify wants ExecStart to exist; the unit is otherwise checked as is.
	unit := filepath.Join(t.TempDir(), "mxgrid.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/mxgrid", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
