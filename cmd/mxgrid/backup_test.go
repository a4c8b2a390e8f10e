package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/store"
)

const backupOpToken = "operator-token-for-the-backup-tests-0123456789abcdef"

// spamCheck scores every message far above the reject score, so each one
// sent is refused and becomes an event.
type spamCheck struct{}

func (spamCheck) Name() string { return "fixed" }
func (spamCheck) Check(context.Context, *scanner.Envelope, *scanner.Message) (scanner.Result, error) {
	return scanner.Result{Symbols: []scanner.Symbol{{Name: "FIXED_SPAM", Score: 50}}}, nil
}

// call does one HTTP request as the operator and returns status, body and ETag.
func call(t *testing.T, method, url string, body any) (int, []byte, string) {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+backupOpToken)
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header.Get("ETag")
}

func create(t *testing.T, n *nodetest.Node, path string, body any) int64 {
	t.Helper()
	code, b, _ := call(t, "POST", "http://"+n.HTTPAddr()+path, body)
	var out struct{ ID int64 }
	if code != 201 || json.Unmarshal(b, &out) != nil {
		t.Fatalf("POST %s: %d %s", path, code, b)
	}
	return out.ID
}

// smtpTry runs MAIL and RCPT (and DATA when the RCPT is accepted and data
// is set) and returns the RCPT and DATA reply codes.
func smtpTry(addr, to string, data bool) (rcpt, dataCode int, err error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := textproto.NewConn(conn)
	step := func(line string) (int, error) {
		if line != "" {
			if err := c.PrintfLine("%s", line); err != nil {
				return 0, err
			}
		}
		code, _, err := c.ReadResponse(0)
		if code != 0 {
			err = nil
		}
		return code, err
	}
	for _, line := range []string{"", "EHLO client.test", "MAIL FROM:<spammer@sender.test>"} {
		if _, err := step(line); err != nil {
			return 0, 0, err
		}
	}
	if rcpt, err = step("RCPT TO:<" + to + ">"); err != nil || rcpt != 250 || !data {
		return rcpt, 0, err
	}
	if _, err := step("DATA"); err != nil {
		return rcpt, 0, err
	}
	w := c.DotWriter()
	fmt.Fprintf(w, "From: spammer@sender.test\r\nTo: %s\r\nSubject: cheap\r\n\r\nBuy now.\r\n", to)
	w.Close()
	dataCode, err = step("")
	c.PrintfLine("QUIT")
	return rcpt, dataCode, err
}

// seedEvents stores 40 spam events from public addresses in dataDir's
// store before a node starts there.
func seedEvents(t *testing.T, dataDir string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(store.DefaultConfig(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.MigrateEvents(ctx); err != nil {
		t.Fatal(err)
	}
	evs := make([]store.StoredEvent, 40)
	for i := range evs {
		evs[i] = store.StoredEvent{Time: time.Now().Add(-time.Duration(i) * time.Minute), IP: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}),
			Node: "seed", Domain: "split.example", Verdict: "spam", Action: "reject", Score: 50, Symbols: []string{"FIXED_SPAM"},
			Located: true, Country: "DE", CountryName: "Germany", City: "Berlin", Lat: 52.5, Lon: 13.4, AccuracyKM: 10}
	}
	if err := st.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
}

// storedMap reads the global map generation from dataDir's store.
func storedMap(t *testing.T, dataDir string) (store.MapRecord, bool) {
	t.Helper()
	st, err := store.Open(store.DefaultConfig(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec, ok, err := st.GetMap(context.Background(), "global")
	if err != nil {
		return rec, false // the node has not created the table yet
	}
	return rec, ok
}

func countEvents(t *testing.T, dataDir string) int64 {
	t.Helper()
	st, err := store.Open(store.DefaultConfig(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.CountEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBackupWhileServingRestoresIntoAFreshNode: `mxgrid backup`, run as its
// own process while a node relays mail and records spam events, makes a
// file that `mxgrid restore` puts into an empty data directory; a new node
// started on it accepts the same domains (with their per-recipient routes)
// and serves the same map, byte for byte.
func TestBackupWhileServingRestoresIntoAFreshNode(t *testing.T) {
	tokFile := filepath.Join(t.TempDir(), "operator.token")
	if err := os.WriteFile(tokFile, []byte(backupOpToken), 0o600); err != nil {
		t.Fatal(err)
	}
	nodeConfig := func(dataDir string) config.Config {
		cfg := nodetest.Config(t)
		if dataDir != "" {
			cfg.DataDir = dataDir
		}
		cfg.Admin.OperatorTokenFile = tokFile
		// A day-long period: neither node regenerates the map during the
		// test (unless it straddles midnight UTC), so both serve the one
		// generation made on request below.
		cfg.Map.Interval = 24 * time.Hour
		return cfg
	}
	suite, onprem := nodetest.StartSink(t), nodetest.StartSink(t)
	cfgA := nodeConfig("")
	seedEvents(t, cfgA.DataDir)
	a := nodetest.Start(t, cfgA, []scanner.Stage{{Check: spamCheck{}}})
	// The node, its cluster's leader, draws its first map at start from
	// the seeded events.
	mapURL := "http://" + a.HTTPAddr() + "/map.json"
	var wantMap []byte
	var wantETag string
	deadline := time.Now().Add(20 * time.Second)
	for {
		rec, ok := storedMap(t, cfgA.DataDir)
		var code int
		code, wantMap, wantETag = call(t, "GET", mapURL, nil)
		if ok && code == 200 && bytes.Equal(wantMap, rec.JSON) {
			if rec.Events != 40 {
				t.Fatalf("the first map aggregates %d events, want the 40 seeded", rec.Events)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node A stored no map (or serves another) within 20 s: %d %q", code, wantETag)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res := create(t, a, "/api/v1/resellers", map[string]any{"name": "R"})
	cust := create(t, a, "/api/v1/customers", map[string]any{"name": "C", "reseller_id": res})
	create(t, a, "/api/v1/domains", map[string]any{"name": "split.example", "customer_id": cust, "route": suite.Addr, "tls": "none",
		"routes": []map[string]any{{"recipients": []string{"bob"}, "route": onprem.Addr}}})

	// Spam flows for the whole backup: every message is refused and
	// recorded as an event.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var refused atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if rc, dc, err := smtpTry(a.SMTPAddr(), "alice@split.example", true); err == nil && rc == 250 && dc == 550 {
				refused.Add(1)
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	deadline = time.Now().Add(20 * time.Second)
	for countEvents(t, cfgA.DataDir) < 45 {
		if time.Now().After(deadline) {
			t.Fatal("no spam events stored within 20 s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	cfgFile := filepath.Join(t.TempDir(), "mxgrid.yaml")
	if err := os.WriteFile(cfgFile, []byte("data_dir: "+cfgA.DataDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "mxgrid.backup")
	events, refusedBefore := countEvents(t, cfgA.DataDir), refused.Load()
	out, err := exec.Command(binary, "backup", "-config", cfgFile, "-out", backup).CombinedOutput()
	if err != nil {
		t.Fatalf("mxgrid backup: %v\n%s", err, out)
	}
	during := refused.Load() - refusedBefore
	// The recorder writes in batches: events keep arriving after the copy.
	deadline = time.Now().Add(20 * time.Second)
	for countEvents(t, cfgA.DataDir) <= events {
		if time.Now().After(deadline) {
			t.Fatal("no events written after the backup began")
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if during == 0 {
		t.Fatal("no spam was refused while the backup ran")
	}
	t.Logf("%s(%d spam messages refused while it ran)", out, during)

	dataB := filepath.Join(t.TempDir(), "restored")
	out, err = exec.Command(binary, "restore", "-data-dir", dataB, backup).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "restored ") {
		t.Fatalf("mxgrid restore: %v\n%s", err, out)
	}
	// A second restore into the now populated directory is refused.
	if out, err := exec.Command(binary, "restore", "-data-dir", dataB, backup).CombinedOutput(); err == nil || !strings.Contains(string(out), "already exists") {
		t.Fatalf("restore over a database: %v\n%s", err, out)
	}

	b := nodetest.Start(t, nodeConfig(dataB), []scanner.Stage{})
	if rc, dc, err := smtpTry(b.SMTPAddr(), "alice@split.example", true); err != nil || rc != 250 || dc != 250 {
		t.Fatalf("restored node, alice: RCPT %d DATA %d, %v", rc, dc, err)
	}
	if rc, dc, err := smtpTry(b.SMTPAddr(), "bob@split.example", true); err != nil || rc != 250 || dc != 250 {
		t.Fatalf("restored node, bob: RCPT %d DATA %d, %v", rc, dc, err)
	}
	if len(suite.Messages()) != 1 || len(onprem.Messages()) != 1 {
		t.Fatalf("after the restore, the suite got %d messages and on-prem %d; want one each (the routes survived)", len(suite.Messages()), len(onprem.Messages()))
	}
	if rc, _, err := smtpTry(b.SMTPAddr(), "x@unknown.example", false); err != nil || rc != 550 {
		t.Fatalf("restored node, unknown domain: RCPT %d, %v", rc, err)
	}
	// The restored node serves the stored generation once its map
	// scheduler has loaded it (its first tick, right at start).
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, gotMap, gotETag := call(t, "GET", "http://"+b.HTTPAddr()+"/map.json", nil)
		if code == 200 && gotETag == wantETag && bytes.Equal(gotMap, wantMap) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restored node's map.json: %d, ETag %q, want %q (bodies equal: %v)", code, gotETag, wantETag, bytes.Equal(gotMap, wantMap))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBackupCommandErrors: the commands' refusals are one clear line.
func TestBackupCommandErrors(t *testing.T) {
	pg := filepath.Join(t.TempDir(), "pg.yaml")
	os.WriteFile(pg, []byte("store: {driver: postgres, dsn: \"postgres://u@127.0.0.1/db\"}\n"), 0o600)
	junk := filepath.Join(t.TempDir(), "junk.backup")
	os.WriteFile(junk, []byte("not a backup\n"), 0o600)
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"backup without -out", []string{"backup"}, 2, "usage: mxgrid backup"},
		{"backup of postgres", []string{"backup", "-config", pg, "-out", filepath.Join(empty, "x")}, 1, "pg_dump"},
		{"backup without a database", []string{"backup", "-out", filepath.Join(empty, "x")}, 1, "no database at"},
		{"restore without a file", []string{"restore"}, 2, "usage: mxgrid restore"},
		{"restore of junk", []string{"restore", "-data-dir", empty, junk}, 1, "not an mxgrid backup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(binary, tc.args...)
			cmd.Dir = empty // the default data_dir, ./data, must not exist
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q; want exit %d and one line with %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Fatalf("the failed commands left %d files behind", len(ents))
	}
}
