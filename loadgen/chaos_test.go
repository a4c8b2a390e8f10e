package loadgen_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/loadgen"
)

// The chaos test runs three real `mxgrid serve` processes and a sink process
// on loopback and sends them mail like an MTA while one node is killed with
// SIGKILL and restarted and the customer's server (the sink) is down for
// 10 s. It proves the before-queue contract end to end: everything answered
// 250 arrived, everything answered 4xx was retried until it arrived, and a
// duplicate happens only where the sender lost the connection after sending
// the whole message.

const (
	defaultChaosMessages = 20000
	chaosSessions        = 50
	// chaosDeadline bounds the load run; the whole test also waits for
	// processes to start and stop. At ~1,000 messages/s on 2 cores the
	// full count takes about 20 s plus the 10 s outage.
	chaosDeadline = 4 * time.Minute
	sinkOutage    = 10 * time.Second
)

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes and sends thousands of messages")
	}
	messages := defaultChaosMessages
	if v := os.Getenv("MXGRID_CHAOS_MESSAGES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("MXGRID_CHAOS_MESSAGES=%q: want a number >= 100", v)
		}
		messages = n
	}
	bin := testenv.BuildMxgrid(t)
	dir := t.TempDir()

	report := filepath.Join(dir, "sink.ids")
	sinkAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	sink := &proc{name: "sink", logPath: filepath.Join(dir, "sink.log"),
		args: []string{bin, "loadgen", "sink", "--listen", sinkAddr, "--report", report, "--grace", "5s"}}
	sink.start(t)
	waitSMTP(t, sink, sinkAddr)

	nodes := make([]*proc, 3)
	var gossip []string
	for range nodes {
		gossip = append(gossip, fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)))
	}
	for i := range nodes {
		p := &proc{name: fmt.Sprintf("node-%d", i), gossip: gossip[i],
			smtp: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
			logPath: filepath.Join(dir, fmt.Sprintf("node-%d.log", i))}
		cfg := filepath.Join(dir, p.name+".yaml")
		body := fmt.Sprintf(`node: {name: %s, provider: chaos%d}
log: {level: warn}
data_dir: %s
smtp: {listen: "%s", hostname: %s.test, shutdown_grace: 5s}
http: {listen: "127.0.0.1:0", management_listen: "%s"}
cluster: {bind: "%s", join: ["%s"], insecure_no_key: true}
domains:
  - {name: example.org, route: "%s", tls: none}
`, p.name, i, filepath.Join(dir, p.name), p.smtp, p.name, p.http, gossip[i], strings.Join(gossip, `", "`), sinkAddr)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		p.args = []string{bin, "serve", "--config", cfg}
		p.start(t)
		nodes[i] = p
	}
	var targets []string
	for _, p := range nodes {
		waitSMTP(t, p, p.smtp)
		targets = append(targets, p.smtp)
	}

	// Faults are timed by progress, so they land inside the run whatever
	// the machine's speed: the node dies at 20 %, the sink at 50 %, each
	// on its own so a slow node restart cannot push the outage past the
	// end of the run.
	prog := &progress{done: make(chan struct{})}
	cfg := loadgen.DefaultConfig()
	cfg.Targets = targets
	cfg.Sessions = chaosSessions
	cfg.Messages = messages
	cfg.OnProgress = func(final int) { prog.final.Store(int64(final)) }
	faults := make(chan string, 2)
	go func() { faults <- killNode(t, messages, prog, nodes[1]) }()
	go func() { faults <- stopSink(t, messages, prog, sink, sinkAddr) }()

	ctx, cancel := context.WithTimeout(context.Background(), chaosDeadline)
	defer cancel()
	res, err := loadgen.Run(ctx, cfg)
	close(prog.done)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case fault := <-faults:
			if fault != "" {
				t.Fatal(fault)
			}
		case <-time.After(time.Minute):
			t.Fatal("fault injection did not finish")
		}
	}
	var out strings.Builder
	res.Print(&out)

	counts, total, err := loadgen.ReadReport(report)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summarize()
	a := res.Audit(counts)
	summary := fmt.Sprintf("chaos run (%d messages, %d sessions, 3 nodes, node-1 killed -9 and restarted, sink down %v):\n%s"+
		"sink: %d arrivals, %d distinct ids; lost %d, duplicates %d (uncertain attempts %d), unexplained %d, foreign %d\n",
		messages, chaosSessions, sinkOutage, out.String(),
		total, len(counts), len(a.Lost), a.Duplicates, s.Uncertain, len(a.Unexplained), a.Foreign)
	t.Log(summary)
	// go test shows a passing test's log only with -v; the test script
	// prints this file so CI's output has the counts either way.
	if path := os.Getenv("MXGRID_CHAOS_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(summary), 0o644); err != nil {
			t.Errorf("write chaos report: %v", err)
		}
	}
	if s.Delivered != messages || s.Pending != 0 || s.Rejected != 0 {
		t.Errorf("delivered %d of %d (pending %d, rejected %d) within %v", s.Delivered, messages, s.Pending, s.Rejected, chaosDeadline)
	}
	if len(a.Lost) > 0 {
		t.Errorf("%d messages answered 250 never arrived, e.g. %v", len(a.Lost), a.Lost[:min(5, len(a.Lost))])
	}
	if len(a.Unexplained) > 0 {
		t.Errorf("%d messages arrived more often than connection losses explain, e.g. %v", len(a.Unexplained), a.Unexplained[:min(5, len(a.Unexplained))])
	}
	if a.Foreign != 0 || len(a.ArrivedButRejected) != 0 {
		t.Errorf("sink got %d foreign messages and %d that were rejected", a.Foreign, len(a.ArrivedButRejected))
	}
	// Both faults must have been felt, or the test proved nothing.
	if s.Tempfails == 0 || res.Replies["451 4.4.1"] == 0 {
		t.Errorf("no 4xx seen during the sink outage (replies %v)", res.Replies)
	}
	if n := deliveredSinceStart(t, nodes[1]); n == 0 {
		t.Errorf("the restarted node delivered nothing after its restart")
	}
}

// progress is how many messages are final, and whether the run is over.
type progress struct {
	final atomic.Int64
	done  chan struct{}
}

// reached waits until share of total messages are final; false when the
// run ended first.
func (p *progress) reached(share float64, total int) bool {
	for {
		if float64(p.final.Load()) >= share*float64(total) {
			return true
		}
		select {
		case <-p.done:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// killNode kills node with SIGKILL at 20 % and starts it again a second
// later. It returns a failure description or "".
func killNode(t *testing.T, total int, p *progress, node *proc) string {
	if !p.reached(0.2, total) {
		return "the run ended before 20 % of the messages were final"
	}
	node.signal(syscall.SIGKILL)
	release, err := holdPorts(node.smtp, node.http, node.gossip)
	if err != nil {
		return "hold the killed node's ports: " + err.Error()
	}
	time.Sleep(time.Second)
	release()
	node.start(t)
	if err := smtpReady(node.smtp, 30*time.Second); err != nil {
		return "restarted node: " + err.Error()
	}
	return ""
}

// stopSink stops the sink at 50 % (SIGTERM: transactions in flight finish)
// and starts it again after the outage.
func stopSink(t *testing.T, total int, p *progress, sink *proc, addr string) string {
	if !p.reached(0.5, total) {
		return "the run ended before 50 % of the messages were final"
	}
	sink.signal(syscall.SIGTERM)
	release, err := holdPorts(addr)
	if err != nil {
		return "hold the sink's port: " + err.Error()
	}
	time.Sleep(sinkOutage)
	release()
	sink.start(t)
	if err := smtpReady(addr, 30*time.Second); err != nil {
		return "restarted sink: " + err.Error()
	}
	return ""
}

// holdPorts keeps a stopped server's ports, TCP and UDP (memberlist binds
// both), from every other process of the parallel test run until release,
// so that the server can bind them again: each is bound, with SO_REUSEADDR
// as Go's listeners set it, but not listening, so a client still finds the
// server down (connection refused), as it would without the hold.
func holdPorts(addrs ...string) (release func(), err error) {
	var fds []int
	release = func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}
	for _, addr := range addrs {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil || !ap.Addr().Is4() {
			release()
			return nil, fmt.Errorf("%q: not an IPv4 address and port", addr)
		}
		for _, typ := range []int{syscall.SOCK_STREAM, syscall.SOCK_DGRAM} {
			fd, err := syscall.Socket(syscall.AF_INET, typ|syscall.SOCK_CLOEXEC, 0)
			if err == nil {
				fds = append(fds, fd)
				if err = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err == nil {
					err = syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
				}
			}
			if err != nil {
				release()
				return nil, fmt.Errorf("%s: %w", addr, err)
			}
		}
	}
	return release, nil
}

// proc is one child process, restartable with the same arguments.
type proc struct {
	name, smtp, http, gossip, logPath string
	args                              []string
	cmd                               *exec.Cmd
	exited                            chan struct{}
}

func (p *proc) start(t *testing.T) {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Error(err)
		return
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The kernel kills the child if the test binary dies (e.g. -timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Error(err)
		return
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			t.Logf("log of %s:\n%s", p.name, tail(string(b), 30))
		}
	})
}

// signal sends sig and waits for the process to exit.
func (p *proc) signal(sig syscall.Signal) {
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func waitSMTP(t *testing.T, p *proc, addr string) {
	t.Helper()
	if err := smtpReady(addr, 60*time.Second); err != nil {
		b, _ := os.ReadFile(p.logPath)
		t.Fatalf("%s: %v\n%s", p.name, err, tail(string(b), 30))
	}
}

// smtpReady waits until addr greets with 220.
func smtpReady(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Write([]byte("QUIT\r\n"))
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "220") {
				return nil
			}
			err = fmt.Errorf("greeting %q: %v", line, rerr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v: %w", addr, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deliveredSinceStart reads the node's 2xx transactions counter, which a
// restarted process starts again from zero.
func deliveredSinceStart(t *testing.T, p *proc) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Errorf("metrics of %s: %v", p.name, err)
		return 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("metrics of %s: %v", p.name, err)
		return 0
	}
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "mxgrid_smtp_transactions_total{") && strings.Contains(line, `class="2xx"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += int(v)
		}
	}
	return n
}
