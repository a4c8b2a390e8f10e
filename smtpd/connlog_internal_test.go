package smtpd

import (
	"bytes"
	"log/slog"
	"net/netip"
	"testing"
)

// TestConnHandlerLogsAsWith: the connection's lazily made handler writes
// what s.log.With("client_ip", ...) wrote, byte for byte, at every level
// and below further attributes and groups; a level the server's handler
// drops makes no handler.
func TestConnHandlerLogsAsWith(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8::25")
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	for _, mk := range []func(*bytes.Buffer, *slog.HandlerOptions) slog.Handler{
		func(b *bytes.Buffer, o *slog.HandlerOptions) slog.Handler { return slog.NewTextHandler(b, o) },
		func(b *bytes.Buffer, o *slog.HandlerOptions) slog.Handler { return slog.NewJSONHandler(b, o) },
	} {
		var want, got bytes.Buffer
		opts := &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: noTime}
		server := slog.New(mk(&want, opts)).With("component", "smtp")
		withLog := server.With("client_ip", ip.String())
		conn := &connHandler{base: slog.New(mk(&got, opts)).With("component", "smtp").Handler(), clientIP: ip}
		lazyLog := slog.New(conn)
		for _, l := range []*slog.Logger{withLog, lazyLog} {
			l.Debug("debug line", "queue_id", "Q1")
			l.Info("info line", "rcpt", "a@example.org", "n", 3)
			l.With("k", "v").WithGroup("g").Warn("grouped", "x", 1)
		}
		if want.Len() == 0 || got.String() != want.String() {
			t.Errorf("lazy handler wrote\n%s\nWith wrote\n%s", &got, &want)
		}
	}

	var out bytes.Buffer
	conn := &connHandler{base: slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}), clientIP: ip}
	slog.New(conn).Info("dropped")
	if conn.h != nil || out.Len() != 0 {
		t.Errorf("an info line at warn made the handler (%v) or wrote %q", conn.h, &out)
	}
}
