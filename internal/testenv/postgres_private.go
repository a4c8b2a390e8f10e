package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PrivatePostgres is a PostgreSQL server owned by one test, which may stop
// and start it to inject an outage (never do that to the shared server).
type PrivatePostgres struct {
	// DSN of database postgres, user postgres, trust auth.
	DSN  string
	t    testing.TB
	bin  string
	data string
	log  string
	port int
	sock string
}

// StartPostgres initialises and starts a private PostgreSQL on a free
// loopback port; it is stopped in t.Cleanup. Skipped (failed in CI) when the
// server binaries are not installed.
func StartPostgres(t testing.TB) *PrivatePostgres {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		unavailable(t, "PostgreSQL server binaries", "apt-get install postgresql (scripts/test.sh does)")
		return nil
	}
	// Not t.TempDir: its parents are 0700 root-owned, and the server runs
	// as the postgres user, which must traverse the path.
	dir, err := os.MkdirTemp("", "mxgrid-pg-")
	if err != nil {
		t.Fatalf("StartPostgres: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("StartPostgres: %v", err)
	}
	p := &PrivatePostgres{t: t, bin: bin, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "postgres.log"), sock: filepath.Join(dir, "sock")}
	for _, d := range []string{p.data, p.sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatalf("StartPostgres: %v", err)
		}
	}
	if err := os.WriteFile(p.log, nil, 0o644); err != nil {
		t.Fatalf("StartPostgres: %v", err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("StartPostgres: running as root needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, f := range []string{p.data, p.sock, p.log} {
			if err := os.Chown(f, uid, gid); err != nil {
				t.Fatalf("StartPostgres: %v", err)
			}
		}
	}
	if out, err := p.run(2*time.Minute, "initdb", "-D", p.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("StartPostgres: initdb: %v\n%s", err, out)
	}
	p.port = FreePort(t)
	p.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", p.port)
	p.Start()
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(p.data, "postmaster.pid")); err == nil {
			p.run(30*time.Second, "pg_ctl", "-D", p.data, "-m", "immediate", "-w", "-t", "20", "stop")
		}
	})
	return p
}

// Start starts the (stopped) server on its port and waits until it accepts
// connections.
func (p *PrivatePostgres) Start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", p.port, p.sock)
	if out, err := p.run(time.Minute, "pg_ctl", "-D", p.data, "-l", p.log, "-w", "-t", "30", "-o", opts, "start"); err != nil {
		p.t.Fatalf("PrivatePostgres start: %v\n%s\nlog:\n%s", err, out, tail(p.log, 20))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, p.DSN)
		if err == nil {
			conn.Close(ctx)
			cancel()
			return
		}
		cancel()
		if time.Now().After(deadline) {
			p.t.Fatalf("PrivatePostgres not accepting connections: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server (fast mode: clients are disconnected at once) and
// waits until the port is closed.
func (p *PrivatePostgres) Stop() {
	p.t.Helper()
	if out, err := p.run(time.Minute, "pg_ctl", "-D", p.data, "-m", "fast", "-w", "-t", "30", "stop"); err != nil {
		p.t.Fatalf("PrivatePostgres stop: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)), time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			p.t.Fatalf("PrivatePostgres still listening after stop")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run runs one of the server binaries, as the postgres user when we are
// root (the server refuses to run as root).
func (p *PrivatePostgres) run(timeout time.Duration, tool string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	path := filepath.Join(p.bin, tool)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	return cmd.CombinedOutput()
}

// pgBinDir finds the newest Debian server binary directory, or initdb on PATH.
func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}
