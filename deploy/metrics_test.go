// Package deploy holds no Go code: these tests keep the deployment files
// (docker-compose.yml, deploy/, and the metrics named in README.md and
// docs/) true to the code.
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
	"reflect"
	"regexp"
	"slices"
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
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/node"
	"github.com/mxgrid/mxgrid/notify"
)

var update = flag.Bool("update", false, "rewrite the generated part of docs/metrics.md")

// metric is one metric family a node exports.
type metric struct {
	Name, Help, Type string
	Labels           []string
}

// descRE reads prometheus.Desc.String(), the only way to list what a
// registry can export, including vectors that have no series yet.
var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", help: "((?:[^"\\]|\\.)*)", unit: "[^"]*", constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}\}$`)

// constLabelRE finds the names in a Desc's constLabels: files that share a
// metric tell themselves apart by one (mxgrid_geo_database_loads_total's
// database).
var constLabelRE = regexp.MustCompile(`(\w+)="(?:[^"\\]|\\.)*"`)

// exportedMetrics runs a node the way `mxgrid serve` does, sends it a ham
// and a spam message so that its vectors have series (and thus types), and
// returns every metric family it can export, by name.
func exportedMetrics(t *testing.T) map[string]metric {
	t.Helper()
	sink := nodetest.StartSink(t)
	cfg := nodetest.Config(t)
	cfg.Domains = append(cfg.Domains, nodetest.Domain("example.org", sink.Addr))
	// Digests on, so that their metrics are catalogued too.
	cfg.Notify.Smarthost, cfg.Notify.SmarthostTLS, cfg.HTTP.PublicURL = sink.Addr, notify.TLSNone, "https://mx.example"
	// STARTTLS on, for the certificate's.
	cfg.SMTP.TLSCert, cfg.SMTP.TLSKey = filepath.Join(cfg.DataDir, "cert.pem"), filepath.Join(cfg.DataDir, "key.pem")
	smtptest.WriteCertFiles(t, smtptest.SelfSigned(t, "mx.test"), cfg.SMTP.TLSCert, cfg.SMTP.TLSKey)
	// A model file, for the metrics of files reloaded while running.
	cfg.Scanner.ModelFile = filepath.Join("..", "scanner", "model", "default.model")
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
		for _, c := range constLabelRE.FindAllStringSubmatch(m[3], -1) {
			labels = append(labels, c[1])
		}
		if m[4] != "" {
			labels = append(labels, strings.Split(m[4], ",")...)
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
// named in it, in README.md or in another document under docs/ may be
// missing from the node or name a label the metric lacks. With -update it
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
	// Every document an operator copies metric names and labels from.
	others, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(others, filepath.Join(testenv.RepoRoot(t), "README.md")) {
		text := doc
		if p != path {
			if text, err = os.ReadFile(p); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range docMetrics(string(text)) {
			base := baseName(m.Name, exported)
			if base == "" {
				t.Errorf("%s names %s, which the node does not export", filepath.Base(p), m.Name)
				continue
			}
			for _, l := range m.Labels {
				if !slices.Contains(exported[base].Labels, l) && !scrapeLabels[l] {
					t.Errorf("%s names %s{%s}, but %s has no label %s (labels: %v)", filepath.Base(p), m.Name, l, base, l, exported[base].Labels)
				}
			}
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

// docMetric is a metric named in a document, with the labels it names.
type docMetric struct {
	Name   string
	Labels []string
}

var (
	// docMetricRE finds a metric and what follows it in braces: either an
	// alternation inside the name (mxgrid_relay_cache_{hits,misses}_total)
	// or label names and matchers (..._total{stage,outcome}, {stage="data"}).
	// A name inside another word (__meta_mxgrid_node) does not match.
	docMetricRE = regexp.MustCompile(`\b(?:mxgrid|go|process)_[a-z0-9_]*(?:\{[^}\n]*\}[a-z0-9_]*)?`)
	// notMetrics look like metric names in the documents but name other
	// things.
	notMetrics = map[string]bool{"mxgrid_restored": true} // docs/backup.md: a database
	// scrapeLabels are added by Prometheus and the documented relabelling
	// (docs/deploy.md), not by the node.
	scrapeLabels = map[string]bool{"le": true, "quantile": true, "node": true, "instance": true, "job": true}
)

// docMetrics returns the metrics a document names. A pattern
// (mxgrid_smtp_*, mxgrid_<subsystem>_...) and a file name
// (cluster/process_test.go) are not names.
func docMetrics(text string) []docMetric {
	var out []docMetric
	for _, loc := range docMetricRE.FindAllStringIndex(text, -1) {
		m, rest := text[loc[0]:loc[1]], text[loc[1]:]
		if len(rest) > 1 && rest[0] == '.' && rest[1] >= 'a' && rest[1] <= 'z' {
			continue
		}
		name, braces, _ := strings.Cut(m, "{")
		inner, after, _ := strings.Cut(braces, "}")
		if strings.HasSuffix(name, "_") && after != "" {
			for _, alt := range strings.Split(inner, ",") {
				out = append(out, docMetric{Name: name + strings.TrimSpace(alt) + after})
			}
			continue
		}
		if strings.HasSuffix(name, "_") || notMetrics[name] {
			continue
		}
		d := docMetric{Name: name}
		for _, matcher := range strings.Split(inner, ",") {
			l, _, _ := strings.Cut(matcher, "=") // also =~, and != with its "!" trimmed
			if l = strings.TrimSpace(strings.TrimSuffix(l, "!")); l != "" {
				d.Labels = append(d.Labels, l)
			}
		}
		out = append(out, d)
	}
	return out
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

func TestDocMetrics(t *testing.T) {
	tests := []struct {
		text string
		want []docMetric
	}{
		{"`mxgrid_smtp_transactions_total{outcome,class}`", []docMetric{{"mxgrid_smtp_transactions_total", []string{"outcome", "class"}}}},
		{`mxgrid_relay_results_total{stage="data",outcome!="ok"}`, []docMetric{{"mxgrid_relay_results_total", []string{"stage", "outcome"}}}},
		{"`mxgrid_relay_cache_{hits,misses}_total`", []docMetric{{Name: "mxgrid_relay_cache_hits_total"}, {Name: "mxgrid_relay_cache_misses_total"}}},
		{"rate(go_gc_duration_seconds_count[5m]).", []docMetric{{Name: "go_gc_duration_seconds_count"}}},
		{"`mxgrid_smtp_*`, `mxgrid_<subsystem>_<name>` and cluster/process_test.go", nil},
		{"__meta_mxgrid_node, createdb mxgrid_restored", nil},
	}
	for _, tt := range tests {
		if got := docMetrics(tt.text); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("docMetrics(%q) = %+v, want %+v", tt.text, got, tt.want)
		}
	}
}
