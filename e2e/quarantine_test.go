package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/mxgrid/mxgrid/tracking"
)

const quarantineToken = "quarantine-test-operator-token-0123456789"

// quarantineNode configures a node whose example.org quarantines the tag
// band (nodetest.TagBand, and the extra stages); mutate adjusts it further.
func quarantineNode(t *testing.T, sinkAddr string, mutate func(*config.Config), extra ...scanner.Stage) *nodetest.Node {
	t.Helper()
	tokFile := filepath.Join(t.TempDir(), "op.token")
	if err := os.WriteFile(tokFile, []byte(quarantineToken), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := nodetest.Config(t)
	cfg.Admin.OperatorTokenFile = tokFile
	cfg.Tracking.FlushInterval = 20 * time.Millisecond
	d := nodetest.Domain("example.org", sinkAddr)
	q := tenant.TagQuarantine
	d.Policy.TagAction = &q
	cfg.Domains = append(cfg.Domains, d)
	if mutate != nil {
		mutate(&cfg)
	}
	return nodetest.Start(t, cfg, append([]scanner.Stage{{Check: nodetest.TagBand{}, OnError: scanner.OnErrorAccept}}, extra...))
}

// api calls the admin API as the operator and returns status and body.
func api(t *testing.T, n *nodetest.Node, method, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+n.HTTPAddr()+path, nil)
	req.Header.Set("Authorization", "Bearer "+quarantineToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

const tagBandMessage = "From: x@sender.example\r\nTo: bob@example.org\r\nSubject: Invoice TAGME\r\nMessage-ID: <q1@sender.example>\r\n\r\nPlease pay the attached invoice.\r\n"

// holdOne sends a tag-band message and returns its quarantine id.
func holdOne(t *testing.T, n *nodetest.Node, sink *smtptest.Sink) int64 {
	t.Helper()
	before := len(sink.Messages())
	// go-smtp's client gives no text with a 250; the API shows the item.
	if code, reply := smtptest.Send(t, n.SMTPAddr(), "x@sender.example", "bob@example.org", []byte(tagBandMessage)); code != 250 {
		t.Fatalf("tag-band message: %d %s", code, reply)
	}
	if len(sink.Messages()) != before {
		t.Fatal("a quarantined message reached the customer")
	}
	_, body := api(t, n, "GET", "/api/v1/quarantine")
	var list struct {
		Items []struct {
			ID      int64
			Subject string
			State   string
		}
	}
	if err := json.Unmarshal(body, &list); err != nil || len(list.Items) == 0 {
		t.Fatalf("quarantine list: %s %v", body, err)
	}
	it := list.Items[0]
	if it.Subject != "Invoice TAGME" || it.State != "held" {
		t.Fatalf("held item %+v", it)
	}
	return it.ID
}

// TestQuarantineEndToEnd: with tag_action quarantine a tag-band message
// gets 250, does not reach the customer, shows in the API (with a text
// preview) and in message tracking; a release delivers it once, a second
// release is refused and delivers nothing.
func TestQuarantineEndToEnd(t *testing.T) {
	sink := smtptest.StartSink(t)
	n := quarantineNode(t, sink.Addr, nil)
	id := holdOne(t, n, sink)

	code, body := api(t, n, "GET", fmt.Sprintf("/api/v1/quarantine/%d", id))
	if code != 200 || !bytes.Contains(body, []byte("Please pay the attached invoice.")) {
		t.Fatalf("item: %d %s", code, body)
	}
	var msgs struct{ Items []struct{ Status string } }
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, body = api(t, n, "GET", "/api/v1/messages?recipient=bob@example.org")
		json.Unmarshal(body, &msgs)
		if len(msgs.Items) > 0 {
			break
		}
	}
	if len(msgs.Items) != 1 || msgs.Items[0].Status != "quarantined" {
		t.Fatalf("message tracking: %s", body)
	}

	if code, body := api(t, n, "POST", fmt.Sprintf("/api/v1/quarantine/%d/release", id)); code != 200 {
		t.Fatalf("release: %d %s", code, body)
	}
	got := sink.Messages()
	if len(got) != 1 || got[0].Rcpts[0] != "bob@example.org" || !bytes.Contains(got[0].Data, []byte("X-Spam-Flag: YES")) ||
		!bytes.Contains(got[0].Data, []byte("Please pay the attached invoice.")) {
		t.Fatalf("after release the customer has %+v", got)
	}
	if code, _ := api(t, n, "POST", fmt.Sprintf("/api/v1/quarantine/%d/release", id)); code != http.StatusConflict {
		t.Fatalf("second release: %d, want 409", code)
	}
	// The release shows in message tracking: quarantined, then delivered.
	var statuses []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, body = api(t, n, "GET", "/api/v1/messages?recipient=bob@example.org")
		var m struct {
			Items []struct{ Status, Reply string }
		}
		json.Unmarshal(body, &m)
		statuses = statuses[:0]
		for _, it := range m.Items {
			statuses = append(statuses, it.Status)
		}
		if len(statuses) == 2 {
			break
		}
	}
	if strings.Join(statuses, ",") != "delivered,quarantined" {
		t.Fatalf("tracking after the release: %v", statuses)
	}
	if code, _ := api(t, n, "DELETE", fmt.Sprintf("/api/v1/quarantine/%d", id)); code != http.StatusConflict {
		t.Fatalf("delete after release: %d, want 409", code)
	}
	if len(sink.Messages()) != 1 {
		t.Fatal("the second release delivered again")
	}
}

// TestQuarantineConcurrentReleaseTwoNodes: two nodes on one PostgreSQL
// store; the same held message is released through both at once: one
// delivers, the other answers 409, the customer has it once.
func TestQuarantineConcurrentReleaseTwoNodes(t *testing.T) {
	dsn := testenv.PostgresDB(t)
	sink := smtptest.StartSink(t)
	pg := func(cfg *config.Config) {
		cfg.Store = store.Config{Driver: store.Postgres, DSN: dsn, Timeout: 5 * time.Second}
	}
	a := quarantineNode(t, sink.Addr, pg)
	b := quarantineNode(t, sink.Addr, pg)
	for round := range 5 {
		id := holdOne(t, a, sink)
		codes := make([]int, 2)
		var wg sync.WaitGroup
		for i, n := range []*nodetest.Node{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _ = api(t, n, "POST", fmt.Sprintf("/api/v1/quarantine/%d/release", id))
			}()
		}
		wg.Wait()
		if !(codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200) {
			t.Fatalf("round %d: releases answered %v, want one 200 and one 409", round, codes)
		}
		if got := len(sink.Messages()); got != round+1 {
			t.Fatalf("round %d: the customer has %d messages, want %d", round, got, round+1)
		}
	}
}

// TestQuarantineStoreDownFallsBack: when the quarantine cannot be written
// the message is tagged and delivered (nothing lost), /readyz says
// degraded and the fallback is counted.
func TestQuarantineStoreDownFallsBack(t *testing.T) {
	sink := smtptest.StartSink(t)
	n := quarantineNode(t, sink.Addr, nil)
	// The failure: the quarantine's table is gone from the node's database.
	db := nodeDB(t, n)
	if _, err := db.Exec(`DROP TABLE quarantine`); err != nil {
		t.Fatal(err)
	}
	if code, reply := smtptest.Send(t, n.SMTPAddr(), "x@sender.example", "bob@example.org", []byte(tagBandMessage)); code != 250 {
		t.Fatalf("with the quarantine failing: %d %s", code, reply)
	}
	got := sink.Messages()
	if len(got) != 1 || !bytes.Contains(got[0].Data, []byte("X-Spam-Flag: YES")) {
		t.Fatalf("the customer has %+v, want the message tagged", got)
	}
	resp, err := http.Get("http://" + n.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte("quarantine")) || !bytes.Contains(bytes.ToLower(body), []byte("degraded")) {
		t.Fatalf("/readyz: %d %s", resp.StatusCode, body)
	}
	if !bytes.Contains(nodeMetrics(t, n), []byte(`mxgrid_smtp_quarantine_fallbacks_total{reason="unavailable"} 1`)) {
		t.Fatal("the fallback was not counted")
	}
}

// TestQuarantineReadyAgainOnceTheStoreIs: the degraded condition a failed
// hold leaves in /readyz goes once the store answers again, without
// another message to hold. It stayed until the next tag-band message of a
// domain that quarantines, hours later on a node that gets few: /readyz
// (and an alert on it) said the quarantine was failing all that time.
func TestQuarantineReadyAgainOnceTheStoreIs(t *testing.T) {
	sink := smtptest.StartSink(t)
	n := quarantineNode(t, sink.Addr, nil)
	db := nodeDB(t, n)
	// The failure, and its end: the quarantine's table away and back.
	if _, err := db.Exec(`ALTER TABLE quarantine RENAME TO quarantine_away`); err != nil {
		t.Fatal(err)
	}
	if code, reply := smtptest.Send(t, n.SMTPAddr(), "x@sender.example", "bob@example.org", []byte(tagBandMessage)); code != 250 {
		t.Fatalf("with the quarantine failing: %d %s", code, reply)
	}
	if !quarantineDegraded(t, n) {
		t.Fatal("/readyz does not say the quarantine is failing")
	}
	if _, err := db.Exec(`ALTER TABLE quarantine_away RENAME TO quarantine`); err != nil {
		t.Fatal(err)
	}
	waitQuarantineFine(t, n, "its store answering again")
}

// TestQuarantineStaysDegradedWhileItsStoreTakesNoHolds: a store that
// answers reads but takes no holds (a PostgreSQL primary's disk full, or
// its address now a read-only standby's) leaves the quarantine degraded
// in /readyz until it takes them again. The re-check read the newest
// item, which such a store answers, and cleared the condition within 5 s
// while every message to hold was still tagged and delivered, so /readyz
// (and an alert on it) said the quarantine was fine but for a few seconds
// after each failed hold.
func TestQuarantineStaysDegradedWhileItsStoreTakesNoHolds(t *testing.T) {
	sink := smtptest.StartSink(t)
	n := quarantineNode(t, sink.Addr, nil)
	db := nodeDB(t, n)
	if _, err := db.Exec(`CREATE TRIGGER no_holds BEFORE INSERT ON quarantine_bodies BEGIN SELECT RAISE(ABORT, 'no room'); END`); err != nil {
		t.Fatal(err)
	}
	if code, reply := smtptest.Send(t, n.SMTPAddr(), "x@sender.example", "bob@example.org", []byte(tagBandMessage)); code != 250 {
		t.Fatalf("with the quarantine failing: %d %s", code, reply)
	}
	// Two re-checks (every 5 s) and some.
	for deadline := time.Now().Add(12 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !quarantineDegraded(t, n) {
			t.Fatal("/readyz says the quarantine is fine, its store taking no holds")
		}
	}
	if _, err := db.Exec(`DROP TRIGGER no_holds`); err != nil {
		t.Fatal(err)
	}
	waitQuarantineFine(t, n, "its store taking holds again")
	var rows int
	if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM quarantine) + (SELECT COUNT(*) FROM quarantine_bodies)`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("the re-checks left %d rows held, %v", rows, err)
	}
}

// nodeDB opens the node's SQLite database beside it, to break the store
// under it.
func nodeDB(t *testing.T, n *nodetest.Node) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(n.Config.DataDir, "mxgrid.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// waitQuarantineFine waits, within a generous bound, for /readyz to stop
// listing the quarantine, which the node re-checks every 5 s; why names
// what has mended.
func waitQuarantineFine(t *testing.T, n *nodetest.Node, why string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); quarantineDegraded(t, n); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still says the quarantine is failing, " + why)
		}
	}
}

// quarantineDegraded reports whether the node's /readyz lists the quarantine.
func quarantineDegraded(t *testing.T, n *nodetest.Node) bool {
	t.Helper()
	resp, err := http.Get("http://" + n.ManagementAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Conditions []struct{ Component string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Conditions {
		if c.Component == "quarantine" {
			return true
		}
	}
	return false
}

// nodeMetrics is the node's /metrics page.
func nodeMetrics(t *testing.T, n *nodetest.Node) []byte {
	t.Helper()
	resp, err := http.Get("http://" + n.ManagementAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestQuarantineIsPaidFromTheMemoryBudget: holding a message costs memory
// (its compressed copy and the database's copies of it) that the node's
// memory_budget pays for before the scan, on a domain that quarantines.
// A message the budget can pay for is held; one it never could is scanned
// as any message and, in the tag band, tagged and delivered (counted),
// never deferred for ever. Unpaid for, 40 senders of 20 MB of tag-band
// mail took a node to 500 MB, past the bound the same mail relayed keeps.
func TestQuarantineIsPaidFromTheMemoryBudget(t *testing.T) {
	sink := smtptest.StartSink(t)
	n := quarantineNode(t, sink.Addr, func(c *config.Config) {
		c.SMTP.MaxMessageBytes = 5 << 19 // 2.5 MiB
		c.SMTP.SpoolThreshold = 64 << 10
		c.SMTP.MemoryBudget = 8 << 20 // the least it may be: 3 x 2.5 MiB, and some
	})
	message := func(size int) []byte {
		line := "tag-band mail padded to its size with one line of text, again and again.\r\n"
		return []byte(strings.Replace(tagBandMessage, "\r\n\r\n", "\r\n\r\n"+strings.Repeat(line, size/len(line)), 1))
	}
	// 1 MiB: scanned (3 MiB) and held (3 MiB more) within 8 MiB.
	if code, reply := smtptest.Send(t, n.SMTPAddr(), "x@sender.example", "bob@example.org", message(1<<20)); code != 250 {
		t.Fatalf("1 MiB tag-band message: %d %s", code, reply)
	}
	if got := sink.Messages(); len(got) != 0 {
		t.Fatalf("the 1 MiB message reached the customer: %d messages", len(got))
	}
	// 2 MiB: its scan fits (6 MiB), holding it too never would (12 MiB).
	if code, reply := smtptest.Send(t, n.SMTPAddr(), "x@sender.example", "bob@example.org", message(2<<20)); code != 250 {
		t.Fatalf("2 MiB tag-band message: %d %s", code, reply)
	}
	got := sink.Messages()
	if len(got) != 1 || !bytes.Contains(got[0].Data, []byte("X-Spam-Flag: YES")) || len(got[0].Data) < 2<<20 {
		t.Fatalf("the customer has %d messages, want the 2 MiB one tagged", len(got))
	}
	m := nodeMetrics(t, n)
	for _, want := range []string{`mxgrid_smtp_quarantine_fallbacks_total{reason="memory"} 1`, `mxgrid_smtp_quarantined_total 1`} {
		if !bytes.Contains(m, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestQuarantineKeepsTheSpoolsFreeDisk: on SQLite held mail fills
// data_dir's disk, which the spool needs (smtp.spool_min_free): the
// per-domain cap bounds one domain, not a flood of tag-band mail across
// all of a node's quarantining domains. With the disk below the spool's
// minimum a message is tagged and delivered instead of held (counted,
// /readyz degraded), as over the cap; held, the disk filled until every
// big message of every tenant was deferred at the spool, and the store's
// other writes failed. On PostgreSQL held mail takes no local disk.
func TestQuarantineKeepsTheSpoolsFreeDisk(t *testing.T) {
	for _, tc := range []struct {
		name     string
		postgres bool
		wantHeld bool
	}{{"sqlite", false, false}, {"postgres", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			sink := smtptest.StartSink(t)
			n := quarantineNode(t, sink.Addr, func(c *config.Config) {
				c.SMTP.SpoolMinFree = math.MaxInt64 // no disk has that much free
				if tc.postgres {
					c.Store = store.Config{Driver: store.Postgres, DSN: testenv.PostgresDB(t), Timeout: 5 * time.Second}
				}
			})
			if code, reply := smtptest.Send(t, n.SMTPAddr(), "x@sender.example", "bob@example.org", []byte(tagBandMessage)); code != 250 {
				t.Fatalf("tag-band message: %d %s", code, reply)
			}
			got := sink.Messages()
			if held := len(got) == 0; held != tc.wantHeld {
				t.Fatalf("held %v, want %v", held, tc.wantHeld)
			}
			if tc.wantHeld {
				return
			}
			if !bytes.Contains(got[0].Data, []byte("X-Spam-Flag: YES")) {
				t.Fatal("the message was delivered untagged")
			}
			if !bytes.Contains(nodeMetrics(t, n), []byte(`mxgrid_smtp_quarantine_fallbacks_total{reason="disk"} 1`)) {
				t.Error("the fallback was not counted")
			}
			resp, err := http.Get("http://" + n.ManagementAddr() + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Contains(body, []byte("spool_min_free")) {
				t.Errorf("/readyz does not say why: %s", body)
			}
		})
	}
}

// TestReleaseInFlightAtShutdownFinishes: a node told to stop (SIGTERM,
// as in a rolling upgrade) while a release is delivering lets it finish
// within smtp.shutdown_grace, as it lets SMTP transactions finish. The
// HTTP side gave its requests 5 s, and a release to a slower server (one
// that holds its greeting, as Postfix's postscreen does for 6 s) was cut
// by the process's exit: left releasing, the message could never be
// released again, and whether it was delivered was unknown.
func TestReleaseInFlightAtShutdownFinishes(t *testing.T) {
	sink := smtptest.StartSink(t)
	n := quarantineNode(t, sink.Addr, func(c *config.Config) { c.SMTP.ShutdownGrace = 15 * time.Second })
	id := holdOne(t, n, sink)
	gate := sink.GateData()
	go func() {
		// Its answer may be lost as the node stops: what matters is the item.
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://%s/api/v1/quarantine/%d/release", n.HTTPAddr(), id), nil)
		req.Header.Set("Authorization", "Bearer "+quarantineToken)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-gate.Entered
	stopped := make(chan struct{})
	go func() {
		n.Stop(t)
		close(stopped)
	}()
	// Past the 5 s the HTTP side allowed its requests, well within the grace.
	time.Sleep(6 * time.Second)
	gate.Reply <- nil
	<-stopped
	if got := len(sink.Messages()); got != 1 {
		t.Fatalf("the customer has %d messages, want the released one", got)
	}
	st, err := store.Open(store.Config{Driver: store.SQLite, DSN: filepath.Join(n.Config.DataDir, "mxgrid.db"), Timeout: 5 * time.Second}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	it, err := st.QuarantineItem(context.Background(), tracking.Scope{Operator: true}, id)
	if err != nil || it.State != "released" {
		t.Fatalf("after the node stopped the item is %q (%v), want released", it.State, err)
	}
	if err := st.MigrateTracking(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, _, err := st.SearchTracking(context.Background(), tracking.Filter{Scope: tracking.Scope{Operator: true}, Recipient: "bob@example.org", Limit: 10})
	var statuses []string
	for _, r := range recs {
		statuses = append(statuses, string(r.Status))
	}
	if err != nil || strings.Join(statuses, ",") != "delivered,quarantined" {
		t.Fatalf("the message log has %v (%v), want the release's delivery and the hold", statuses, err)
	}
}

// TestQuarantineReusesItsFreedPages: on SQLite, held mail the retention
// (or a release, a delete) took leaves its pages free inside the database
// file, which keeps its size: the disk gets none of it back, but the next
// holds reuse it. The disk check counted the disk alone, so once a flood
// of held mail had taken data_dir's disk down to smtp.spool_min_free and
// expired, nothing was held again (tagged and delivered, /readyz degraded)
// though the database had room for all of it, until someone vacuumed it.
func TestQuarantineReusesItsFreedPages(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(store.DefaultConfig(), dir)
	if err != nil {
		t.Fatal(err)
	}
	// 256 MiB of pages, freed as expired bodies leave theirs.
	const freed = 256 << 20
	if _, err := st.DB.Exec(`CREATE TABLE gone (b BLOB); INSERT INTO gone VALUES (zeroblob(?)); DROP TABLE gone`, freed); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	sink := smtptest.StartSink(t)
	n := quarantineNode(t, sink.Addr, func(c *config.Config) {
		c.DataDir = dir
		// Below the minimum by half the freed pages: other writers on the
		// machine may take or give back the other half meanwhile.
		c.SMTP.SpoolMinFree = int64(fs.Bavail)*int64(fs.Bsize) + freed/2
	})
	if code, reply := smtptest.Send(t, n.SMTPAddr(), "x@sender.example", "bob@example.org", []byte(tagBandMessage)); code != 250 {
		t.Fatalf("tag-band message: %d %s", code, reply)
	}
	if got := sink.Messages(); len(got) != 0 {
		t.Fatal("the message was delivered tagged, not held in the database's free pages")
	}
}

// TestReleaseIsFoundByTheHoldsReference: the 250 of a held message quotes
// the reference message tracking finds it by ("search the message log by
// that reference"), and the search by it finds what became of the message
// since: its release, as its hold. The release's record had no reference,
// so support asked about [ref X] read "quarantined" and nothing more.
func TestReleaseIsFoundByTheHoldsReference(t *testing.T) {
	sink := smtptest.StartSink(t)
	n := quarantineNode(t, sink.Addr, nil)
	id := holdOne(t, n, sink)
	_, body := api(t, n, "GET", fmt.Sprintf("/api/v1/quarantine/%d", id))
	var it struct {
		QueueID string `json:"queue_id"`
	}
	if err := json.Unmarshal(body, &it); err != nil || it.QueueID == "" {
		t.Fatalf("item: %s %v", body, err)
	}
	if code, body := api(t, n, "POST", fmt.Sprintf("/api/v1/quarantine/%d/release", id)); code != 200 {
		t.Fatalf("release: %d %s", code, body)
	}
	var statuses []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, body = api(t, n, "GET", "/api/v1/messages?ref="+it.QueueID)
		var m struct{ Items []struct{ Status string } }
		json.Unmarshal(body, &m)
		statuses = statuses[:0]
		for _, r := range m.Items {
			statuses = append(statuses, r.Status)
		}
		if len(statuses) == 2 {
			break
		}
	}
	if strings.Join(statuses, ",") != "delivered,quarantined" {
		t.Fatalf("records found by [ref %s]: %v, want the release and the hold", it.QueueID, statuses)
	}
}
