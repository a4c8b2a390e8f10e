package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Readiness bounds for private daemons. clamd with the 3 test signatures
// starts in about 0.1 s and memcached at once; the margins cover a loaded
// 2-core CI machine.
const (
	clamdStartTimeout     = 30 * time.Second
	memcachedStartTimeout = 10 * time.Second
	stopTimeout           = 10 * time.Second
)

// daemon is a child process owned by one test.
type daemon struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	stopSig syscall.Signal // sent by stop; SIGKILL is sent after stopTimeout anyway
	exited  chan struct{}  // closed when the process has exited
	waitErr error          // valid after exited is closed
	once    sync.Once
}

// startDaemon runs bin with args, output to logPath, and registers its stop in
// t.Cleanup.
func startDaemon(t testing.TB, name, logPath, bin string, args ...string) *daemon {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s (%s): %v", name, bin, err)
	}
	logf.Close() // the child holds its own copy
	d := &daemon{name: name, cmd: cmd, logPath: logPath, stopSig: syscall.SIGTERM, exited: make(chan struct{})}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(d.stop)
	return d
}

// stop terminates the daemon and waits for it; it is idempotent.
func (d *daemon) stop() {
	d.once.Do(func() {
		select {
		case <-d.exited:
			return
		default:
		}
		_ = d.cmd.Process.Signal(d.stopSig)
		select {
		case <-d.exited:
		case <-time.After(stopTimeout):
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
	})
}

// errExited marks a daemon that died before becoming ready, typically
// because another process took its port in the meantime; worth a retry on
// another port.
var errExited = errors.New("exited before becoming ready")

// waitReady polls check until it succeeds, the daemon exits, or timeout. On
// failure the daemon is stopped and the error carries the end of its log.
func (d *daemon) waitReady(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		lastErr := check()
		if lastErr == nil {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("%s %w (%v, last check: %v); log %s:\n%s", d.name, errExited, d.waitErr, lastErr, d.logPath, tail(d.logPath, 20))
		default:
		}
		if time.Now().After(deadline) {
			d.stop()
			return fmt.Errorf("%s not ready after %v: %v; log %s:\n%s", d.name, timeout, lastErr, d.logPath, tail(d.logPath, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startRetrying runs start on a fresh free port until it succeeds, retrying
// (a few times) only when the daemon died early: FreePort's port can be taken
// by someone else before the daemon binds it.
func startRetrying(t testing.TB, start func(addr string) (func(), error)) (string, func()) {
	t.Helper()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
		var stop func()
		if stop, err = start(addr); err == nil {
			return addr, stop
		}
		if !errors.Is(err, errExited) {
			break
		}
	}
	t.Fatalf("%v", err)
	return "", func() {}
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// findBin returns the binary from the environment variable key, else from
// PATH, else from the Debian location. Debian keeps clamd in /usr/sbin, which
// is not on every user's PATH.
func findBin(key, name, debianPath string) (string, error) {
	if p := os.Getenv(key); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(debianPath); err == nil {
		return debianPath, nil
	}
	return "", fmt.Errorf("%s not found (set %s, or install it: scripts/test.sh does)", name, key)
}

// StartClamd starts a private clamd on a free loopback port with the
// testdata/clamav signatures, waits until it answers PING, and returns its
// host:port and a stop function (idempotent, also run by t.Cleanup). Use it for
// tests that make clamd fail; never stop the shared one.
func StartClamd(t testing.TB) (addr string, stop func()) {
	t.Helper()
	if !clamdAvailable(t) {
		return "", func() {}
	}
	return startRetrying(t, func(addr string) (func(), error) { return startClamd(t, addr) })
}

// StartClamdAt is StartClamd on a given host:port, e.g. to bring a stopped
// private clamd back on the address the code under test already uses.
func StartClamdAt(t testing.TB, addr string) (string, func()) {
	t.Helper()
	if !clamdAvailable(t) {
		return "", func() {}
	}
	stop, err := startClamd(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	return addr, stop
}

// clamdAvailable skips (or fails, in CI) when there is no clamd binary.
func clamdAvailable(t testing.TB) bool {
	t.Helper()
	if _, err := findBin(EnvClamdBin, "clamd", "/usr/sbin/clamd"); err != nil {
		unavailable(t, "clamd", err.Error())
		return false
	}
	return true
}

func startClamd(t testing.TB, addr string) (func(), error) {
	t.Helper()
	bin, err := findBin(EnvClamdBin, "clamd", "/usr/sbin/clamd")
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("StartClamdAt(%q): %v", addr, err)
	}
	db := os.Getenv(EnvClamdDB)
	if db == "" {
		db = filepath.Join(RepoRoot(t), "testdata", "clamav")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "clamd.conf")
	// Same settings as scripts/test.sh. No User line: clamd runs as whoever
	// starts it. Foreground so that this process owns it and can stop it.
	confText := strings.Join([]string{
		"Foreground yes",
		"DatabaseDirectory " + db,
		"TCPSocket " + port,
		"TCPAddr " + host,
		"LogFile " + filepath.Join(dir, "clamd.log"),
		"TemporaryDirectory " + dir,
		"StreamMaxLength 25M",
		"MaxThreads 4",
		"SelfCheck 0",
		"ScanMail yes",
		"ScanArchive yes",
		"ScanHTML yes",
		"Bytecode no",
	}, "\n") + "\n"
	if err := os.WriteFile(conf, []byte(confText), 0o644); err != nil {
		t.Fatalf("StartClamd: %v", err)
	}
	d := startDaemon(t, "clamd", filepath.Join(dir, "clamd.out"), bin, "-c", conf)
	d.logPath = filepath.Join(dir, "clamd.log") // clamd's own log says why it failed
	if err := d.waitReady(clamdStartTimeout, func() error { return clamdPing(addr, time.Second) }); err != nil {
		return nil, err
	}
	return d.stop, nil
}

// clamdPing sends zPING and expects PONG, the clamd readiness check.
func clamdPing(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("zPING\x00")); err != nil {
		return err
	}
	reply, err := bufio.NewReader(c).ReadString(0)
	if err != nil {
		return fmt.Errorf("reading PING reply: %w", err)
	}
	if reply = strings.TrimSuffix(reply, "\x00"); reply != "PONG" {
		return fmt.Errorf("PING reply %q, want PONG", reply)
	}
	return nil
}

// StartMemcached starts a private memcached on a free loopback port, waits
// until it answers `version`, and returns its host:port and a stop function
// (idempotent, also run by t.Cleanup). Use it for tests that make memcached
// fail; never stop or flush the shared one.
func StartMemcached(t testing.TB) (addr string, stop func()) {
	t.Helper()
	if !memcachedAvailable(t) {
		return "", func() {}
	}
	return startRetrying(t, func(addr string) (func(), error) { return startMemcached(t, addr) })
}

// StartMemcachedAt is StartMemcached on a given host:port (e.g. a restart).
func StartMemcachedAt(t testing.TB, addr string) (string, func()) {
	t.Helper()
	if !memcachedAvailable(t) {
		return "", func() {}
	}
	stop, err := startMemcached(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	return addr, stop
}

// memcachedAvailable skips (or fails, in CI) when there is no memcached binary.
func memcachedAvailable(t testing.TB) bool {
	t.Helper()
	if _, err := findBin(EnvMemcacheBin, "memcached", "/usr/bin/memcached"); err != nil {
		unavailable(t, "memcached", err.Error())
		return false
	}
	return true
}

func startMemcached(t testing.TB, addr string) (func(), error) {
	t.Helper()
	bin, err := findBin(EnvMemcacheBin, "memcached", "/usr/bin/memcached")
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("StartMemcachedAt(%q): %v", addr, err)
	}
	args := []string{"-l", host, "-p", port, "-U", "0", "-m", "16"}
	if os.Geteuid() == 0 {
		// memcached refuses to run as root without -u.
		u := "memcache"
		if _, err := user.Lookup(u); err != nil {
			u = "nobody"
		}
		args = append(args, "-u", u)
	}
	d := startDaemon(t, "memcached", filepath.Join(t.TempDir(), "memcached.log"), bin, args...)
	// SIGKILL: memcached spends about 0.7 s in its SIGTERM shutdown, and a
	// crash is what failure-injection tests want to see anyway.
	d.stopSig = syscall.SIGKILL
	if err := d.waitReady(memcachedStartTimeout, func() error { return memcachedVersion(addr, time.Second) }); err != nil {
		return nil, err
	}
	return d.stop, nil
}

// memcachedVersion sends `version` and expects `VERSION x`, the readiness check.
func memcachedVersion(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading version reply: %w", err)
	}
	if !strings.HasPrefix(line, "VERSION ") {
		return errors.New("version reply " + strconv.Quote(line))
	}
	return nil
}

// Process is a program a test or benchmark runs, such as an mxgrid node.
type Process struct{ d *daemon }

// StartProcess runs bin with args, output to logPath. It is stopped
// (SIGTERM, SIGKILL after a grace) by Stop or at the end of the test.
func StartProcess(t testing.TB, name, logPath, bin string, args ...string) *Process {
	return &Process{d: startDaemon(t, name, logPath, bin, args...)}
}

// Stop terminates the process and waits for it; it is idempotent.
func (p *Process) Stop() { p.d.stop() }

// Pid is the process id, for /proc.
func (p *Process) Pid() int { return p.d.cmd.Process.Pid }

// Log is the end of the process's output.
func (p *Process) Log(lines int) string { return tail(p.d.logPath, lines) }
