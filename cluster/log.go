package cluster

import (
	"context"
	"log/slog"
	"strings"
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
}

func (w logWriter) Write(p []byte) (int, error) {
	level, msg := parseMemberlistLine(string(p))
	w.observe(msg)
	w.log.Log(context.Background(), level, msg)
	return len(p), nil
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
