// Package clamav is the clamd layer of antivirus: it streams each message
// to clamd with INSTREAM (clamd decodes MIME and archives itself with
// ScanMail and ScanArchive) and reports the signature it finds.
//
// clamd being down is an infrastructure failure, not a finding: the check
// returns it and the pipeline applies on_error. With accept the message
// goes on with X-Mxgrid-Virus-Scan: incomplete and /readyz says degraded;
// with tempfail the pipeline answers 451, and /readyz takes the node out
// of rotation, since it would refuse every message anyway.
package clamav

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/scanner"
)

// Names used in results and readiness.
const (
	// HealthComponent is the /readyz component clamd's state is reported as.
	HealthComponent = "clamd"
	// HeaderScan marks a message clamd could not scan; its value is
	// "incomplete".
	HeaderScan = "X-Mxgrid-Virus-Scan"
	// SymbolTooLarge (zero weight) explains a message above max_size.
	SymbolTooLarge = "CLAMAV_TOO_LARGE"
	// SymbolVirus names clamd's signature among the symbols, for the logs.
	SymbolVirus = "CLAMAV_VIRUS"
)

// Check scans messages with clamd. Safe for concurrent use.
type Check struct {
	cfg    Config
	client *Client
	health *health.Registry
	log    *slog.Logger
	down   atomic.Bool

	scans    *prometheus.CounterVec
	duration prometheus.Histogram
}

var _ scanner.Check = (*Check)(nil)

// New builds the check from a validated config whose clamd is set. Its
// readiness goes to h under HealthComponent.
func New(cfg Config, h *health.Registry, log *slog.Logger, reg prometheus.Registerer) (*Check, error) {
	if cfg.Clamd == "" {
		return nil, errors.New("clamav: clamd is not configured")
	}
	client, err := NewClient(cfg.Clamd, cfg.MaxConns)
	if err != nil {
		return nil, fmt.Errorf("clamav: clamd: %w", err)
	}
	f := promauto.With(reg)
	return &Check{
		cfg:    cfg,
		client: client,
		health: h,
		log:    log.With("component", "clamav"),
		scans: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_clamav_scans_total",
			Help: "Messages sent to clamd, by result (clean, virus, error, timeout, too_large). error, timeout and too_large messages went on unscanned (on_error=accept) or were tempfailed.",
		}, []string{"result"}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "mxgrid_clamav_scan_duration_seconds",
			Help:    "Time of one clamd scan, waiting for a connection slot included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}, nil
}

// Name implements scanner.Check.
func (c *Check) Name() string { return "clamav" }

// Stage is the pipeline stage for this check, under antivirus.on_error and
// antivirus.timeout. The pipeline adds the header to a message that goes
// on unscanned (on_error=accept): the check cannot when it failed.
func (c *Check) Stage() scanner.Stage {
	return scanner.NewStage(c, c.cfg.StageConfig, incomplete)
}

// incomplete marks a message clamd did not scan.
var incomplete = scanner.Header{Name: HeaderScan, Value: "incomplete"}

// Check implements scanner.Check. clamd failing (down, ERROR, the
// pipeline's deadline) is returned as an error: the pipeline applies
// on_error. A message above max_size is no failure: it goes on unscanned.
func (c *Check) Check(ctx context.Context, env *scanner.Envelope, msg *scanner.Message) (scanner.Result, error) {
	if msg.Size() > c.cfg.MaxSize {
		c.scans.WithLabelValues("too_large").Inc()
		return unscanned(SymbolTooLarge, fmt.Sprintf("%d bytes > max_size %d", msg.Size(), c.cfg.MaxSize)), nil
	}
	start := time.Now()
	virus, err := c.client.Scan(ctx, msg.Reader(0))
	c.duration.Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, ErrSizeLimit):
		// clamd works; its StreamMaxLength is below our max_size.
		c.markUp()
		c.scans.WithLabelValues("too_large").Inc()
		c.log.Warn("clamd refused a message over its StreamMaxLength; lower antivirus.max_size to match", "queue_id", env.QueueID, "size", msg.Size())
		return unscanned(SymbolTooLarge, "clamd StreamMaxLength exceeded"), nil
	case err != nil:
		result := "error"
		if errors.Is(err, context.DeadlineExceeded) {
			result = "timeout"
		}
		c.scans.WithLabelValues(result).Inc()
		c.markDown(err)
		return scanner.Result{}, fmt.Errorf("clamav: %w", err)
	}
	c.markUp()
	if virus == "" {
		c.scans.WithLabelValues("clean").Inc()
		return scanner.Result{}, nil
	}
	c.scans.WithLabelValues("virus").Inc()
	return scanner.Result{Virus: virus, Symbols: []scanner.Symbol{{Name: SymbolVirus, Detail: virus}}}, nil
}

func unscanned(symbol, detail string) scanner.Result {
	return scanner.Result{
		Symbols: []scanner.Symbol{{Name: symbol, Detail: detail}},
		Headers: []scanner.Header{incomplete},
	}
}

// Run PINGs clamd every probe_interval until ctx ends, so /readyz is right
// between messages and notices when clamd comes back.
func (c *Check) Run(ctx context.Context) error {
	c.probe(ctx)
	periodic.Every(ctx, c.cfg.ProbeInterval, nil, c.probe)
	return nil
}

func (c *Check) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := c.client.Ping(ctx); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return // shutting down: not clamd's fault
		}
		c.markDown(err)
		return
	}
	c.markUp()
}

// markDown reports clamd unusable: degraded when mail still flows
// (on_error=accept), not ready when every message would be tempfailed.
func (c *Check) markDown(err error) {
	level, consequence := health.Degraded, "mail is delivered unscanned with "+HeaderScan+": incomplete"
	if c.cfg.OnError == scanner.OnErrorTempfail {
		level, consequence = health.NotReady, "mail is tempfailed (451) until it answers"
	}
	c.health.Set(HealthComponent, level, fmt.Sprintf("clamd at %s: %v; %s", c.cfg.Clamd, err, consequence))
	if !c.down.Swap(true) {
		c.log.Warn("clamd unavailable", "clamd", c.cfg.Clamd, "on_error", string(c.cfg.OnError), "err", err)
	}
}

func (c *Check) markUp() {
	if c.down.Swap(false) {
		c.log.Info("clamd available again", "clamd", c.cfg.Clamd)
	}
	c.health.Set(HealthComponent, health.OK, "")
}
