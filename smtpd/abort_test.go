package smtpd_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/smtptest"
)

// logRecords keeps the records logged at min or above, each as its
// message and attributes.
type logRecords struct {
	min  slog.Level
	mu   sync.Mutex
	msgs []string
}

func (h *logRecords) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *logRecords) WithGroup(string) slog.Handler                { return h }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	h.msgs = append(h.msgs, msg)
	return nil
}

// startLogged starts a node relaying example.org to a raw sink, its log
// records at min or above kept.
func startLogged(t *testing.T, min slog.Level) (*testNode, *rawSink, *logRecords) {
	t.Helper()
	sink := startRawSink(t)
	cfg := testConfig(t)
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
	deps := configDeps(t, cfg, nil)
	rec := &logRecords{min: min}
	deps.Log = slog.New(rec)
	return startWith(t, cfg, deps), sink, rec
}

// TestClientAbortsAreNotErrors: a client that gives up a message (drops or
// resets the connection mid-body, or sends RSET during BDAT) is no fault
// of the node's. Each was logged at ERROR as an "unclassified error", one
// line per connection for anyone who cared to, where operators alert.
func TestClientAbortsAreNotErrors(t *testing.T) {
	n, _, rec := startLogged(t, slog.LevelError)
	const open = "MAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@example.org>\r\n"
	for _, tc := range []struct {
		name, input string
		reset       bool // close with a TCP reset rather than a FIN
	}{
		{name: "connection closed mid-DATA", input: open + "DATA\r\nSubject: x\r\n"},
		{name: "connection reset mid-DATA", input: open + "DATA\r\nSubject: x\r\n", reset: true},
		{name: "RSET during BDAT", input: open + "BDAT 4\r\nSubjRSET\r\nQUIT\r\n"},
		{name: "connection closed during BDAT", input: open + "BDAT 100\r\nSubject: x\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", n.SMTPAddr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c := greet(t, conn)
			fmt.Fprint(c.c.W, tc.input)
			c.c.W.Flush()
			// Every reply read, so that Close sends a FIN, not a reset.
			conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			io.Copy(io.Discard, c.c.R)
			if tc.reset {
				conn.(*net.TCPConn).SetLinger(0)
			}
			conn.Close()
			time.Sleep(200 * time.Millisecond)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.msgs) > 0 {
				t.Errorf("logged at ERROR: %q", rec.msgs)
				rec.msgs = nil
			}
		})
	}
}
