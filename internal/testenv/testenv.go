// Package testenv gives integration tests the real services they need
// (memcached, PostgreSQL, clamd, chromium, postfix's smtp-sink/smtp-source)
// and a few helpers (free ports, repository root, training corpus).
//
// scripts/test.sh (`make test`) starts one shared, throwaway instance of each
// service on loopback and exports its address in a MXGRID_TEST_* variable. The
// accessors here read those variables. When a variable is unset the test is
// skipped with a hint, except in CI (CI=true), where a missing service is a
// failure: CI must never go green by skipping everything.
//
// Rules for tests:
//   - Never stop, restart or flush the shared services: other packages' tests
//     run against them in parallel. A test that injects a failure (clamd or
//     memcached going away mid-test) starts its own instance with StartClamd or
//     StartMemcached and stops that one.
//   - Use PostgresDB for a private database per test instead of creating tables
//     in the shared mxgrid_test database.
//   - Use keys or names that include the test name in shared memcached.
package testenv

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Environment variables exported by scripts/test.sh.
const (
	EnvMemcached   = "MXGRID_TEST_MEMCACHED"    // host:port of the shared memcached
	EnvPostgresDSN = "MXGRID_TEST_POSTGRES_DSN" // DSN of database mxgrid_test, user postgres, trust auth
	EnvClamd       = "MXGRID_TEST_CLAMD"        // tcp://host:port of the shared clamd
	EnvClamdConf   = "MXGRID_TEST_CLAMD_CONF"   // clamd.conf of the shared clamd (informational)
	EnvClamdBin    = "MXGRID_TEST_CLAMD_BIN"    // clamd binary, used by StartClamd
	EnvClamdDB     = "MXGRID_TEST_CLAMD_DB"     // signature directory (testdata/clamav), used by StartClamd
	EnvMemcacheBin = "MXGRID_TEST_MEMCACHED_BIN"
	EnvChromium    = "MXGRID_TEST_CHROMIUM"
	EnvSMTPSink    = "MXGRID_TEST_SMTP_SINK"
	EnvSMTPSource  = "MXGRID_TEST_SMTP_SOURCE"
	EnvSwaks       = "MXGRID_TEST_SWAKS"
	EnvCorpus      = "MXGRID_CORPUS" // training corpus directory (holds ham/ and spam/)
)

// modulePath identifies this repository's go.mod in RepoRoot.
const modulePath = "github.com/mxgrid/mxgrid"

// InCI reports whether the tests run in CI (CI=true, as CI services set it).
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// unavailable skips the test, or fails it in CI, because what is missing.
// hint says how to provide it.
func unavailable(t testing.TB, what, hint string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s not available in CI (CI=true): %s", what, hint)
		return
	}
	t.Skipf("%s not available: %s", what, hint)
}

// fromEnv returns the value of the environment variable key, or reports what
// as unavailable.
func fromEnv(t testing.TB, key, what string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		unavailable(t, what, "run scripts/test.sh or set "+key)
	}
	return v
}

// executable returns the path in key after checking it can be run.
func executable(t testing.TB, key, what string) string {
	t.Helper()
	p := fromEnv(t, key, what)
	if p == "" {
		return ""
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		// Set but wrong is a broken setup, not a missing optional tool.
		t.Fatalf("%s=%q is not an executable file (stat error: %v)", key, p, err)
		return ""
	}
	return p
}

// Memcached returns host:port of the shared memcached.
func Memcached(t testing.TB) string {
	t.Helper()
	return fromEnv(t, EnvMemcached, "memcached")
}

// PostgresDSN returns the DSN of the shared database mxgrid_test. Prefer
// PostgresDB, which gives the test a database of its own.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	return fromEnv(t, EnvPostgresDSN, "postgres")
}

// Clamd returns the shared clamd's address as exported: "tcp://127.0.0.1:PORT".
// ClamdAddr returns the same without the scheme, ready for net.Dial.
func Clamd(t testing.TB) string {
	t.Helper()
	return fromEnv(t, EnvClamd, "clamd")
}

// ClamdAddr returns host:port of the shared clamd.
func ClamdAddr(t testing.TB) string {
	t.Helper()
	v := Clamd(t)
	if v == "" {
		return ""
	}
	addr, ok := strings.CutPrefix(v, "tcp://")
	if _, _, err := net.SplitHostPort(addr); !ok || err != nil {
		t.Fatalf("%s=%q: want tcp://host:port", EnvClamd, v)
		return ""
	}
	return addr
}

// Chromium returns the path of the chromium binary (run it with --no-sandbox as root).
func Chromium(t testing.TB) string {
	t.Helper()
	return executable(t, EnvChromium, "chromium")
}

// SMTPSink returns the path of postfix's smtp-sink (needs `-u postfix` as root).
func SMTPSink(t testing.TB) string {
	t.Helper()
	return executable(t, EnvSMTPSink, "smtp-sink")
}

// SMTPSource returns the path of postfix's smtp-source.
func SMTPSource(t testing.TB) string {
	t.Helper()
	return executable(t, EnvSMTPSource, "smtp-source")
}

// Swaks returns the path of swaks.
func Swaks(t testing.TB) string {
	t.Helper()
	return executable(t, EnvSwaks, "swaks")
}

// FreePort returns a port on 127.0.0.1, free for TCP and UDP a moment ago,
// for external processes that need a port number (prefer listening on
// 127.0.0.1:0 yourself when the code under test accepts a listener).
//
// It lies below Linux's ephemeral range (ip_local_port_range), as
// scripts/test.sh's ports do. A port the kernel hands out there can be
// taken, between this call and the process binding it, as the source port
// of any outgoing connection, and thousands are made while the suite runs
// (TestChaos lost its gossip port that way). For a server a test stops and
// starts again it matters more: while the server is down, a client
// retrying it can be given that very port as its own source port and
// connect to itself (TCP simultaneous open), holding the port so the
// server cannot bind it again.
//
// A port is handed out once per test process: picked at random, two calls
// for one configuration (a node's SMTP, HTTP and gossip ports) could draw
// the same free port, which the node then refused as two listeners on one
// address.
func FreePort(t testing.TB) int {
	t.Helper()
	low, span := belowEphemeral()
	for range 50 {
		port := low + rand.IntN(span)
		handedOut.Lock()
		taken := handedOut.ports[port]
		handedOut.Unlock()
		if taken {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		// Free for UDP too: memberlist binds both protocols on one number.
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			handedOut.Lock()
			taken = handedOut.ports[port]
			handedOut.ports[port] = true
			handedOut.Unlock()
			if !taken {
				return port
			}
		}
	}
	t.Fatal("FreePort: no port below the ephemeral range free for both TCP and UDP")
	return 0
}

// handedOut holds the ports FreePort returned in this process.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// belowEphemeral is the range FreePort picks from: from 20000 up to the
// ephemeral range's start (32768 by default), as in scripts/test.sh.
func belowEphemeral() (low, span int) {
	low, span = 20000, 12768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return low, span
	}
	if f := strings.Fields(string(b)); len(f) == 2 {
		if first, err := strconv.Atoi(f[0]); err == nil && first > low+1000 {
			span = first - low
		}
	}
	return low, span
}

// RefusingAddr returns a 127.0.0.1 address that refuses connections for the
// rest of the test: a customer server that is down. Its port is held by a
// socket bound but never listening, so no other test's listener can be
// given it meanwhile (a stopped listener's port can be, and the "down"
// server then answers).
func RefusingAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
}

// BuildMxgrid builds the mxgrid binary into the test's temporary directory,
// for tests that run real node processes.
func BuildMxgrid(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mxgrid")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/mxgrid/mxgrid/cmd/mxgrid").CombinedOutput()
	if err != nil {
		t.Fatalf("go build mxgrid: %v\n%s", err, out)
	}
	return bin
}

// RepoRoot returns the directory holding this module's go.mod, found by walking
// up from the working directory (go test runs in the package directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := findRepoRoot()
	if err != nil {
		t.Fatalf("RepoRoot: %v", err)
	}
	return root
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && isOurModule(string(b)) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod for module " + modulePath + " above the working directory")
		}
		dir = parent
	}
}

func isOurModule(gomod string) bool {
	for _, line := range strings.Split(gomod, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == modulePath
		}
	}
	return false
}

// SharedCorpus returns the training corpus directory (with ham/ and spam/):
// $MXGRID_CORPUS if set, else <repo>/../shared/corpus/train (where CI puts it).
// Skips when absent, except in CI, where it fails.
func SharedCorpus(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv(EnvCorpus); dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Fatalf("%s=%q is not a directory", EnvCorpus, dir)
			return ""
		}
		return dir
	}
	dir := filepath.Join(RepoRoot(t), "..", "shared", "corpus", "train")
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return filepath.Clean(dir)
	}
	unavailable(t, "training corpus", "set "+EnvCorpus+" or put it at ../shared/corpus/train beside the repository")
	return ""
}

// ClamdTestString is matched by the MxGrid.Test.String signature of
// testdata/clamav (reported as "MxGrid.Test.String.UNOFFICIAL FOUND").
const ClamdTestString = "MXGRID-TEST-SIGNATURE-7E3B1D"

// EICAR returns the 68-byte EICAR antivirus test file. It is assembled at run
// time so that neither the source nor the compiled test binaries contain it
// (desktop virus scanners would quarantine them).
func EICAR() []byte {
	parts := []string{`X5O!P%@AP[4\PZX54(P^)7CC)7}$`, "EICAR-STANDARD-", "ANTIVIRUS-TEST-FILE!", `$H+H*`}
	return []byte(strings.Join(parts, ""))
}
