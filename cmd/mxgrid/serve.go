package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/node"
)

// runServe runs a node until SIGTERM/SIGINT. The wiring of the node's parts
// lives in package node (node/node.go, node/pipeline.go), shared with the
// end-to-end tests and `mxgrid demo`; this file only handles flags.
func runServe(ctx context.Context, args []string, _ io.Writer) error {
	fs := newFlagSet("serve")
	path := fs.String("config", "", "YAML configuration `file` (defaults: a loopback node, data in ./data)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// `mxgrid serve mxgrid.yaml` started a default node, data in ./data,
	// with the file not read at all.
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: mxgrid serve [--config FILE]: %q is not a flag", errUsage, fs.Arg(0))
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, os.Stderr)
	// An operator's GOMEMLIMIT is the runtime's, and stays. An empty one
	// is no limit to the runtime, as unset: a compose file's
	// "GOMEMLIMIT=${GOMEMLIMIT}" must not leave the node with none at all.
	operatorLimit := os.Getenv("GOMEMLIMIT") != ""
	n, err := node.New(ctx, cfg, node.Options{Log: log, Version: buildVersion(), MemoryLimit: !operatorLimit})
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		// JSON leaves C1 controls and bidi overrides raw in its strings,
		// and log values quote senders: a log viewer or terminal would act
		// on them. The text handler already quotes them.
		return slog.New(slog.NewJSONHandler(visibleJSONWriter{w}, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
