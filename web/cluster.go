package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/cluster"
)

// ClusterView is what the cluster page and API read: a snapshot of the
// members as this node sees them. *cluster.Cluster implements it.
type ClusterView interface {
	Status() cluster.Status
}

var _ ClusterView = (*cluster.Cluster)(nil)

//go:embed templates/cluster.html
var clusterFS embed.FS

var clusterTmpl = template.Must(template.New("cluster.html").Funcs(template.FuncMap{
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return now.Sub(t).Round(time.Second).String() + " ago"
	},
	"utc": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"load": func(v float64) string {
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	},
}).ParseFS(clusterFS, "templates/cluster.html"))

// clusterPage is the JSON of GET /api/v1/cluster and the data of /cluster.
type clusterPage struct {
	Self      string          `json:"self"`
	Leader    string          `json:"leader"` // "" when no member is up and ready
	Summary   clusterSummary  `json:"summary"`
	Providers []providerGroup `json:"providers"`
	Generated time.Time       `json:"generated_at"`
}

// clusterSummary counts members that are not known to have left on
// purpose: a dead node is a node missing, a left one was scaled away.
type clusterSummary struct {
	Providers int    `json:"providers"`
	Nodes     int    `json:"nodes"`
	Ready     int    `json:"ready"`
	Text      string `json:"text"` // "3 providers, 5/6 nodes ready"
}

type providerGroup struct {
	Name    string           `json:"name"`
	Nodes   int              `json:"nodes"`
	Ready   int              `json:"ready"`
	Members []cluster.Member `json:"members"`
}

func newClusterPage(s cluster.Status, now time.Time) clusterPage {
	p := clusterPage{Self: s.Self, Leader: s.Leader, Generated: now.UTC(), Providers: []providerGroup{}}
	counted := map[string]bool{}
	// Members come sorted by provider, so each group is a run.
	for _, m := range s.Members {
		if len(p.Providers) == 0 || p.Providers[len(p.Providers)-1].Name != m.Provider {
			p.Providers = append(p.Providers, providerGroup{Name: m.Provider})
		}
		g := &p.Providers[len(p.Providers)-1]
		g.Members = append(g.Members, m)
		if m.State == cluster.StateLeft {
			continue
		}
		g.Nodes++
		p.Summary.Nodes++
		counted[m.Provider] = true
		if m.Ready && !m.Draining {
			g.Ready++
			p.Summary.Ready++
		}
	}
	p.Summary.Providers = len(counted)
	p.Summary.Text = fmt.Sprintf("%s, %d/%d nodes ready", plural(p.Summary.Providers, "provider"), p.Summary.Ready, p.Summary.Nodes)
	return p
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// ClusterAPI serves GET /api/v1/cluster: every member with its state,
// provider, region, readiness and reasons, load, config version and last
// change, grouped by provider, with a summary and the leader.
func ClusterAPI(c ClusterView) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		body, err := json.MarshalIndent(newClusterPage(c.Status(), time.Now()), "", "  ")
		if err != nil {
			http.Error(w, "encoding the cluster status failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(append(body, '\n'))
	})
}

// ClusterPage serves GET /cluster: the same view as ClusterAPI as an HTML
// page for operators, without scripts, refreshing itself every 10 s.
func ClusterPage(c ClusterView) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var buf bytes.Buffer
		if err := clusterTmpl.Execute(&buf, newClusterPage(c.Status(), time.Now())); err != nil {
			http.Error(w, "rendering the cluster page failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		// Node names, providers and reasons come from every node's gossip:
		// escaped, and besides that nothing but the page's own style may
		// run or load, and no other site may frame it.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write(buf.Bytes())
	})
}
