package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/node"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/verdict"
)

// runScan scans message files with the pipeline a node would build from
// the same config, minus the checks that need the network, and explains
// every verdict.
func runScan(ctx context.Context, args []string, stdout io.Writer) error {
	fset := newFlagSet("scan")
	format := fset.String("format", "text", "output `format`: text, json (one object per line) or tsv (path, verdict, score, symbols, action, reason, detail)")
	cfgPath := fset.String("config", "", "YAML configuration `file` (default: built-in defaults)")
	workers := fset.Int("workers", runtime.GOMAXPROCS(0), "messages scanned in parallel")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if fset.NArg() == 0 || (*format != "text" && *format != "json" && *format != "tsv") {
		return fmt.Errorf("%w: mxgrid scan [--format text|json|tsv] PATH...", errUsage)
	}
	if *workers < 1 {
		return fmt.Errorf("%w: -workers %d: at least 1", errUsage, *workers)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	files, err := messageFiles(fset.Args())
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg := prometheus.NewRegistry()
	var skipped []string
	stages, err := node.Stages(&cfg, node.StageEnv{Log: log, Registry: reg, Health: health.New(), Offline: true, Skipped: &skipped})
	if err != nil {
		return err
	}
	p := scanner.NewPipeline(stages, cfg.Scanner.Timeout, log, reg)
	parser := scanner.NewParser(cfg.Scanner.Weights).WithLimits(cfg.Scanner.Limits)
	policy := cfg.Scanner.Policy()
	if len(skipped) > 0 {
		// On stderr so tsv and json output stay machine-readable.
		fmt.Fprintf(os.Stderr, "mxgrid scan: offline: skipped network checks: %s\n", strings.Join(skipped, ", "))
	}

	// Scan in parallel, print in input order: results are written as soon
	// as every earlier file is done.
	results := make([]chan scanResult, len(files))
	for i := range results {
		results[i] = make(chan scanResult, 1)
	}
	next := make(chan int)
	var wg sync.WaitGroup
	// One worker per file at most: each is a goroutine, and -workers
	// 9223372036854775807 started them until the machine ran out of memory.
	for range min(*workers, len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] <- scanFile(ctx, p, parser, policy, files[i], int(cfg.SMTP.MaxMessageBytes))
			}
		}()
	}
	go func() {
		defer close(next)
		for i := range files {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	w := newVerdictWriter(*format, stdout, skipped)
	var werr error
	for i := range files {
		var r scanResult
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		if err := w.write(r); err != nil && werr == nil {
			werr = err
		}
	}
	wg.Wait()
	return werr
}

type scanResult struct {
	path    string
	err     error
	verdict scanner.Verdict
}

// scanFile reads at most limit bytes (smtp.max_message_bytes): a node
// never scans a larger message, and a path such as /dev/zero was read
// until the machine ran out of memory.
func scanFile(ctx context.Context, p *scanner.Pipeline, parser *scanner.Parser, policy scanner.Policy, path string, limit int) scanResult {
	raw, err := fsperm.ReadLimited(path, limit, "a message (smtp.max_message_bytes)")
	if err != nil {
		return scanResult{path: path, err: err}
	}
	// Offline there is no SMTP session: the envelope is empty and the
	// checks that need it (HELO, SPF) have nothing to judge. The line ends
	// are read as a node reads them: a file saved from a mailbox ends its
	// lines in LF, old Mac OS mail in CR.
	v := p.Scan(ctx, &scanner.Envelope{}, parser.Parse(smtpd.NormalizeNewlines(raw)), policy)
	return scanResult{path: path, verdict: v}
}

// messageFiles expands directories (recursively, hidden files skipped)
// and keeps files as given, in argument order.
func messageFiles(paths []string) ([]string, error) {
	var out []string
	for _, root := range paths {
		st, err := os.Stat(root)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, root)
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && path != root {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", root, err)
		}
	}
	return out, nil
}

// spamLabel is the tsv/json verdict: spam when the node would tag or
// reject the message for its score.
func spamLabel(v scanner.Verdict) string {
	if v.Action == scanner.Tag || v.Action == scanner.Reject {
		return "spam"
	}
	return "ham"
}

type verdictWriter struct {
	format  string
	w       io.Writer
	skipped []string
	enc     *json.Encoder
}

func newVerdictWriter(format string, w io.Writer, skipped []string) *verdictWriter {
	return &verdictWriter{format: format, w: w, skipped: skipped, enc: json.NewEncoder(visibleJSONWriter{w})}
}

type jsonVerdict struct {
	Path    string  `json:"path"`
	Verdict string  `json:"verdict,omitempty"`
	Action  string  `json:"action,omitempty"`
	Reason  string  `json:"reason,omitempty"`
	Detail  string  `json:"detail,omitempty"`
	Score   float64 `json:"score"`
	// Probability is the calibrated spam probability (absent when the
	// model did not run).
	Probability *float64         `json:"probability,omitempty"`
	Symbols     []scanner.Symbol `json:"symbols,omitempty"`
	Incomplete  []string         `json:"incomplete,omitempty"`
	Skipped     []string         `json:"skipped,omitempty"`
	Error       string           `json:"error,omitempty"`
}

func (vw *verdictWriter) write(r scanResult) error {
	v := r.verdict
	syms := v.TopSymbols(len(v.Symbols)) // strongest evidence first
	switch vw.format {
	case "json":
		j := jsonVerdict{Path: r.path, Skipped: vw.skipped}
		if r.err != nil {
			j.Error = r.err.Error()
		} else {
			j.Verdict, j.Action, j.Reason, j.Detail, j.Score, j.Symbols, j.Incomplete = spamLabel(v), v.Action.String(), string(v.Reason), v.Detail, round2(v.Score), syms, v.Incomplete
			if v.Calibrated {
				p := math.Round(v.Probability*1e4) / 1e4
				j.Probability = &p
			}
		}
		return vw.enc.Encode(j)
	case "tsv":
		// Columns: path, verdict, score, symbols, action, reason, detail.
		// Without the last three a virus or policy rejection read like an
		// ordinary spam score. They come last so scripts cutting the
		// first four columns keep working; every row has all seven.
		if r.err != nil {
			_, err := fmt.Fprintf(vw.w, "%s\terror\t0\t%s\t\t\t\n", tsvField(r.path), tsvField(r.err.Error()))
			return err
		}
		_, err := fmt.Fprintf(vw.w, "%s\t%s\t%.2f\t%s\t%s\t%s\t%s\n", tsvField(r.path), spamLabel(v), v.Score, scanner.SymbolNames(syms),
			v.Action, v.Reason, tsvField(v.Detail))
		return err
	}
	// The text is for a terminal: file names and the details, which quote
	// what a message says of itself, are spelled out where a terminal
	// would act on them (visible), as the admin tables are.
	if r.err != nil {
		_, err := fmt.Fprintf(vw.w, "%s: error: %s\n", visible(r.path), visible(r.err.Error()))
		return err
	}
	var b strings.Builder
	// The reason says why: a virus or a policy refusal is not a spam score.
	why := v.Action.String()
	if v.Reason != verdict.ReasonNone && v.Reason != verdict.ReasonSpam {
		why += ": " + string(v.Reason)
		if v.Detail != "" {
			why += " " + visible(v.Detail)
		}
	}
	fmt.Fprintf(&b, "%s: %s (%s) score %.2f", visible(r.path), spamLabel(v), why, v.Score)
	if v.Calibrated {
		fmt.Fprintf(&b, ", spam probability %.4f", v.Probability)
	}
	b.WriteByte('\n')
	for _, s := range syms {
		fmt.Fprintf(&b, "  %-22s %7.2f  %s\n", s.Name, s.Score, visible(s.Detail))
	}
	if len(v.Incomplete) > 0 {
		fmt.Fprintf(&b, "  checks failed (skipped): %s\n", strings.Join(v.Incomplete, ", "))
	}
	_, err := io.WriteString(vw.w, b.String())
	return err
}

// tsvField escapes a backslash, tab, newline and carriage return as
// PostgreSQL's COPY text format does: a file name may hold any of them,
// and a row must stay one line of seven fields that gives the name back.
// Every other character a terminal acts on or does not show (C0, DEL, C1,
// the bidirectional overrides, zero-width characters: what visible spells
// out) is written as COPY's \xHH of each of its bytes: mail clients save
// a message under its Subject, and an ESC in the name reached the
// terminal showing the rows, a U+202E ran it backwards.
func tsvField(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == utf8.RuneError && n == 1:
			// A byte that is no UTF-8 stays as it is (a Latin-1 file name
			// must come back as it was), but for Latin-1's C1 controls.
			if s[0] < 0xa0 {
				fmt.Fprintf(&b, `\x%02x`, s[0])
			} else {
				b.WriteByte(s[0])
			}
		case !unicode.IsGraphic(r):
			for _, c := range []byte(s[:n]) {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
