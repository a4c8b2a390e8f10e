package smtpd_test

import (
	"log/slog"
	"strings"
	"testing"
)

// TestTransactionLogLine: every relayed message gets its "transaction"
// line at info, fields and all, and none when the node logs at warn.
func TestTransactionLogLine(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  []string // in the line, in order; nil: no line
	}{
		{slog.LevelInfo, []string{"transaction", "queue_id=", "helo=client.test", "from=alice@sender.test",
			"rcpts=[bob@example.org]", "size=", "spooled=false", "action=", "score=", "symbols=", "outcome=",
			"reply=250 ", "duration="}},
		{slog.LevelWarn, nil},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			n, sink, rec := startLogged(t, tc.level)
			relayOne(t, n, sink, "client.test", "Subject: x\r\n\r\nbody\r\n")
			rec.mu.Lock()
			defer rec.mu.Unlock()
			var lines []string
			for _, m := range rec.msgs {
				if strings.HasPrefix(m, "transaction ") {
					lines = append(lines, m)
				}
			}
			if tc.want == nil {
				if len(lines) > 0 {
					t.Fatalf("logged %q at %v", lines, tc.level)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("transaction lines %q, want one", lines)
			}
			rest := lines[0]
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("transaction line %q: no %q in order", lines[0], w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}
