package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/testenv"
)

// demoStartTimeout is the promise of the README: within 60 s of
// `mxgrid demo` the map, the cluster page and /metrics show real content.
const demoStartTimeout = 60 * time.Second

// TestDemo runs the built binary as a user would (with free ports, so it
// runs beside anything else), reads the URLs it prints, checks that each
// answers with real content, lets a real Prometheus discover and scrape
// the three nodes through the service discovery endpoint when one is
// available, and stops the demo with SIGTERM.
func TestDemo(t *testing.T) {
	cmd := exec.Command(binary, "demo", "--free-ports", "--interval", "200ms")
	var logs testenv.SyncBuffer
	cmd.Stderr = &logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out := &testenv.SyncBuffer{}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.Write([]byte(sc.Text() + "\n"))
			select {
			case lines <- sc.Text():
			default: // the test reads only the start; the replay goes on
			}
		}
		close(lines)
	}()

	deadline := time.After(demoStartTimeout)
	urls := map[string][]string{} // "map", "cluster", "metrics", "prometheus service discovery"
	urlLine := regexp.MustCompile(`^\s+([a-z ]+):\s+(http://\S+)`)
	// A replayed message's line ends with the node's reply.
	replyLine := regexp.MustCompile(`^node-[abc] .* (250|550|554) `)
	replies := 0
	for replies < 3 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo exited early:\n%s\n%s", out.String(), logs.String())
			}
			if m := urlLine.FindStringSubmatch(l); m != nil {
				urls[m[1]] = append(urls[m[1]], m[2])
			}
			if replyLine.MatchString(l) {
				replies++
			}
		case <-deadline:
			t.Fatalf("no URLs and replies within %v:\n%s\n%s", demoStartTimeout, out.String(), logs.String())
		}
	}
	if len(urls["map"]) != 1 || len(urls["cluster"]) != 1 || len(urls["metrics"]) != 3 || len(urls["prometheus service discovery"]) != 1 {
		t.Fatalf("printed URLs %v, want a map, a cluster page, 3 metrics and the SD endpoint:\n%s", urls, out.String())
	}

	checks := []struct {
		name, url string
		want      []string // all must occur in the body
	}{
		{"cluster page", urls["cluster"][0], []string{"3 providers, 3/3 nodes ready", "hetzner", "ovh", "scaleway"}},
		{"map", urls["map"][0], []string{"<svg"}},
		{"metrics a", urls["metrics"][0], []string{`mxgrid_smtp_transactions_total{`, `mxgrid_cluster_members{provider="ovh",state="alive"} 1`}},
		{"metrics b", urls["metrics"][1], []string{`mxgrid_scanner_verdicts_total{`, "go_goroutines"}},
		{"metrics c", urls["metrics"][2], []string{`mxgrid_relay_results_total{`, "process_cpu_seconds_total"}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			var body string
			var err error
			// The replay has started, so every node has handled mail; the
			// page content may still take a moment (the map's generation).
			for try := 0; try < 50; try++ {
				if body, err = get(c.url); err == nil && containsAll(body, c.want) {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
			t.Errorf("GET %s: %v; want %q in:\n%.2000s", c.url, err, c.want, body)
		})
	}

	t.Run("prometheus discovers and scrapes every node", func(t *testing.T) {
		sd := urls["prometheus service discovery"][0]
		prom := testenv.StartPrometheus(t, prometheusConfig(sd))
		if prom == "" {
			return
		}
		var last string
		for try := 0; try < 150; try++ {
			up, err := queryUp(prom)
			if err == nil && len(up) == 3 && up["node-a"] == "1" && up["node-b"] == "1" && up["node-c"] == "1" {
				return
			}
			last = fmt.Sprintf("%v %v", up, err)
			time.Sleep(200 * time.Millisecond)
		}
		t.Errorf("up by node after 30 s: %s, want 1 for node-a, node-b, node-c", last)
	})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("demo did not exit within 30 s of SIGTERM\n%s", logs.String())
	}
}

// prometheusConfig is what docs/deploy.md documents for a bare-metal
// cluster: HTTP service discovery against any one node, refreshed quickly
// here so the test does not wait for the default minute.
func prometheusConfig(sdURL string) string {
	return fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: mxgrid
    http_sd_configs:
      - url: %q
        refresh_interval: 1s
    relabel_configs:
      - source_labels: [__meta_mxgrid_node]
        target_label: node
      - source_labels: [__meta_mxgrid_provider]
        target_label: node_provider
`, sdURL)
}

// queryUp asks Prometheus's HTTP API for up, by node label.
func queryUp(base string) (map[string]string, error) {
	body, err := get(base + "/api/v1/query?query=" + url.QueryEscape(`up{job="mxgrid"}`))
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Status != "success" {
		return nil, fmt.Errorf("query up: %v: %.300s", err, body)
	}
	up := map[string]string{}
	for _, s := range r.Data.Result {
		v, _ := s.Value[1].(string)
		up[s.Metric["node"]] = v
	}
	return up, nil
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func get(u string) (string, error) {
	resp, err := httpClient.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return string(b), nil
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// testenv.SyncBuffer is a bytes.Buffer safe for the writer goroutine and the test.

// TestDemoFreePortsHelp: --free-ports' help names every fixed port it
// replaces; it used to leave out the management listeners, so a user
// whose 8035 was taken had no hint that the flag would help.
func TestDemoFreePortsHelp(t *testing.T) {
	out, err := exec.Command(binary, "demo", "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("demo -h: %v\n%s", err, out)
	}
	_, help, _ := strings.Cut(string(out), "-free-ports")
	help, _, _ = strings.Cut(help, "\n  -")
	for _, ports := range []string{"HTTP 8025-8027", "management 8035-8037", "SMTP 2525-2527", "gossip 7946-7948", "2600"} {
		if !strings.Contains(help, ports) {
			t.Errorf("--free-ports help %q does not name %s", help, ports)
		}
	}
}
