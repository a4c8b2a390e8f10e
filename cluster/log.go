package cluster

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/mxgrid/mxgrid/internal/ratelimit"
)

// memberlist logs one line for every packet or stream it cannot read, at
// error level, with the sender's address: a stream of junk UDP packets to
// the public gossip port, from anyone, became as many log lines (40 bytes
// in, 150 written). Each kind of line gets logBurst at once and one more
// every logInterval; what was left out is counted on the next one logged.
const (
	logBurst    = 10
	logInterval = 6 * time.Second
	logKinds    = 256
)

// logWriter turns memberlist's std-log lines ("[WARN] memberlist: ...")
// into slog records at the level named in the prefix. memberlist writes to
// stderr unfiltered otherwise, and its DEBUG lines (one per push/pull stream)
// would drown everything else; they map to slog's Debug level, which the
// node's handler drops unless debug logging is on.
type logWriter struct {
	log *slog.Logger
	// observe sees every line, whatever the level, before filtering: some
	// facts (a failed probe) are only ever reported as log text.
	observe func(msg string)
	// closing reports that the cluster is shutting memberlist down: its
	// gossip and probe goroutines outlive the transport by a tick and log
	// their writes to it at error level ("Failed to send gossip to ...:
	// use of closed network connection"), one line in several clean
	// stops that an operator alerting on errors was paged for.
	closing func() bool
	now     func() time.Time
	limit   *ratelimit.Limiter[string]

	mu      sync.Mutex
	skipped map[string]int
}

func newLogWriter(log *slog.Logger, observe func(string), closing func() bool, now func() time.Time) *logWriter {
	return &logWriter{log: log, observe: observe, closing: closing, now: now,
		limit: ratelimit.New[string](logBurst, logInterval, logKinds), skipped: map[string]int{}}
}

func (w *logWriter) Write(p []byte) (int, error) {
	level, msg := parseMemberlistLine(string(p))
	w.observe(msg)
	if w.closing() && strings.Contains(msg, net.ErrClosed.Error()) {
		level = slog.LevelDebug
	}
	kind := lineKind(msg)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.limit.Take(kind, w.now()) > 0 {
		if _, ok := w.skipped[kind]; ok || len(w.skipped) < logKinds {
			w.skipped[kind]++
		}
		return len(p), nil
	}
	if n := w.skipped[kind]; n > 0 {
		delete(w.skipped, kind)
		w.log.Log(context.Background(), level, msg, "similar_lines_skipped", n)
		return len(p), nil
	}
	w.log.Log(context.Background(), level, msg)
	return len(p), nil
}

// lineKind is what a line says without the particulars memberlist puts
// in it (the error, the sender's address, a label or node name the sender
// chose): its first words, up to a colon, a quote or "from=". A kind that
// varied with the sender's choice would give each packet a fresh budget.
func lineKind(msg string) string {
	const words = 4
	var kind []string
	for _, w := range strings.Fields(msg) {
		if i := strings.IndexAny(w, ":=\"'"); i >= 0 {
			if w = w[:i]; w != "" {
				kind = append(kind, w)
			}
			break
		}
		if kind = append(kind, w); len(kind) == words {
			break
		}
	}
	return strings.Join(kind, " ")
}

func parseMemberlistLine(line string) (slog.Level, string) {
	line = strings.TrimSpace(line)
	level := slog.LevelInfo
	for _, p := range []struct {
		prefix string
		level  slog.Level
	}{
		{"[DEBUG]", slog.LevelDebug},
		{"[INFO]", slog.LevelInfo},
		{"[WARN]", slog.LevelWarn},
		{"[ERR]", slog.LevelError},
		{"[ERROR]", slog.LevelError},
	} {
		if rest, ok := strings.CutPrefix(line, p.prefix); ok {
			level, line = p.level, strings.TrimSpace(rest)
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	return level, line
}

// probeFailedNode returns the node named in memberlist's
// "Suspect <name> has failed, no acks received" line (state.go, v0.7.0),
// logged once for each probe of ours that got no ack, direct, indirect or
// over TCP. It is the only place memberlist reports a failed probe outside
// its go-metrics globals. A test kills a node and expects the counter to
// move, so a wording change in an upgrade fails loudly.
func probeFailedNode(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "Suspect ")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, " has failed, no acks received")
}
