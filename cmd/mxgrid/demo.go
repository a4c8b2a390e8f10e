package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/mxgrid/mxgrid/internal/demo"
)

// runDemo starts the in-process demo cluster (package internal/demo) until
// SIGTERM/SIGINT. This file only handles flags.
func runDemo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("demo")
	interval := fs.Duration("interval", demo.DefaultInterval, "pause between messages after the first replay of the sample")
	freePorts := fs.Bool("free-ports", false, "use free loopback ports instead of HTTP 8025-8027, management 8035-8037, SMTP 2525-2527, gossip 7946-7948 and the customer's 2600")
	geoip := fs.String("geoip", "", "GeoIP2/GeoLite2 or DB-IP City .mmdb `file` to place the map's points (default: a built-in excerpt of DB-IP City Lite covering the sample)")
	level := fs.String("log-level", "warn", "the nodes' log `level` on stderr: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: mxgrid demo [--interval 2s] [--free-ports] [--geoip FILE] [--log-level warn]", errUsage)
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	return demo.Run(ctx, demo.Options{
		FreePorts: *freePorts,
		GeoIP:     *geoip,
		Interval:  *interval,
		Out:       stdout,
		Log:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})),
		Version:   buildVersion(),
	})
}
