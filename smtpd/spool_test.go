package smtpd_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/antivirus"
	"github.com/mxgrid/mxgrid/scanner/model"
	"github.com/mxgrid/mxgrid/scanner/rules"
	"github.com/prometheus/client_golang/prometheus"
)

// bigBody is a message of about size bytes from sender i.
func bigBody(i, size int) []byte {
	line := fmt.Sprintf("sender %02d says hello, this line pads a big message.................\r\n", i)
	return []byte(fmt.Sprintf("From: s%d@sender.test\r\nSubject: big %d\r\nMessage-ID: <big-%d@sender.test>\r\n\r\n", i, i, i) +
		strings.Repeat(line, size/len(line)))
}

// spoolFiles lists the spool directory of n.
func spoolFiles(t *testing.T, n *testNode) []os.DirEntry {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(n.Config.DataDir, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestSpooledBodiesWaitForTheBudget is the CI-sized acceptance of bounded
// memory: 20 senders send 2 MB each at once to a node whose memory budget
// (8 MB) holds the scan of one such message at a time. The bodies go to
// the spool as they arrive, so reading them costs no budget; each scan
// waits for room instead of being refused: every sender hears 250 at its
// first attempt, every message arrives once, byte for byte, and the spool
// is empty at the end.
func TestSpooledBodiesWaitForTheBudget(t *testing.T) {
	n, sink := startNode(t, func(cfg *config.Config) {
		cfg.SMTP.MaxMessageBytes = 2<<20 + 512<<10
		cfg.SMTP.MemoryBudget = 8 << 20
		cfg.SMTP.SpoolThreshold = 16 << 10
	})
	const senders = 20
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
	)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, msg := smtptest.Send(t, n.SMTPAddr(), fmt.Sprintf("s%d@sender.test", i), "bob@example.org", bigBody(i, 2<<20)); code != 250 {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("sender %d: %d %s", i, code, msg))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("not every sender heard 250: %v", failures)
	}
	deliveredOnceIntact(t, sink.Messages(), senders, func(i int) []byte { return bigBody(i, 2<<20) })
	if left := spoolFiles(t, n); len(left) != 0 {
		t.Errorf("%d spool files left after the burst", len(left))
	}
}

// spoolWatch is a scan check that looks at the spool directory while the
// message it scans is in it.
type spoolWatch struct {
	dir   string
	score float64
	mu    *sync.Mutex
	seen  *[]string
}

func (spoolWatch) Name() string { return "spool_watch" }

func (w spoolWatch) Check(context.Context, *scanner.Envelope, *scanner.Message) (scanner.Result, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, err := os.Stat(w.dir)
	if err != nil {
		return scanner.Result{}, err
	}
	entries, _ := os.ReadDir(w.dir)
	desc := fmt.Sprintf("dir %v", st.Mode().Perm())
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return scanner.Result{}, err
		}
		desc += fmt.Sprintf(", file %v", info.Mode().Perm())
	}
	*w.seen = append(*w.seen, desc)
	return scanner.Result{Symbols: []scanner.Symbol{{Name: "FIXED", Score: w.score}}}, nil
}

// TestSpoolFilesArePrivateAndRemoved: a body past the threshold is in a
// 0600 file in a 0700 directory while it is scanned, and the file is gone
// when the transaction ends, whatever its end: delivered, refused by the
// scan, or the client gone mid-DATA. A small body never touches the disk.
func TestSpoolFilesArePrivateAndRemoved(t *testing.T) {
	for _, tt := range []struct {
		name  string
		score float64
		size  int
		want  int
		seen  string
	}{
		{"small body stays in memory", 0, 1 << 10, 250, "dir -rwx------"},
		{"delivered", 0, 200 << 10, 250, "dir -rwx------, file -rw-------"},
		{"refused by the scan", 30, 200 << 10, 550, "dir -rwx------, file -rw-------"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu   sync.Mutex
				seen []string
			)
			cfg := testConfig(t)
			sink := smtptest.StartSink(t)
			cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
			cfg.SMTP.SpoolThreshold = 64 << 10
			n := startConfigured(t, cfg, []scanner.Stage{{Check: spoolWatch{dir: filepath.Join(cfg.DataDir, "spool"), score: tt.score, mu: &mu, seen: &seen}}})
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			c.data(tt.want, string(bigBody(1, tt.size)))
			if len(seen) != 1 || seen[0] != tt.seen {
				t.Errorf("during the scan: %q, want %q", seen, tt.seen)
			}
			if left := spoolFiles(t, n); len(left) != 0 {
				t.Errorf("%d spool files left", len(left))
			}
		})
	}

	t.Run("client gone mid-DATA", func(t *testing.T) {
		n, _ := startNode(t, func(cfg *config.Config) { cfg.SMTP.SpoolThreshold = 16 << 10 })
		c := dial(t, n.SMTPAddr())
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.cmd(354, "DATA")
		c.c.W.Write(bigBody(1, 256<<10))
		c.c.W.Flush()
		deadline := time.Now().Add(5 * time.Second)
		for len(spoolFiles(t, n)) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if len(spoolFiles(t, n)) == 0 {
			t.Fatal("the body being received is not in the spool")
		}
		c.c.Close()
		for len(spoolFiles(t, n)) != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if left := spoolFiles(t, n); len(left) != 0 {
			t.Errorf("%d spool files left after the client went away", len(left))
		}
	})
}

// TestSpoolSweptAtStartup: a node that died mid-transaction left a spool
// file (its sender heard nothing and retries): the next start removes it,
// and only files named like ours.
func TestSpoolSweptAtStartup(t *testing.T) {
	cfg := testConfig(t)
	dir := filepath.Join(cfg.DataDir, "spool")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"msg-123456", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startConfigured(t, cfg, nil)
	var names []string
	for _, e := range spoolFiles(t, &testNode{Config: cfg}) {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "notes.txt" {
		t.Errorf("spool after start-up: %v, want only notes.txt", names)
	}
}

// TestSpooledMessageIsScannedAndRelayedTheSame: the default content checks
// (model, rules, built-in antivirus) gives a spooled message the
// verdict it gives the same message held in memory, and the customer's
// server receives the same bytes below our Received field: corpus spam and
// ham, and EICAR.
func TestSpooledMessageIsScannedAndRelayedTheSame(t *testing.T) {
	paths, err := filepath.Glob("../testdata/corpus/*/*.eml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("corpus: %v (%d files)", err, len(paths))
	}
	sort.Strings(paths)
	samples := map[string][]byte{
		"eicar": []byte("From: a@sender.test\r\nSubject: test file\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n" +
			"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=eicar.com\r\n\r\nX5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*\r\n--b--\r\n"),
	}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// SMTP carries CRLF: the corpus files are as stored on disk.
		samples[filepath.Base(p)] = bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	}
	start := func(threshold int64) (*testNode, *smtptest.Sink) {
		sink := smtptest.StartSink(t)
		cfg := testConfig(t)
		cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
		cfg.SMTP.SpoolThreshold = threshold
		// The content checks of the default pipeline (node.Stages
		// offline; the node itself is not linked into smtpd's tests).
		models, err := model.NewProvider(cfg.Scanner, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		av, err := antivirus.New(cfg.Antivirus, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		stages := []scanner.Stage{
			scanner.NewStage(model.NewCheck(models, cfg.Scanner.Weights), cfg.Scanner.Model),
			scanner.NewStage(rules.New(cfg.Scanner.Weights), cfg.Scanner.Rules),
			scanner.NewStage(av, cfg.Antivirus.Builtin),
		}
		return startConfigured(t, cfg, stages), sink
	}
	memNode, memSink := start(64 << 20)
	spoolNode, spoolSink := start(1)
	codes := map[int]int{}
	for name, raw := range samples {
		from := "s-" + strings.NewReplacer(".", "-").Replace(name)[:min(len(name), 20)] + "@sender.test"
		memCode, memMsg := smtptest.Send(t, memNode.SMTPAddr(), from, "bob@example.org", raw)
		spoolCode, spoolMsg := smtptest.Send(t, spoolNode.SMTPAddr(), from, "bob@example.org", raw)
		codes[memCode]++
		if memCode != spoolCode || replyKind(memMsg) != replyKind(spoolMsg) {
			t.Errorf("%s: in memory %d %s, spooled %d %s", name, memCode, memMsg, spoolCode, spoolMsg)
		}
		if name == "eicar" && spoolCode < 500 {
			t.Errorf("EICAR in a spooled message: %d %s", spoolCode, spoolMsg)
		}
	}
	t.Logf("%d samples, replies %v", len(samples), codes)
	if codes[250] == 0 || codes[550]+codes[554] == 0 {
		t.Errorf("codes %v: the samples should include delivered and refused mail", codes)
	}
	delivered := func(s *smtptest.Sink) map[string][]byte {
		out := map[string][]byte{}
		for _, m := range s.Messages() {
			data, err := smtptest.StripPrepended(m.Data, "Received")
			if err != nil {
				t.Fatal(err)
			}
			out[m.From] = data
		}
		return out
	}
	mem, spooled := delivered(memSink), delivered(spoolSink)
	if len(mem) != len(spooled) {
		t.Fatalf("%d delivered from memory, %d spooled", len(mem), len(spooled))
	}
	for from, data := range mem {
		if !bytes.Equal(data, spooled[from]) {
			t.Errorf("%s: relayed bytes differ between memory and spool", from)
		}
	}
	if left := spoolFiles(t, spoolNode); len(left) != 0 {
		t.Errorf("%d spool files left", len(left))
	}
}

// replyKind is a reply without its queue reference.
func replyKind(msg string) string {
	if i := strings.Index(msg, "[ref "); i >= 0 {
		return msg[:i]
	}
	if i := strings.Index(msg, "queued as"); i >= 0 {
		return msg[:i]
	}
	return msg
}

// TestSpoolRefusesWhenTheDiskIsLow: with less free space than
// smtp.spool_min_free, a big body is answered 452 4.3.1 before anything is
// written (the sender retries), and a small one, which needs no disk, is
// still delivered.
func TestSpoolRefusesWhenTheDiskIsLow(t *testing.T) {
	n, sink := startNode(t, func(cfg *config.Config) {
		cfg.SMTP.SpoolThreshold = 64 << 10
		cfg.SMTP.SpoolMinFree = math.MaxInt64
	})
	if code, msg := smtptest.Send(t, n.SMTPAddr(), "big@sender.test", "bob@example.org", bigBody(1, 256<<10)); code != 452 || !strings.Contains(msg, "insufficient system resources") {
		t.Errorf("big body on a full disk: %d %s, want 452 4.3.1", code, msg)
	}
	if code, msg := smtptest.Send(t, n.SMTPAddr(), "small@sender.test", "bob@example.org", bigBody(2, 4<<10)); code != 250 {
		t.Errorf("small body on a full disk: %d %s, want 250", code, msg)
	}
	if got := len(sink.Messages()); got != 1 {
		t.Errorf("%d messages delivered, want the small one", got)
	}
	if left := spoolFiles(t, n); len(left) != 0 {
		t.Errorf("%d spool files left", len(left))
	}
}

// spoolCut is a scan stage that cuts every spool file in dir to half its
// length, as something else writing data_dir would (a cleaner, a second
// process, a file system losing the file's tail).
type spoolCut struct{ dir string }

func (spoolCut) Name() string { return "spool_cut" }

func (c spoolCut) Check(context.Context, *scanner.Envelope, *scanner.Message) (scanner.Result, error) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return scanner.Result{}, err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return scanner.Result{}, err
		}
		if err := os.Truncate(filepath.Join(c.dir, e.Name()), info.Size()/2); err != nil {
			return scanner.Result{}, err
		}
	}
	return scanner.Result{}, nil
}

// TestSpoolFileCutShortIsNotDelivered: the relay sent a spooled body as a
// section of its file, and a file shorter than the body received read as
// the body's end: the customer's server got the first half of the
// message and the sender a 250 for all of it. A body that ends before its
// size is a failed read: nothing is committed downstream, and the sender
// hears 451 and sends it again.
func TestSpoolFileCutShortIsNotDelivered(t *testing.T) {
	cfg := testConfig(t)
	sink := smtptest.StartSink(t)
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
	cfg.SMTP.SpoolThreshold = 64 << 10
	n := startConfigured(t, cfg, []scanner.Stage{{Check: spoolCut{dir: filepath.Join(cfg.DataDir, "spool")}}})
	code, msg := smtptest.Send(t, n.SMTPAddr(), "alice@sender.test", "bob@example.org", bigBody(1, 256<<10))
	if code/100 != 4 {
		t.Errorf("body cut short in the spool: %d %s, want a 4xx", code, msg)
	}
	if got := sink.Messages(); len(got) != 0 {
		t.Errorf("the customer's server got %d messages (%d bytes), want none", len(got), len(got[0].Data))
	}
	if left := spoolFiles(t, n); len(left) != 0 {
		t.Errorf("%d spool files left", len(left))
	}
}
