package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mxgrid/mxgrid/cluster"
	"github.com/mxgrid/mxgrid/internal/testenv"
)

type fakeView cluster.Status

func (f fakeView) Status() cluster.Status { return cluster.Status(f) }

// sixNodes is a cluster seen from a: three providers, one node dead, one
// draining, one left (scaled down), one not ready with a reason.
func sixNodes() fakeView {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	m := func(name, provider string, state cluster.State, ready bool) cluster.Member {
		return cluster.Member{Name: name, Provider: provider, Region: provider + "-1", State: state, Ready: ready,
			Addr: "127.0.0.1:7946", Version: "v1", Started: t0, LastChange: t0, Load: 1.5, ConfigVersion: 3}
	}
	draining := m("c", "ovh", cluster.StateAlive, false)
	draining.Draining = true
	notReady := m("f", "scaleway", cluster.StateAlive, false)
	notReady.Reasons = []string{"tenant: snapshot older than 10m <stale>"}
	self := m("a", "hetzner", cluster.StateAlive, true)
	self.Self, self.Leader = true, true
	return fakeView{Self: "a", Leader: "a", Members: []cluster.Member{
		self,
		m("b", "hetzner", cluster.StateAlive, true),
		draining,
		m("d", "ovh", cluster.StateDead, false),
		m("e", "scaleway", cluster.StateSuspect, true),
		notReady,
		m("g", "scaleway", cluster.StateLeft, false),
	}}
}

func TestClusterSummary(t *testing.T) {
	tests := []struct {
		name string
		view fakeView
		want clusterSummary
	}{
		{"empty", fakeView{Self: "a"}, clusterSummary{Text: "0 providers, 0/0 nodes ready"}},
		{"one", fakeView{Self: "a", Members: []cluster.Member{{Name: "a", Provider: "p", State: cluster.StateAlive, Ready: true}}},
			clusterSummary{Providers: 1, Nodes: 1, Ready: 1, Text: "1 provider, 1/1 nodes ready"}},
		{"left nodes are not counted", sixNodes(), clusterSummary{Providers: 3, Nodes: 6, Ready: 3, Text: "3 providers, 3/6 nodes ready"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newClusterPage(tt.view.Status(), time.Now()).Summary; got != tt.want {
				t.Errorf("summary = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestClusterAPI(t *testing.T) {
	srv := httptest.NewServer(ClusterAPI(sixNodes()))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, ct)
	}
	var got struct {
		Leader    string `json:"leader"`
		Summary   struct{ Text string }
		Providers []struct {
			Name    string
			Nodes   int
			Ready   int
			Members []struct {
				Name, State, Region string
				Ready               bool
				Reasons             []string
				ConfigVersion       uint64 `json:"config_version"`
				Load                float64
				LastChange          time.Time `json:"last_change"`
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Leader != "a" || got.Summary.Text != "3 providers, 3/6 nodes ready" {
		t.Errorf("leader %q, summary %q", got.Leader, got.Summary.Text)
	}
	var groups []string
	for _, p := range got.Providers {
		var names []string
		for _, m := range p.Members {
			names = append(names, m.Name+":"+m.State)
			if m.Region != p.Name+"-1" || m.ConfigVersion != 3 || m.Load != 1.5 || m.LastChange.IsZero() {
				t.Errorf("member %s lost fields: %+v", m.Name, m)
			}
		}
		groups = append(groups, p.Name+"("+strings.Join(names, ",")+")")
	}
	want := []string{"hetzner(a:alive,b:alive)", "ovh(c:alive,d:dead)", "scaleway(e:suspect,f:alive,g:left)"}
	if !slices.Equal(groups, want) {
		t.Errorf("groups = %v, want %v", groups, want)
	}
	if f := got.Providers[2].Members[1]; len(f.Reasons) != 1 || f.Ready {
		t.Errorf("f = %+v, want not ready with its reason", f)
	}
}

func TestClusterPageEscapes(t *testing.T) {
	rec := httptest.NewRecorder()
	ClusterPage(sixNodes()).ServeHTTP(rec, httptest.NewRequest("GET", "/cluster", nil))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "snapshot older than 10m &lt;stale&gt;") {
		t.Fatalf("status %d; reason not escaped in:\n%s", rec.Code, body)
	}
	// What gossip names is escaped, and were it not, nothing could run.
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v: want a CSP that runs nothing and frames nowhere, and nosniff", rec.Header())
	}
}

// The page an operator opens must show every member in a real browser.
func TestClusterPageInChromium(t *testing.T) {
	path := testenv.Chromium(t)
	srv := httptest.NewServer(ClusterPage(sixNodes()))
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1200, 800))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	// No timeout on the first run's context: cancelling it kills the
	// browser. The deadline goes on a context derived after the start.
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.WaitVisible(chromedp.ID("summary"))); err != nil {
		t.Fatal(err)
	}
	summary, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("summary")))
	if err != nil {
		t.Fatal(err)
	}
	if summary != "3 providers, 3/6 nodes ready" {
		t.Errorf("summary = %q", summary)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("section.provider tr.member")).map(r =>
			r.closest("section").dataset.provider + "/" + r.dataset.name + "/" + r.dataset.state)`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"hetzner/a/alive", "hetzner/b/alive", "ovh/c/alive", "ovh/d/dead",
		"scaleway/e/suspect", "scaleway/f/alive", "scaleway/g/left"}
	if !slices.Equal(rows, want) {
		t.Errorf("rows = %v, want %v", rows, want)
	}
	leader, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("leader")))
	if err != nil || leader != "a" {
		t.Errorf("leader = %q, %v", leader, err)
	}
}
