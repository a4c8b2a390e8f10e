package testenv

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/jackc/pgx/v5"
)

// fakeTB records Skip and Fatal instead of stopping the goroutine, so the
// skip-or-fail decision itself can be tested.
type fakeTB struct {
	testing.TB // nil: any method not overridden panics, which is what we want
	skipped    bool
	failed     bool
	msg        string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = true
	f.msg = fmt.Sprintf(format, args...)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = true
	f.msg = fmt.Sprintf(format, args...)
}

func TestUnsetServiceSkipsLocallyAndFailsInCI(t *testing.T) {
	tests := []struct {
		name     string
		ci       string
		value    string
		wantSkip bool
		wantFail bool
	}{
		{name: "local, unset", ci: "", wantSkip: true},
		{name: "CI=false, unset", ci: "false", wantSkip: true},
		{name: "CI=true, unset", ci: "true", wantFail: true},
		{name: "CI=1, unset", ci: "1", wantFail: true},
		{name: "CI=true, set", ci: "true", value: "127.0.0.1:1"},
		{name: "local, set", ci: "", value: "127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			t.Setenv(EnvMemcached, tc.value)
			f := &fakeTB{}
			got := Memcached(f)
			if f.skipped != tc.wantSkip || f.failed != tc.wantFail {
				t.Fatalf("skipped=%v failed=%v (%q), want skipped=%v failed=%v", f.skipped, f.failed, f.msg, tc.wantSkip, tc.wantFail)
			}
			if got != tc.value {
				t.Errorf("Memcached() = %q, want %q", got, tc.value)
			}
			if tc.wantSkip && !strings.Contains(f.msg, "scripts/test.sh") {
				t.Errorf("skip message %q does not say how to get the service", f.msg)
			}
		})
	}
}

func TestClamdAddrParsesURL(t *testing.T) {
	tests := []struct {
		value, want string
		wantFail    bool
	}{
		{value: "tcp://127.0.0.1:3310", want: "127.0.0.1:3310"},
		{value: "127.0.0.1:3310", wantFail: true}, // the scheme is part of the contract
		{value: "tcp://localhost", wantFail: true},
	}
	for _, tc := range tests {
		t.Setenv(EnvClamd, tc.value)
		f := &fakeTB{}
		got := ClamdAddr(f)
		if f.failed != tc.wantFail || (!tc.wantFail && got != tc.want) {
			t.Errorf("ClamdAddr with %s=%q: got %q failed=%v (%s), want %q failed=%v", EnvClamd, tc.value, got, f.failed, f.msg, tc.want, tc.wantFail)
		}
	}
}

func TestExecutableRejectsBadPath(t *testing.T) {
	t.Setenv(EnvSMTPSink, filepath.Join(t.TempDir(), "missing"))
	f := &fakeTB{}
	if got := SMTPSink(f); got != "" || !f.failed {
		t.Errorf("SMTPSink with a missing file: got %q failed=%v, want a failure", got, f.failed)
	}
}

func TestDBName(t *testing.T) {
	a, b := dbName("TestStore/Put-Get"), dbName("TestStore/Put-Get")
	if a == b {
		t.Errorf("two calls gave the same name %q", a)
	}
	if !strings.HasPrefix(a, "t_teststore_put_get_") {
		t.Errorf("dbName = %q, want the sanitized test name as prefix", a)
	}
	long := dbName(strings.Repeat("TestVeryLongName/", 20))
	if len(long) > 63 {
		t.Errorf("len(dbName(long)) = %d, want <= 63", len(long))
	}
	for _, n := range []string{a, long} {
		for _, r := range n {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				t.Errorf("dbName %q has %q", n, r)
			}
		}
	}
}

func TestEICARMatchesSignatureDB(t *testing.T) {
	e := EICAR()
	sum := md5.Sum(e)
	// The .hdb line is MD5:size:name; both must match what EICAR returns.
	hdb, err := os.ReadFile(filepath.Join(RepoRoot(t), "testdata", "clamav", "mxgrid-test.hdb"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s:%d:", hex.EncodeToString(sum[:]), len(e))
	if !strings.HasPrefix(string(hdb), want) {
		t.Errorf("mxgrid-test.hdb = %q, want it to start with %q", hdb, want)
	}
	if len(e) != 68 {
		t.Errorf("len(EICAR()) = %d, want 68", len(e))
	}
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !isOurModule(string(b)) {
		t.Errorf("%s/go.mod is not module %s", root, modulePath)
	}
	if isOurModule("module github.com/mxgrid/mxgrid/other\n") {
		t.Error("isOurModule accepted a different module")
	}
}

func TestFreePort(t *testing.T) {
	low, span := belowEphemeral()
	for range 20 {
		p := FreePort(t)
		// A kernel-chosen port (the ephemeral range) could be taken by an
		// outgoing connection before the process binds it.
		if p < low || p >= low+span {
			t.Fatalf("FreePort() = %d, want one in [%d, %d), below the ephemeral range", p, low, low+span)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("listen on FreePort() %d: %v", p, err)
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("UDP on FreePort() %d: %v", p, err)
		}
		u.Close()
		l.Close()
	}
}

// TestFreePortNeverTwice: 2,000 draws from the ~12,800 ports below the
// ephemeral range repeat one all but surely when drawn independently;
// a node given one port twice refused to start.
func TestFreePortNeverTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 2000 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("FreePort returned %d twice", p)
		}
		seen[p] = true
	}
}

func TestBelowEphemeral(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skip("no /proc ip_local_port_range")
	}
	var first int
	fmt.Sscan(string(b), &first)
	if low, span := belowEphemeral(); low+span > first {
		t.Errorf("belowEphemeral() = [%d, %d), reaches into the ephemeral range from %d", low, low+span, first)
	}
}

func TestSharedCorpus(t *testing.T) {
	dir := SharedCorpus(t)
	for _, sub := range []string{"ham", "spam"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) == 0 {
			t.Errorf("%s/%s is empty", dir, sub)
		}
	}
}

func TestMemcached(t *testing.T) {
	addr := Memcached(t)
	if err := memcachedVersion(addr, 2*time.Second); err != nil {
		t.Fatalf("memcached at %s: %v", addr, err)
	}
	c := memcache.New(addr)
	key := "testenv_" + dbName(t.Name()) // unique: the server is shared
	if err := c.Set(&memcache.Item{Key: key, Value: []byte("v1"), Expiration: 60}); err != nil {
		t.Fatal(err)
	}
	it, err := c.Get(key)
	if err != nil || string(it.Value) != "v1" {
		t.Fatalf("Get(%s) = %v, %v; want v1", key, it, err)
	}
}

func TestPostgres(t *testing.T) {
	dsn := PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var one int
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1 = %d, %v", one, err)
	}
}

func TestPostgresDBIsPrivateAndDropped(t *testing.T) {
	base := PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var names [2]string
	t.Run("create", func(t *testing.T) {
		for i := range names {
			dsn := PostgresDB(t)
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			// Left open on purpose: cleanup must drop the database anyway.
			if err := conn.QueryRow(ctx, "select current_database()").Scan(&names[i]); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				if _, err := conn.Exec(ctx, "create table only_in_first (x int)"); err != nil {
					t.Fatal(err)
				}
				continue
			}
			var n int
			if err := conn.QueryRow(ctx, "select count(*) from pg_tables where tablename = 'only_in_first'").Scan(&n); err != nil || n != 0 {
				t.Errorf("second database sees the first one's table: count=%d err=%v", n, err)
			}
		}
		if names[0] == names[1] || names[0] == "" {
			t.Errorf("database names %q, want two distinct ones", names)
		}
	})

	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left int
	if err := conn.QueryRow(ctx, "select count(*) from pg_database where datname = any($1)", names[:]).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d of %q still exist after the subtest's cleanup", left, names)
	}
}

// clamdScan sends data with INSTREAM and returns clamd's reply without the NUL.
func clamdScan(t *testing.T, addr string, data []byte) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(len(data)))
	msg := append([]byte("zINSTREAM\x00"), size[:]...)
	msg = append(msg, data...)
	msg = append(msg, 0, 0, 0, 0)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	reply, err := bufio.NewReader(c).ReadString(0)
	if err != nil {
		t.Fatalf("INSTREAM reply: %v", err)
	}
	return strings.TrimSuffix(reply, "\x00")
}

// checkSignatures asserts the testdata/clamav signatures are loaded at addr.
func checkSignatures(t *testing.T, addr string) {
	t.Helper()
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"clean", []byte("Subject: hello\r\n\r\nnothing to see\r\n"), "stream: OK"},
		{"test string", []byte("Subject: x\r\n\r\nbody " + ClamdTestString + " more\r\n"), "stream: MxGrid.Test.String.UNOFFICIAL FOUND"},
		{"eicar", EICAR(), "FOUND"},
	}
	for _, tc := range tests {
		got := clamdScan(t, addr, tc.data)
		if !strings.Contains(got, tc.want) || (tc.name == "eicar" && !strings.Contains(got, "MxGrid.Test.EICAR")) {
			t.Errorf("scan %s: clamd said %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestClamd(t *testing.T) {
	addr := ClamdAddr(t)
	if err := clamdPing(addr, 2*time.Second); err != nil {
		t.Fatalf("clamd at %s: %v", addr, err)
	}
	checkSignatures(t, addr)
}

func TestStartClamdStopAndRestart(t *testing.T) {
	addr, stop := StartClamd(t)
	if err := clamdPing(addr, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	checkSignatures(t, addr)

	stop()
	if err := clamdPing(addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("ping after stop: %v, want connection refused", err)
	}
	stop() // idempotent

	again, _ := StartClamdAt(t, addr)
	if again != addr {
		t.Fatalf("StartClamdAt(%s) = %s", addr, again)
	}
	if err := clamdPing(addr, 2*time.Second); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
}

func TestStartMemcachedStopAndRestart(t *testing.T) {
	addr, stop := StartMemcached(t)
	c := memcache.New(addr)
	if err := c.Set(&memcache.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := c.Get("k"); err == nil {
		t.Fatal("Get after stop succeeded")
	}
	StartMemcachedAt(t, addr)
	// A fresh instance: the server is back and empty.
	if _, err := memcache.New(addr).Get("k"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("Get after restart: %v, want cache miss", err)
	}
}

func TestExecutables(t *testing.T) {
	for name, get := range map[string]func(testing.TB) string{
		"smtp-sink":   SMTPSink,
		"smtp-source": SMTPSource,
		"chromium":    Chromium,
	} {
		t.Run(name, func(t *testing.T) {
			p := get(t)
			if !filepath.IsAbs(p) || filepath.Base(p) != name {
				t.Errorf("path %q, want an absolute path to %s", p, name)
			}
		})
	}
	t.Run("chromium runs", func(t *testing.T) {
		out, err := exec.Command(Chromium(t), "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Chromium") {
			t.Errorf("chromium --version: %q, %v", out, err)
		}
	})
}

func TestStartClamdOnTakenPortReportsExit(t *testing.T) {
	if !clamdAvailable(t) {
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = startClamd(t, l.Addr().String())
	if !errors.Is(err, errExited) {
		t.Fatalf("startClamd on a taken port: %v, want errExited", err)
	}
}

func TestStartRetryingRetriesOnlyEarlyExits(t *testing.T) {
	calls := 0
	addr, stop := startRetrying(t, func(string) (func(), error) {
		calls++
		if calls < 3 {
			return nil, errExited
		}
		return func() {}, nil
	})
	if calls != 3 || addr == "" || stop == nil {
		t.Errorf("calls=%d addr=%q, want success on the 3rd attempt", calls, addr)
	}

	f := &fakeTB{}
	calls = 0
	startRetrying(f, func(string) (func(), error) {
		calls++
		return nil, errors.New("bad config")
	})
	if calls != 1 || !f.failed {
		t.Errorf("other error: calls=%d failed=%v, want 1 attempt then failure", calls, f.failed)
	}
}

// RefusingAddr refuses connections, and no listener can take its port.
func TestRefusingAddr(t *testing.T) {
	addr := RefusingAddr(t)
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("dial %s: connected", addr)
	}
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatalf("listen %s: the port was free", addr)
	}
}
