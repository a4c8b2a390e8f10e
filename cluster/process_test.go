package cluster_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/testenv"
)

// These tests run real `mxgrid serve` processes on loopback, each "at" its
// own provider, and watch them through /api/v1/cluster as an operator would.

const gossipKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

type proc struct {
	bin            string
	name, provider string
	http, smtp     string
	gossip         string
	config         string
	logPath        string
	cmd            *exec.Cmd
	exited         chan struct{}
}

func newProcs(t testing.TB, profile string, names, providers []string) []*proc {
	t.Helper()
	ps := make([]*proc, len(names))
	var join []string
	bin := testenv.BuildMxgrid(t)
	for i, name := range names {
		ps[i] = &proc{bin: bin, name: name, provider: providers[i],
			http:   fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
			smtp:   fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
			gossip: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		}
		join = append(join, ps[i].gossip)
	}
	for _, p := range ps {
		dir := t.TempDir()
		p.config = filepath.Join(dir, "mxgrid.yaml")
		p.logPath = filepath.Join(dir, "stderr.log")
		cfg := fmt.Sprintf(`node: {name: %s, provider: %s, region: %s-1}
smtp: {listen: "%s", hostname: %s.test, shutdown_grace: 2s}
http: {listen: "127.0.0.1:0", management_listen: "%s"}
data_dir: %s
cluster:
  bind: "%s"
  join: ["%s"]
  secret_key: %s
  profile: %s
`, p.name, p.provider, p.provider, p.smtp, p.name, p.http, filepath.Join(dir, "data"), p.gossip,
			strings.Join(join, `", "`), gossipKey, profile)
		if err := os.WriteFile(p.config, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, p := range ps {
			p.kill()
			if t.Failed() {
				b, _ := os.ReadFile(p.logPath)
				t.Logf("stderr of %s:\n%s", p.name, tail(string(b), 40))
			}
		}
	})
	return ps
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (p *proc) start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, "serve", "-config", p.config)
	p.cmd.Stderr, p.cmd.Stdout = logf, logf
	// The kernel kills the node if the test binary dies (e.g. -timeout).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func() { p.cmd.Wait(); logf.Close(); close(p.exited) }()
}

// kill is kill -9: no leave, no drain.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

type apiMember struct {
	Name     string
	State    string
	Provider string
	Ready    bool
	Leader   bool
}

type apiStatus struct {
	Leader  string
	Summary struct{ Text string }
	Members map[string]apiMember
}

var client = &http.Client{Timeout: 2 * time.Second}

func (p *proc) status() (apiStatus, error) {
	var raw struct {
		Leader    string
		Summary   struct{ Text string }
		Providers []struct{ Members []apiMember }
	}
	resp, err := client.Get("http://" + p.http + "/api/v1/cluster")
	if err != nil {
		return apiStatus{}, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return apiStatus{}, err
	}
	s := apiStatus{Leader: raw.Leader, Summary: raw.Summary, Members: map[string]apiMember{}}
	for _, g := range raw.Providers {
		for _, m := range g.Members {
			s.Members[m.Name] = m
		}
	}
	return s, nil
}

// waitAll polls every proc's API until cond holds for all of them, and
// returns how long it took.
func waitAll(t testing.TB, within time.Duration, what string, ps []*proc, cond func(apiStatus) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		okAll := true
		var last string
		for _, p := range ps {
			s, err := p.status()
			if err != nil || !cond(s) {
				okAll = false
				last = fmt.Sprintf("%s: %+v %v", p.name, s, err)
				break
			}
		}
		if okAll {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("not within %v: %s (last: %s)", within, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func allAliveReady(n int) func(apiStatus) bool {
	return func(s apiStatus) bool {
		ready := 0
		for _, m := range s.Members {
			if m.State == "alive" && m.Ready {
				ready++
			}
		}
		return ready == n
	}
}

func TestProcessesFailoverLAN(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	detect := failover(t, "lan", 10*time.Second)
	t.Logf("lan: both survivors saw the killed node dead %v after kill -9", detect.Round(10*time.Millisecond))
}

// The WAN profile takes about 40 s to declare a node dead; this measures it.
func TestProcessesFailoverWAN(t *testing.T) {
	if testing.Short() || os.Getenv("MXGRID_TEST_WAN") == "" {
		t.Skip("takes over a minute; set MXGRID_TEST_WAN=1 to measure the wan profile")
	}
	detect := failover(t, "wan", 60*time.Second)
	t.Logf("wan: both survivors saw the killed node dead %v after kill -9", detect.Round(10*time.Millisecond))
}

// failover forms a 3-provider cluster, kills the leader with SIGKILL,
// checks both survivors see it dead within bound and agree on one new
// leader, restarts it and checks it rejoins and leads again. It returns the
// detection time.
func failover(t *testing.T, profile string, bound time.Duration) time.Duration {
	ps := newProcs(t, profile, []string{"a", "b", "c"}, []string{"hetzner", "ovh", "scaleway"})
	for _, p := range ps {
		p.start(t)
	}
	formed := waitAll(t, 30*time.Second, "3 nodes alive and ready everywhere", ps, allAliveReady(3))
	t.Logf("%s: cluster formed in %v", profile, formed.Round(10*time.Millisecond))
	waitAll(t, 5*time.Second, "a leads, seen by all", ps, func(s apiStatus) bool {
		return s.Leader == "a" && s.Summary.Text == "3 providers, 3/3 nodes ready"
	})
	if profile == "lan" {
		measureBandwidth(t, ps)
	}

	a, survivors := ps[0], ps[1:]
	a.kill()
	detect := waitAll(t, bound, "survivors see a dead", survivors, func(s apiStatus) bool {
		return s.Members["a"].State == "dead"
	})
	waitAll(t, 2*time.Second, "exactly one new leader, b", survivors, func(s apiStatus) bool {
		n := 0
		for _, m := range s.Members {
			if m.Leader {
				n++
			}
		}
		return s.Leader == "b" && n == 1 && s.Summary.Text == "3 providers, 2/3 nodes ready"
	})

	a.start(t)
	waitAll(t, 30*time.Second, "a rejoined and leads again", ps, func(s apiStatus) bool {
		return allAliveReady(3)(s) && s.Leader == "a"
	})

	// SIGTERM: drain, leave, exit; the others list it as left, not dead.
	c := ps[2]
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		c.cmd = nil
	case <-time.After(20 * time.Second):
		t.Fatal("c did not exit within 20 s of SIGTERM")
	}
	waitAll(t, 5*time.Second, "a and b list c as left", ps[:2], func(s apiStatus) bool {
		return s.Members["c"].State == "left" && s.Summary.Text == "2 providers, 2/2 nodes ready"
	})
	return detect
}

// measureBandwidth reports each node's gossip traffic over 15 s of a quiet
// 3-node cluster, from the counting transport's metric.
func measureBandwidth(t *testing.T, ps []*proc) {
	const window = 15 * time.Second
	before := make([]float64, len(ps))
	for i, p := range ps {
		before[i] = gossipBytes(t, p)
	}
	time.Sleep(window)
	for i, p := range ps {
		d := gossipBytes(t, p) - before[i]
		t.Logf("lan: gossip of %s: %.0f bytes/s (in+out, encrypted)", p.name, d/window.Seconds())
	}
}

func gossipBytes(t testing.TB, p *proc) float64 {
	return metricSum(t, p, "mxgrid_cluster_gossip_bytes_total{")
}

// metricSum adds up the node's series whose exposition line starts with
// prefix (a metric name and its opening brace).
func metricSum(t testing.TB, p *proc, prefix string) float64 {
	t.Helper()
	sum, _, err := testenv.MetricSum(client, "http://"+p.http+"/metrics", prefix)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	return sum
}
