//go:build compose

package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/loadgen"
)

// The stack's published ports (docker-compose.yml), all on loopback.
var (
	composeSMTP   = map[string]string{"node-a": "127.0.0.1:2525", "node-b": "127.0.0.1:2526", "node-c": "127.0.0.1:2527"}
	composeHTTP   = map[string]string{"node-a": "127.0.0.1:8025", "node-b": "127.0.0.1:8026", "node-c": "127.0.0.1:8027"}
	mailpitAPI    = "http://127.0.0.1:8030"
	prometheusAPI = "http://127.0.0.1:9090"
)

// composeProject is the compose project name the test owns: it removes
// whatever that project has before and after.
const composeProject = "mxgrid-ci"

// TestComposeStack runs docker-compose.yml for real (scripts/compose-test.sh
// prepares the images): every container up, mail through each node reaches
// Mailpit, a virus and a spam are refused, Prometheus scrapes every node
// and answers the dashboard's queries, a node killed or restarted under
// load loses no accepted message, and `down -v` leaves nothing behind.
func TestComposeStack(t *testing.T) {
	root := testenv.RepoRoot(t)
	st := &stack{t: t, root: root}
	st.compose("down", "-v", "--remove-orphans")
	t.Cleanup(func() {
		if t.Failed() {
			st.logs()
		}
		st.compose("down", "-v", "--remove-orphans")
	})

	start := time.Now()
	st.mustCompose("up", "-d", "--no-build")
	for node := range composeHTTP {
		st.waitReady(node, 3*time.Minute)
	}
	t.Logf("stack up and every node ready in %s", time.Since(start).Round(time.Second))
	if t.Failed() {
		return
	}

	t.Run("containers", func(t *testing.T) {
		out := st.docker("ps", "-a", "--filter", "label=com.docker.compose.project="+composeProject,
			"--format", "{{.Label \"com.docker.compose.service\"}}\t{{.State}}\t{{.Status}}")
		t.Logf("containers:\n%s", out)
		running := 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Split(line, "\t")
			switch {
			case len(f) < 3:
				t.Errorf("unexpected line %q", line)
			case f[0] == "secrets":
				if f[1] != "exited" || !strings.Contains(f[2], "Exited (0)") {
					t.Errorf("secrets: %s %s, want exited 0", f[1], f[2])
				}
			case f[1] == "running":
				running++
			default:
				t.Errorf("%s is %s (%s)", f[0], f[1], f[2])
			}
		}
		// Three nodes, PostgreSQL, memcached, ClamAV, Mailpit, Prometheus.
		if running != 8 {
			t.Errorf("%d containers running, want 8", running)
		}
	})

	// down -v gave every node a fresh volume, initialised from the image's
	// /var/lib/mxgrid: a node that had to restrict it means the image
	// makes it readable by others, and a warning every operator sees.
	t.Run("fresh data volumes are private", func(t *testing.T) {
		for node := range composeHTTP {
			out, err := st.compose("logs", "--no-color", node)
			if err != nil {
				t.Fatalf("compose logs %s: %v\n%s", node, err, out)
			}
			if strings.Contains(out, "readable by other users") {
				t.Errorf("%s restricted its data directory at first start:\n%s", node, out)
			}
		}
	})

	t.Run("mail through each node reaches mailpit", func(t *testing.T) {
		tag := fmt.Sprintf("compose-%d", time.Now().UnixNano())
		want := map[string]bool{}
		for node, addr := range composeSMTP {
			subject := tag + " via " + node
			msg := "From: <alice@sender.test>\r\nTo: <bob@example.test>\r\nSubject: " + subject +
				"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
				"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@sender.test>\r\n\r\nHello through " + node + ".\r\n"
			if code, err := sendMail(addr, "alice@sender.test", "bob@example.test", []byte(msg)); err != nil || code != 250 {
				t.Errorf("%s: %d %v, want 250", node, code, err)
				continue
			}
			want[subject] = true
		}
		waitFor(t, time.Minute, func() (bool, string) {
			got := map[string]bool{}
			for _, m := range mailpitMessages(t) {
				if want[m.Subject] {
					got[m.Subject] = true
				}
			}
			return len(got) == len(want), fmt.Sprintf("mailpit has %d of %v", len(got), want)
		})
		t.Logf("mailpit received %d messages, one through each node", len(want))
	})

	t.Run("virus refused with 554", func(t *testing.T) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		part, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/octet-stream"}, "Content-Disposition": {`attachment; filename="eicar.com"`}})
		part.Write(testenv.EICAR())
		mw.Close()
		msg := "From: <alice@sender.test>\r\nTo: <bob@example.test>\r\nSubject: eicar\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=" + mw.Boundary() + "\r\n\r\n" + body.String()
		code, err := sendMail(composeSMTP["node-a"], "alice@sender.test", "bob@example.test", []byte(msg))
		t.Logf("EICAR: %d %v", code, err)
		if code != 554 {
			t.Errorf("EICAR answered %d (%v), want 554", code, err)
		}
	})

	t.Run("spam refused with 550", func(t *testing.T) {
		files, _ := filepath.Glob(filepath.Join(root, "testdata", "corpus", "spam", "*.eml"))
		codes := map[int]int{}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			code, _ := sendMail(composeSMTP["node-b"], "offers@spam-sender.test", "bob@example.test", raw)
			codes[code]++
		}
		t.Logf("corpus spam (%d messages) answered: %v", len(files), codes)
		if codes[550] == 0 {
			t.Errorf("no corpus spam refused with 550: %v", codes)
		}
	})

	t.Run("prometheus scrapes every node", func(t *testing.T) {
		waitFor(t, 2*time.Minute, func() (bool, string) {
			up, all := prometheusTargets(t)
			return up == len(composeHTTP) && all == len(composeHTTP), fmt.Sprintf("%d of %d targets up, want %d", up, all, len(composeHTTP))
		})
		up, _ := prometheusTargets(t)
		t.Logf("prometheus: %d mxgrid targets up (found through the nodes' service discovery)", up)
	})

	t.Run("dashboard queries answer", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "dashboards", "mxgrid.json"))
		if err != nil {
			t.Fatal(err)
		}
		var dash any
		if err := json.Unmarshal(b, &dash); err != nil {
			t.Fatal(err)
		}
		exprs := queries(dash)
		// Give Prometheus two scrapes of the traffic above.
		time.Sleep(35 * time.Second)
		withData := 0
		var empty []string
		for _, e := range exprs {
			n, err := promQuery(grafanaToPromQL(e))
			if err != nil {
				t.Errorf("query %q: %v", e, err)
				continue
			}
			if n > 0 {
				withData++
			} else {
				empty = append(empty, e)
			}
		}
		t.Logf("dashboard: %d queries, %d with data; empty: %q", len(exprs), withData, empty)
		// Error and fault panels are legitimately empty on a healthy stack;
		// traffic, scan and cluster panels are not.
		if withData*2 < len(exprs) {
			t.Errorf("only %d of %d dashboard queries return data", withData, len(exprs))
		}
	})

	t.Run("node killed under load loses nothing", func(t *testing.T) {
		var killed atomic.Bool
		res := st.load(t, 600, func(final int) {
			if final == 150 && killed.CompareAndSwap(false, true) {
				// SIGKILL: no graceful shutdown, like a host that dies.
				go func() {
					if out, err := st.compose("kill", "-s", "SIGKILL", "node-b"); err != nil {
						t.Errorf("kill node-b: %v\n%s", err, out)
					}
				}()
			}
		})
		if !killed.Load() {
			t.Fatal("the load ended before node-b was killed")
		}
		st.mustCompose("up", "-d", "--no-build", "node-b")
		st.waitReady("node-b", 2*time.Minute)
		st.audit(t, res)
	})

	t.Run("rolling restart under load loses nothing", func(t *testing.T) {
		done := make(chan *loadgen.Result, 1)
		go func() { done <- st.load(t, 1500, nil) }()
		for _, node := range []string{"node-a", "node-b", "node-c"} {
			time.Sleep(2 * time.Second)
			begin := time.Now()
			st.mustCompose("restart", "-t", "40", node)
			st.waitReady(node, 2*time.Minute)
			t.Logf("%s restarted and ready in %s", node, time.Since(begin).Round(100*time.Millisecond))
		}
		st.audit(t, <-done)
	})

	t.Run("down -v leaves nothing", func(t *testing.T) {
		st.mustCompose("down", "-v", "--remove-orphans")
		filter := "label=com.docker.compose.project=" + composeProject
		for _, kind := range []string{"container", "volume", "network"} {
			args := []string{kind, "ls", "-q", "--filter", filter}
			if kind == "container" {
				args = []string{"ps", "-aq", "--filter", filter}
			}
			if out := strings.TrimSpace(st.docker(args...)); out != "" {
				t.Errorf("%ss left after down -v: %s", kind, out)
			}
		}
	})
}

type stack struct {
	t    *testing.T
	root string
}

// composeCmd is MXGRID_COMPOSE ("docker-compose" by default, or
// "docker compose").
func (s *stack) composeCmd(args ...string) *exec.Cmd {
	c := strings.Fields(os.Getenv("MXGRID_COMPOSE"))
	if len(c) == 0 {
		c = []string{"docker-compose"}
	}
	c = append(c, "-f", filepath.Join(s.root, "docker-compose.yml"), "-p", composeProject)
	cmd := exec.Command(c[0], append(c[1:], args...)...)
	cmd.Dir = s.root
	return cmd
}

func (s *stack) compose(args ...string) (string, error) {
	out, err := s.composeCmd(args...).CombinedOutput()
	return string(out), err
}

func (s *stack) mustCompose(args ...string) {
	s.t.Helper()
	if out, err := s.compose(args...); err != nil {
		s.t.Fatalf("compose %v: %v\n%s", args, err, out)
	}
}

func (s *stack) docker(args ...string) string {
	out, err := exec.Command(dockerBin(), args...).CombinedOutput()
	if err != nil {
		s.t.Errorf("docker %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// dockerBin prefers Debian's client, as scripts/docker-cli.sh does.
func dockerBin() string {
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker"
	}
	return "docker"
}

func (s *stack) logs() {
	out, _ := s.compose("logs", "--no-color", "--tail", "40")
	s.t.Logf("compose logs:\n%s", out)
}

// waitReady polls a node's /readyz until it answers 200.
func (s *stack) waitReady(node string, limit time.Duration) {
	s.t.Helper()
	waitFor(s.t, limit, func() (bool, string) {
		resp, err := http.Get("http://" + composeHTTP[node] + "/readyz")
		if err != nil {
			return false, node + ": " + err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200, fmt.Sprintf("%s: %s %s", node, resp.Status, b)
	})
}

// load sends n synthetic messages through all three nodes like an MTA
// (4xx and refused connections are retried, on another node) and returns
// once each is final.
func (s *stack) load(t *testing.T, n int, progress func(int)) *loadgen.Result {
	cfg := loadgen.DefaultConfig()
	for _, node := range []string{"node-a", "node-b", "node-c"} {
		cfg.Targets = append(cfg.Targets, composeSMTP[node])
	}
	cfg.Sessions, cfg.Messages, cfg.Size = 8, n, 2<<10
	cfg.To = "bob@example.test"
	cfg.IOTimeout = 20 * time.Second
	cfg.OnProgress = progress
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// audit waits until every accepted message is in Mailpit (relaying is
// asynchronous for queued mail), then checks loadgen's records against it.
func (s *stack) audit(t *testing.T, res *loadgen.Result) {
	t.Helper()
	sum := res.Summarize()
	var a loadgen.Audit
	waitFor(t, 2*time.Minute, func() (bool, string) {
		a = res.Audit(loadgenCounts(t))
		return len(a.Lost) == 0, fmt.Sprintf("%d accepted messages not in mailpit yet", len(a.Lost))
	})
	var buf bytes.Buffer
	res.Print(&buf)
	t.Logf("load: %s\nlost %d, duplicates %d, unexplained %d, arrived-but-rejected %d",
		buf.String(), len(a.Lost), a.Duplicates, len(a.Unexplained), len(a.ArrivedButRejected))
	pending := 0
	for _, r := range res.Records {
		if r.Outcome != loadgen.Delivered {
			pending++
		}
	}
	if pending != 0 || len(a.Lost) != 0 || len(a.Unexplained) != 0 || len(a.ArrivedButRejected) != 0 {
		t.Errorf("%d not delivered, lost %v, unexplained %v, arrived but rejected %v (summary %+v)",
			pending, a.Lost, a.Unexplained, a.ArrivedButRejected, sum)
	}
}

type mailpitMessage struct {
	MessageID string
	Subject   string
}

// mailpitMessages lists every message Mailpit holds.
func mailpitMessages(t *testing.T) []mailpitMessage {
	t.Helper()
	var all []mailpitMessage
	for start := 0; ; {
		var page struct {
			Total    int
			Messages []mailpitMessage
		}
		getJSON(t, fmt.Sprintf("%s/api/v1/messages?start=%d&limit=1000", mailpitAPI, start), &page)
		all = append(all, page.Messages...)
		start += len(page.Messages)
		if len(page.Messages) == 0 || start >= page.Total {
			return all
		}
	}
}

// loadgenCounts counts Mailpit's copies of each loadgen message, by the id
// in its Message-ID (<id@loadgen.test>).
func loadgenCounts(t *testing.T) map[string]int {
	counts := map[string]int{}
	for _, m := range mailpitMessages(t) {
		if id, ok := strings.CutSuffix(m.MessageID, "@loadgen.test"); ok {
			counts[id]++
		}
	}
	return counts
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// prometheusTargets counts the active mxgrid targets and those up.
func prometheusTargets(t *testing.T) (up, all int) {
	var r struct {
		Data struct {
			ActiveTargets []struct {
				Labels map[string]string
				Health string
			}
		}
	}
	getJSON(t, prometheusAPI+"/api/v1/targets?state=active", &r)
	for _, tg := range r.Data.ActiveTargets {
		if tg.Labels["job"] != "mxgrid" {
			continue
		}
		all++
		if tg.Health == "up" {
			up++
		}
	}
	return up, all
}

var (
	grafanaLabelValues = regexp.MustCompile(`^label_values\(\s*([^,)]+?)\s*(?:,\s*\w+\s*)?\)$`)
	grafanaRange       = regexp.MustCompile(`\$__(?:rate_interval|interval|range)\b`)
	grafanaVar         = regexp.MustCompile(`\$\w+`)
)

// grafanaToPromQL replaces Grafana's variables the way the dashboard's
// defaults do: every node, a one-minute window.
func grafanaToPromQL(e string) string {
	if m := grafanaLabelValues.FindStringSubmatch(e); m != nil {
		e = m[1]
	}
	e = grafanaRange.ReplaceAllString(e, "1m")
	return grafanaVar.ReplaceAllString(e, ".*")
}

// promQuery runs an instant query and returns how many series it found.
func promQuery(q string) (int, error) {
	resp, err := http.Get(prometheusAPI + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Error  string
		Data   struct {
			Result json.RawMessage
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s: %s", r.Status, r.Error)
	}
	var series []json.RawMessage
	if err := json.Unmarshal(r.Data.Result, &series); err != nil {
		return 1, nil // a scalar
	}
	return len(series), nil
}

// sendMail runs one SMTP transaction and returns the code that ended it.
func sendMail(addr, from, to string, msg []byte) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	c, err := smtp.NewClient(conn, "localhost")
	if err != nil {
		return code(err), err
	}
	defer c.Close()
	if err := c.Hello("client.sender.test"); err != nil {
		return code(err), err
	}
	if err := c.Mail(from); err != nil {
		return code(err), err
	}
	if err := c.Rcpt(to); err != nil {
		return code(err), err
	}
	w, err := c.Data()
	if err != nil {
		return code(err), err
	}
	if _, err := w.Write(msg); err != nil {
		return code(err), err
	}
	if err := w.Close(); err != nil {
		return code(err), err
	}
	c.Quit()
	return 250, nil
}

func code(err error) int {
	if e, ok := err.(*textproto.Error); ok {
		return e.Code
	}
	return 0
}

// waitFor polls cond every half second until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", limit, why)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
