package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/mxgrid/mxgrid/loadgen"
)

// runLoadgen sends load to nodes (`mxgrid loadgen ADDR...`) or runs the
// counting sink (`mxgrid loadgen sink`); the logic lives in package loadgen.
func runLoadgen(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "sink" {
		return runLoadgenSink(ctx, args[1:], stdout)
	}
	def := loadgen.DefaultConfig()
	fs := newFlagSet("loadgen")
	sessions := fs.Int("sessions", def.Sessions, "concurrent SMTP sessions")
	messages := fs.Int("messages", def.Messages, "messages to deliver")
	size := fs.Int("size", def.Size, "synthetic message size in `bytes`")
	corpus := fs.String("corpus", "", "`dir` of messages to send in turn instead of synthetic mail")
	from := fs.String("from", def.From, "envelope sender")
	to := fs.String("to", def.To, "envelope recipient")
	retry := fs.Duration("retry", def.RetryDelay, "wait after a first 4xx (doubles per 4xx)")
	maxRetry := fs.Duration("max-retry", def.MaxRetryDelay, "longest wait between retries")
	deadline := fs.Duration("deadline", 10*time.Minute, "give up on messages still not final after this long")
	records := fs.String("records", "", "write each message's outcome to this TSV `file`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: mxgrid loadgen [flags] HOST:PORT... | mxgrid loadgen sink --listen HOST:PORT --report FILE", errUsage)
	}
	cfg := def
	cfg.Targets = fs.Args()
	cfg.Sessions, cfg.Messages, cfg.Size, cfg.Corpus = *sessions, *messages, *size, *corpus
	cfg.From, cfg.To, cfg.RetryDelay, cfg.MaxRetryDelay = *from, *to, *retry, *maxRetry
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(ctx, *deadline)
	defer cancel()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	res.Print(stdout)
	if *records != "" {
		if err := res.WriteRecords(*records); err != nil {
			return err
		}
	}
	if s := res.Summarize(); s.Pending > 0 {
		return fmt.Errorf("%d messages still not delivered after %v", s.Pending, *deadline)
	}
	return nil
}

// runLoadgenSink counts arriving ids until SIGTERM/SIGINT, then prints the
// totals. Restarted with the same report file it goes on counting.
func runLoadgenSink(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("loadgen sink")
	listen := fs.String("listen", "127.0.0.1:2526", "loopback `host:port` to accept mail on")
	report := fs.String("report", "", "append each accepted id to this `file` (read back on restart)")
	grace := fs.Duration("grace", 5*time.Second, "on stop, how long transactions in flight may finish")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *report == "" {
		return fmt.Errorf("%w: mxgrid loadgen sink --listen HOST:PORT --report FILE", errUsage)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sink, err := loadgen.NewSink(loadgen.SinkConfig{Listen: *listen, Report: *report, Grace: *grace, Log: log})
	if err != nil {
		return err
	}
	log.Info("sink listening", "addr", sink.Addr(), "report", *report)
	err = sink.Run(ctx)
	counts, total := sink.Counts()
	dups := 0
	for _, n := range counts {
		dups += n - 1
	}
	fmt.Fprintf(stdout, "accepted %d messages, %d distinct ids, %d duplicates\n", total, len(counts), dups)
	return err
}
