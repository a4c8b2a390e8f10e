package loadgen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func startSink(t *testing.T, report string) (*Sink, context.CancelFunc) {
	t.Helper()
	s, err := NewSink(SinkConfig{Listen: "127.0.0.1:0", Report: report, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sink Run: %v", err)
		}
	}
	var once bool
	t.Cleanup(func() {
		if !once {
			stop()
		}
	})
	return s, func() { once = true; stop() }
}

// fakeNode is an SMTP server whose DATA behaviour a test chooses.
type fakeNode struct {
	rcptErr error
	// data runs at the end of DATA with the message and the connection.
	data func(msg []byte, c *smtp.Conn) error
}

func startFake(t *testing.T, f fakeNode) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &fakeSession{f: f, c: c}, nil }))
	srv.Domain = "fake.test"
	srv.ErrorLog = logAdapter{slog.New(slog.DiscardHandler)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

type fakeSession struct {
	f fakeNode
	c *smtp.Conn
}

func (s *fakeSession) Reset()                               {}
func (s *fakeSession) Logout() error                        { return nil }
func (s *fakeSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *fakeSession) Rcpt(string, *smtp.RcptOptions) error { return s.f.rcptErr }
func (s *fakeSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return s.f.data(b, s.c)
}

func testConfig(targets ...string) Config {
	cfg := DefaultConfig()
	cfg.Targets = targets
	cfg.Sessions = 4
	cfg.Messages = 40
	cfg.Size = 2000
	cfg.RetryDelay = 10 * time.Millisecond
	cfg.MaxRetryDelay = 50 * time.Millisecond
	cfg.IOTimeout = 10 * time.Second
	return cfg
}

func runLoad(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var tempfail = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 1}, Message: "try later"}

func TestDeliversEveryMessageOnceAndTheSinkCountsThem(t *testing.T) {
	sink, _ := startSink(t, filepath.Join(t.TempDir(), "ids"))
	res := runLoad(t, testConfig(sink.Addr()))
	s := res.Summarize()
	if s.Delivered != 40 || s.Attempts != 40 || len(res.TxLatency) != 40 {
		t.Fatalf("summary %+v, want 40 delivered in 40 attempts", s)
	}
	counts, total := sink.Counts()
	if total != 40 {
		t.Fatalf("sink accepted %d, want 40", total)
	}
	if a := res.Audit(counts); len(a.Lost) != 0 || a.Duplicates != 0 || a.Foreign != 0 {
		t.Fatalf("audit %+v", a)
	}
	var out bytes.Buffer
	res.Print(&out)
	for _, want := range []string{"delivered 40", "messages/s", "p99", "250 2.0.0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestTempfailIsRetriedOnAnotherNode(t *testing.T) {
	busy := startFake(t, fakeNode{rcptErr: tempfail})
	sink, _ := startSink(t, "")
	res := runLoad(t, testConfig(busy, sink.Addr()))
	if s := res.Summarize(); s.Delivered != 40 || s.Tempfails == 0 {
		t.Fatalf("summary %+v, want all delivered after some 4xx", s)
	}
	for _, rec := range res.Records {
		if rec.Node != sink.Addr() {
			t.Fatalf("%s ended on %s, want the node that accepts", rec.ID, rec.Node)
		}
		if rec.Attempts != rec.Tempfails+1 {
			t.Fatalf("%+v: every attempt but the last should be a 4xx", rec)
		}
	}
	counts, _ := sink.Counts()
	if a := res.Audit(counts); len(a.Lost) != 0 || a.Duplicates != 0 {
		t.Fatalf("audit %+v", a)
	}
}

func TestRejectionIsFinal(t *testing.T) {
	refuse := startFake(t, fakeNode{data: func([]byte, *smtp.Conn) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "spam"}
	}})
	res := runLoad(t, testConfig(refuse))
	if s := res.Summarize(); s.Rejected != 40 || s.Attempts != 40 {
		t.Fatalf("summary %+v, want 40 rejected without retries", s)
	}
	if res.Replies["550 5.7.1"] != 40 {
		t.Fatalf("replies %v", res.Replies)
	}
}

func TestDeadlineLeavesPendingMessages(t *testing.T) {
	busy := startFake(t, fakeNode{rcptErr: tempfail})
	cfg := testConfig(busy)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Summarize(); s.Pending != 40 || s.Tempfails < 40 {
		t.Fatalf("summary %+v, want all pending after repeated 4xx", s)
	}
}

// A node that relays the message and dies before answering leaves the
// sender uncertain; its retry is a duplicate the audit must explain. A node
// that relays and then answers 4xx breaks the contract, and the audit must
// say so.
func TestAuditTellsExplainedFromUnexplainedDuplicates(t *testing.T) {
	for _, tt := range []struct {
		name        string
		after       func(c *smtp.Conn) error
		unexplained bool
	}{
		{"node dies after relaying", func(c *smtp.Conn) error { c.Conn().Close(); return nil }, false},
		{"node answers 4xx after relaying", func(*smtp.Conn) error { return tempfail }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sink, _ := startSink(t, "")
			// One fake node relays into the sink, then misbehaves; the
			// retry goes to the sink directly.
			bad := startFake(t, fakeNode{data: func(msg []byte, c *smtp.Conn) error {
				if err := sink.accept(HeaderID(msg)); err != nil {
					return err
				}
				return tt.after(c)
			}})
			cfg := testConfig(bad, sink.Addr())
			cfg.Sessions = 1 // starts on bad: every message goes there first
			cfg.Messages = 10
			res := runLoad(t, cfg)
			counts, _ := sink.Counts()
			a := res.Audit(counts)
			if len(a.Lost) != 0 || a.Duplicates != 10 {
				t.Fatalf("audit %+v, want 10 duplicates and nothing lost", a)
			}
			if got := len(a.Unexplained) > 0; got != tt.unexplained {
				t.Fatalf("unexplained %v, want %v (records %+v)", a.Unexplained, tt.unexplained, res.Records[0])
			}
		})
	}
}

func TestSinkKeepsCountingAfterRestart(t *testing.T) {
	report := filepath.Join(t.TempDir(), "ids")
	sink, stop := startSink(t, report)
	cfg := testConfig(sink.Addr())
	cfg.RunID = "first"
	res := runLoad(t, cfg)
	stop()
	if _, err := net.DialTimeout("tcp", sink.Addr(), time.Second); err == nil {
		t.Fatal("stopped sink still accepts connections")
	}
	sink2, _ := startSink(t, report)
	cfg.Targets = []string{sink2.Addr()}
	runLoad(t, cfg) // the same ids again: every one now counted twice
	counts, total := sink2.Counts()
	if total != 80 {
		t.Fatalf("restarted sink counts %d, want 80", total)
	}
	if a := res.Audit(counts); a.Duplicates != 40 || len(a.Lost) != 0 {
		t.Fatalf("audit %+v", a)
	}
	fromFile, fileTotal, err := ReadReport(report)
	if err != nil || fileTotal != 80 || fromFile[res.Records[0].ID] != 2 {
		t.Fatalf("report file: %d ids, total %d, %v", len(fromFile), fileTotal, err)
	}
}

func TestSinkRefusesNonLoopback(t *testing.T) {
	if _, err := NewSink(SinkConfig{Listen: "0.0.0.0:0"}); err == nil {
		t.Fatal("sink bound a non-loopback address")
	}
}

func TestCorpusMessagesCarryOneIDAndSurviveDots(t *testing.T) {
	dir := t.TempDir()
	msg := "From a@sender.test Sat Dec  5 23:23:21 2026\nX-Loadgen-Id: stale\nSubject: hi\n\n.leading dot\nbare\rcr\n"
	if err := os.WriteFile(filepath.Join(dir, "a.eml"), []byte(msg), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []byte
	node := startFake(t, fakeNode{data: func(b []byte, _ *smtp.Conn) error { got = b; return nil }})
	cfg := testConfig(node)
	cfg.Corpus, cfg.Messages, cfg.Sessions = dir, 1, 1
	res := runLoad(t, cfg)
	want := "X-Loadgen-Id: " + res.Records[0].ID + "\r\nSubject: hi\r\n\r\n.leading dot\r\nbare\r\ncr\r\n"
	if string(got) != want {
		t.Fatalf("node got %q, want %q", got, want)
	}
}

// A transaction that outlives the sink's grace is refused when it ends: the
// report file is closed by then, and a 250 for an id it does not hold would
// show up as a lost message in the audit.
func TestSinkStoppedRefusesLateTransactions(t *testing.T) {
	report := filepath.Join(t.TempDir(), "ids")
	s, err := NewSink(SinkConfig{Listen: "127.0.0.1:0", Report: report, Grace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@sender.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.org", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, IDHeader+": late\r\n\r\nbody\r\n")
	cancel()
	<-done // the grace expired with the transaction still open
	err = w.Close()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code/100 != 4 {
		t.Fatalf("late transaction answered %v, want a 4xx", err)
	}
	if counts, _, _ := ReadReport(report); counts["late"] != 0 {
		t.Fatal("late id in the report")
	}
}
