// Package deploy holds no Go code: these tests keep the deployment files
// (docker-compose.yml, deploy/, docs/metrics.md) true to the code.
package deploy

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/mxgrid/mxgrid/internal/democorpus"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/node"
)

var update = flag.Bool("update", false, "rewrite the generated part of docs/metrics.md")

// metric is one metric family a node exports.
type metric struct {
	Name, Help, Type string
	Labels           []string
}

// descRE reads prometheus.Desc.String(), the only way to list what a
// registry can export, including vectors that have no series yet.
var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", help: "((?:[^"\\]|\\.)*)", unit: "[^"]*", constLabels: \{[^}]*\}, variableLabels: \{([^}]*)\}\}$`)

// exportedMetrics runs a node the way `mxgrid serve` does, sends it a ham
// and a spam message so that its vectors have series (and thus types), and
// returns every metric family it can export, by name.
func exportedMetrics(t *testing.T) map[string]metric {
	t.Helper()
	sink := nodetest.StartSink(t)
	cfg := nodetest.Config(t)
	cfg.Domains = append(cfg.Domains, nodetest.Domain("example.org", sink.Addr))
	// The same collectors node.New registers on a registry of its own.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.New(ctx, cfg, node.Options{Log: slog.New(slog.DiscardHandler), Registry: reg})
	if err != nil {
		cancel()
		t.Fatalf("node: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("node did not stop within 30 s")
		}
	}()
	msgs, err := democorpus.Messages()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs[:2] { // one spam, one ham
		if err := send(n.SMTPAddr(), m.Data); err != nil && !strings.Contains(err.Error(), "550") {
			t.Fatalf("send %s: %v", m.Name, err)
		}
	}

	out := map[string]metric{}
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	for d := range ch {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("unexpected Desc format: %s", d)
		}
		help := strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(m[2])
		var labels []string
		if m[3] != "" {
			labels = strings.Split(m[3], ",")
		}
		out[m[1]] = metric{Name: m[1], Help: help, Labels: labels}
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		m := out[f.GetName()]
		m.Type = strings.ToLower(f.GetType().String())
		if m.Name == "" { // an unchecked collector: known only from its series
			m.Name, m.Help = f.GetName(), f.GetHelp()
			m.Labels = seriesLabels(f)
		}
		out[m.Name] = m
	}
	for name, m := range out {
		if m.Type == "" && strings.HasSuffix(name, "_total") {
			m.Type = "counter" // a counter vector with no series yet
			out[name] = m
		}
	}
	return out
}

func seriesLabels(f *dto.MetricFamily) []string {
	seen := map[string]bool{}
	for _, m := range f.Metric {
		for _, l := range m.Label {
			seen[l.GetName()] = true
		}
	}
	var out []string
	for l := range seen {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

func send(addr string, data []byte) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail("a@sender.test", nil); err != nil {
		return err
	}
	if err := c.Rcpt("bob@example.org", nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.Close()
}

// baseName maps a series name in an expression or a document to the family
// that exports it: histograms' _bucket, _sum and _count series.
func baseName(name string, exported map[string]metric) string {
	if _, ok := exported[name]; ok {
		return name
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, suf); ok {
			if m, ok := exported[b]; ok && (m.Type == "histogram" || m.Type == "summary") {
				return b
			}
		}
	}
	return ""
}

const generatedMarker = "<!-- Generated from a running node by `go test ./deploy -run TestMetricsCatalogue -update`. Do not edit below. -->"

// TestMetricsCatalogue keeps docs/metrics.md true: its generated table must
// be exactly what a node exports (name, type, labels, help), and no metric
// named anywhere in it may be missing from the node. With -update it
// rewrites the table.
func TestMetricsCatalogue(t *testing.T) {
	exported := exportedMetrics(t)
	path := filepath.Join(testenv.RepoRoot(t), "docs", "metrics.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, _, ok := bytes.Cut(doc, []byte(generatedMarker))
	if !ok {
		t.Fatalf("%s: marker line missing:\n%s", path, generatedMarker)
	}
	want := append(append(bytes.Clone(head), generatedMarker...), catalogue(exported)...)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		doc = want
	}
	for _, name := range regexp.MustCompile(`\b(?:mxgrid|go|process)_[a-z0-9_]+\b`).FindAllString(string(doc), -1) {
		if baseName(name, exported) == "" {
			t.Errorf("docs/metrics.md names %s, which the node does not export", name)
		}
	}
	if !bytes.Equal(doc, want) {
		documented := map[string]bool{}
		for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)`").FindAllStringSubmatch(string(doc), -1) {
			documented[m[1]] = true
		}
		for name := range exported {
			if !documented[name] {
				t.Errorf("docs/metrics.md misses %s", name)
			}
		}
		t.Errorf("docs/metrics.md is stale (names, types, labels or help changed): run go test ./deploy -run TestMetricsCatalogue -update")
	}
}

// catalogue renders the generated part: one table per prefix group.
func catalogue(exported map[string]metric) []byte {
	names := make([]string, 0, len(exported))
	for n := range exported {
		names = append(names, n)
	}
	sort.Strings(names)
	groups := []struct{ title, prefix string }{
		{"mxgrid", "mxgrid_"},
		{"Go runtime (client_golang's Go collector)", "go_"},
		{"Process (client_golang's process collector)", "process_"},
		{"Other", ""}, // whatever the prefixes above miss, so nothing goes undocumented
	}
	group := func(n string) string {
		for _, g := range groups {
			if strings.HasPrefix(n, g.prefix) {
				return g.prefix
			}
		}
		return ""
	}
	var b bytes.Buffer
	b.WriteString("\n")
	for _, g := range groups {
		var rows []string
		for _, n := range names {
			if group(n) == g.prefix {
				rows = append(rows, n)
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n### %s\n\n| metric | type | labels | help |\n|---|---|---|---|\n", g.title)
		for _, n := range rows {
			m := exported[n]
			typ := m.Type
			if typ == "" {
				typ = "—"
			}
			labels := "—"
			if len(m.Labels) > 0 {
				labels = "`" + strings.Join(m.Labels, "`, `") + "`"
			}
			help := strings.ReplaceAll(m.Help, "|", `\|`)
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", n, typ, labels, help)
		}
	}
	return b.Bytes()
}
