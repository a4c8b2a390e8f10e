package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/memlimit"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mxgrid-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "mxgrid")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build mxgrid: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mxgrid.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBadConfigExitsWithOneClearError(t *testing.T) {
	dir := t.TempDir()
	// started is a config that passes Validate, so New runs, and logs
	// errors only, so the one on stderr is the one that stops it; smtp
	// and cluster hold more keys of those sections. Every port is the
	// kernel's choice: a node on the default gossip port must not decide
	// which error a test sees.
	started := func(smtp, cluster, section string) string {
		return fmt.Sprintf("smtp: {listen: '127.0.0.1:0', %s}\nhttp: {listen: '127.0.0.1:0', management_listen: '127.0.0.1:0', public_url: 'https://filter.example'}\ncluster: {bind: '127.0.0.1:0', %s}\ndata_dir: %s\nlog: {level: error}\n%s\n", smtp, cluster, t.TempDir(), section)
	}
	tests := []struct {
		name, config, want string
	}{
		{"missing file", "", "no such file or directory"},
		{"a directory", dir, "is a directory"},
		// Read whole, it ran the node out of memory.
		{"endless file", "/dev/zero", "/dev/zero: over 4 MiB, too large for a config file"},
		{"unknown key", "smtp:\n  listen: 127.0.0.1:0\n  colour: blue\n", `unknown key "smtp.colour"`},
		{"bad listen address", "smtp:\n  listen: not-an-address\n", "smtp.listen:"},
		{"bad route", "domains:\n  - name: example.org\n    route: mail.example.org\n", "domains[0].route:"},
		{"key given twice", "smtp:\n  listen: 127.0.0.1:0\n  listen: 127.0.0.1:1\n", "smtp.listen: given twice"},
		{"wrong type", "smtp:\n  max_recipients: lots\n", "smtp.max_recipients: cannot unmarshal"},
		// Files the node reads as it starts, not by Validate.
		{"model file a directory", started("", "", "scanner: {model_file: "+dir+"}"), "scanner.model_file: "},
		{"model file not a model", started("", "", "scanner: {model_file: /dev/zero}"), "scanner.model_file: load model /dev/zero: not an mxgrid model file"},
		// Secret files were read whole, until the node ran out of memory.
		{"endless operator token file", started("", "", "admin: {operator_token_file: /dev/zero}"), "admin.operator_token_file: /dev/zero: over 64 KiB"},
		{"endless session key file", started("", "", "panel: {session_key_file: /dev/zero}"), "panel.session_key_file: /dev/zero: over 64 KiB"},
		{"endless gossip key file", started("", "secret_key_file: /dev/zero", ""), "secret_key_file: /dev/zero: over 64 KiB"},
		{"endless TLS certificate", started("tls_cert: /dev/zero, tls_key: /dev/zero", "", ""), "smtp.tls_cert: /dev/zero: over 64 KiB"},
		{"TLS key a directory", started("tls_cert: /dev/null, tls_key: "+dir, "", ""), "smtp.tls_key: read " + dir + ": is a directory"},
		{"endless smarthost password file", started("", "", "notify: {smarthost: 'smtp.example:587', username: digests, password_file: /dev/zero}"), "notify.password_file: /dev/zero: over 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "absent.yaml")
			if filepath.IsAbs(tt.config) {
				path = tt.config
			} else if tt.config != "" {
				path = writeConfig(t, tt.config)
			}
			expectOneError(t, tt.want, "serve", "--config", path)
		})
	}
}

// TestServeRefusesJunkArguments: serve takes no arguments but its flags;
// `mxgrid serve mxgrid.yaml` started a default node without reading the
// file.
func TestServeRefusesJunkArguments(t *testing.T) {
	path := writeConfig(t, "smtp: {listen: '127.0.0.1:0'}\n")
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"config file without --config", []string{path}},
		{"junk after the flags", []string{"--config", path, "junk"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			expectOneError(t, "is not a flag", append([]string{"serve"}, tt.args...)...)
		})
	}
}

// expectOneError runs the binary, which must exit non-zero with one line
// on stderr containing want. A node that starts instead is killed, and
// keeps its default ./data out of the source tree.
func expectOneError(t *testing.T, want string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = t.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("exit = %v, want non-zero", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Fatalf("stderr = %q, want one line containing %q", stderr.String(), want)
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "mxgrid ") {
		t.Fatalf("version: %q, %v", out, err)
	}
	if err := exec.Command(binary, "no-such-command").Run(); err == nil {
		t.Fatal("unknown command exited 0")
	}
	for _, arg := range []string{"-x", "--json", "extra"} {
		var exit *exec.ExitError
		if out, err := exec.Command(binary, "version", arg).CombinedOutput(); !errors.As(err, &exit) || !strings.Contains(string(out), strings.TrimLeft(arg, "-")) {
			t.Errorf("version %s: %q, %v; want refused, naming it", arg, out, err)
		}
	}
}

// TestServeDeliversAndDrainsOnSIGTERM runs the real binary: mail is
// delivered, and a SIGTERM in the middle of a transaction lets it finish
// (the sender gets the customer's 250) before the process exits 0.
func TestServeDeliversAndDrainsOnSIGTERM(t *testing.T) {
	sink := nodetest.StartSink(t)
	srv := startServe(t, sink.Addr, "10s")
	cmd, addr, conn, c, logs := srv.cmd, srv.addr, srv.conn, srv.c, srv.logs
	expect := srv.expect
	w := bufio.NewWriter(conn)
	w.WriteString("Subject: first half\r\n\r\nbody line one\r\n")
	w.Flush()

	// SIGTERM arrives while the body is still being sent.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// A new connection is no longer accepted.
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		nc.SetDeadline(time.Now().Add(2 * time.Second))
		if line, err := bufio.NewReader(nc).ReadString('\n'); err == nil && strings.HasPrefix(line, "220") {
			t.Errorf("new connection greeted during shutdown: %q", line)
		}
		nc.Close()
	}
	w.WriteString("body line two\r\n.\r\n")
	w.Flush()
	expect(250)
	// The next transaction is turned away with 421.
	c.PrintfLine("MAIL FROM:<a@sender.test>")
	if code, _, _ := c.ReadResponse(0); code != 421 {
		t.Errorf("MAIL during shutdown got %d, want 421", code)
	}

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("process did not exit after SIGTERM\n%s", logs.String())
	}
	msgs := sink.Messages()
	if len(msgs) != 1 || !bytes.Contains(msgs[0].Data, []byte("body line two")) {
		t.Fatalf("sink got %d messages, want the whole in-flight message", len(msgs))
	}
}

// servedSession is a `mxgrid serve` process for example.org, relaying to
// route, and one SMTP session with it in the middle of DATA.
type servedSession struct {
	cmd    *exec.Cmd
	addr   string
	conn   net.Conn
	c      *textproto.Conn
	logs   *bytes.Buffer
	expect func(want int) string
	send   func(want int, line string) string
}

func startServe(t *testing.T, route, grace string) *servedSession {
	t.Helper()
	smtpPort, httpPort, gossipPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	path := writeConfig(t, fmt.Sprintf(`
node: {name: bin-test, provider: test}
smtp: {listen: "127.0.0.1:%d", hostname: mx.test, shutdown_grace: %s}
http: {listen: "127.0.0.1:%d", management_listen: "127.0.0.1:0"}
cluster: {bind: "127.0.0.1:%d"}
data_dir: %s
domains:
  - {name: example.org, route: "%s", tls: none}
`, smtpPort, grace, httpPort, gossipPort, t.TempDir(), route))
	s := &servedSession{cmd: exec.Command(binary, "serve", "--config", path), logs: new(bytes.Buffer),
		addr: fmt.Sprintf("127.0.0.1:%d", smtpPort)}
	s.cmd.Stderr = s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		if s.conn, err = net.Dial("tcp", s.addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node did not listen: %v\n%s", err, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { s.conn.Close() })
	s.conn.SetDeadline(time.Now().Add(30 * time.Second))
	s.c = textproto.NewConn(s.conn)
	s.expect = func(want int) string {
		t.Helper()
		code, msg, err := s.c.ReadResponse(want)
		if err != nil {
			t.Fatalf("want %d, got %d %s: %v\n%s", want, code, msg, err, s.logs.String())
		}
		return msg
	}
	s.send = func(want int, line string) string {
		t.Helper()
		s.c.PrintfLine("%s", line)
		return s.expect(want)
	}
	s.expect(220)
	s.send(250, "EHLO client.test")
	s.send(250, "MAIL FROM:<a@sender.test>")
	s.send(250, "RCPT TO:<bob@example.org>")
	s.send(354, "DATA")
	return s
}

// TestSecondSIGTERMEndsTheDrain: an operator (or a supervisor) that
// signals again does not want to wait out smtp.shutdown_grace. The
// first signal's handler stayed installed, so every later SIGTERM or
// Ctrl-C was swallowed and only SIGKILL stopped a draining node.
func TestSecondSIGTERMEndsTheDrain(t *testing.T) {
	sink := nodetest.StartSink(t)
	srv := startServe(t, sink.Addr, "10m")
	srv.conn.Write([]byte("Subject: never finished\r\n\r\nbody\r\n"))
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Draining: new connections are no longer greeted.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		nc, err := net.DialTimeout("tcp", srv.addr, time.Second)
		if err != nil {
			break
		}
		nc.SetDeadline(time.Now().Add(time.Second))
		line, _ := bufio.NewReader(nc).ReadString('\n')
		nc.Close()
		if !strings.HasPrefix(line, "220") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node still greets after SIGTERM\n%s", srv.logs.String())
		}
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("a second SIGTERM did not end a drain of 10m\n%s", srv.logs.String())
	}
	// The unfinished message got no 250 and went nowhere.
	if code, msg, err := srv.c.ReadResponse(250); err == nil {
		t.Errorf("unfinished DATA answered %d %s", code, msg)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Errorf("sink got %d messages", n)
	}
}

// TestServeSetsMemoryLimit: serve keeps the runtime's soft memory limit at
// the node's own heap plus smtp.memory_budget plus the margin, and leaves
// an operator's GOMEMLIMIT as it is.
func TestServeSetsMemoryLimit(t *testing.T) {
	const budget = 96 << 20
	for _, tt := range []struct {
		name     string
		env      []string
		min, max int64
	}{
		{"tuned", nil, budget + memlimit.Margin, budget + memlimit.Margin + 200<<20},
		{"operator's GOMEMLIMIT", []string{"GOMEMLIMIT=1GiB"}, 1 << 30, 1 << 30},
		// The runtime takes an empty GOMEMLIMIT for none; so must serve.
		{"empty GOMEMLIMIT", []string{"GOMEMLIMIT="}, budget + memlimit.Margin, budget + memlimit.Margin + 200<<20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mgmtPort := testenv.FreePort(t)
			path := writeConfig(t, fmt.Sprintf(`
smtp: {listen: "127.0.0.1:0", max_message_bytes: 10485760, memory_budget: %d}
http: {listen: "127.0.0.1:0", management_listen: "127.0.0.1:%d"}
cluster: {bind: "127.0.0.1:0"}
data_dir: %s
`, budget, mgmtPort, t.TempDir()))
			cmd := exec.Command(binary, "serve", "--config", path)
			cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOMEMLIMIT=") }), tt.env...)
			var logs bytes.Buffer
			cmd.Stderr = &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			url := fmt.Sprintf("http://127.0.0.1:%d/metrics", mgmtPort)
			deadline := time.Now().Add(15 * time.Second)
			for {
				v, _, err := testenv.MetricSum(http.DefaultClient, url, "go_gc_gomemlimit_bytes ")
				limit := int64(v)
				if err == nil && limit >= tt.min && limit <= tt.max {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("go_gc_gomemlimit_bytes = %d (%v), want %d to %d\n%s", limit, err, tt.min, tt.max, logs.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// TestBadFlagIsAUsageError: a flag a command lacks, or a flag's bad value,
// exits 2 as every other mistake in the command line does; the commands
// that call no API exited 1, as for a failure of the work itself.
func TestBadFlagIsAUsageError(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "-no-such-flag"}, {"demo", "-interval", "soon"}, {"scan", "-workers", "two"},
		{"train", "-no-such-flag"}, {"eval", "-folds", "x"}, {"keygen", "-no-such-flag"},
		{"health", "-timeout", "x"}, {"backup", "-no-such-flag"}, {"restore", "-no-such-flag"},
		{"version", "-no-such-flag"}, {"token", "create", "-reseller", "abc"},
		{"geoip", "lookup", "-no-such-flag"}, {"geoip", "update", "-no-such-flag"},
		{"map", "rebuild", "-no-such-flag"}, {"loadgen", "-sessions", "x"}, {"loadgen", "sink", "-no-such-flag"},
		{"domain", "list", "-no-such-flag"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("mxgrid %s: exit %d, want 2\n%s", strings.Join(args, " "), code, errOut.String())
		}
	}
}

// TestCommandHelp: -h on a command that takes an action first shows its
// usage and exits 0, as every command's -h does; geoip, map and token
// answered it as a mistake, exit 2.
func TestCommandHelp(t *testing.T) {
	for _, args := range [][]string{
		{"geoip", "-h"}, {"geoip", "--help"}, {"map", "-h"}, {"token", "--help"}, {"token", "help"},
		{"domain", "-h"}, {"messages", "--help"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 0 {
			t.Errorf("mxgrid %s: exit %d, stderr %q; want 0", strings.Join(args, " "), code, errOut.String())
		}
	}
}
