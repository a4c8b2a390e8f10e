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

	// unanswered is set when clamd did not answer a PING: hung (stopped,
	// its host frozen: connections are accepted and nothing answers) or
	// gone. Scans then fail at once and on_error applies, instead of each
	// message waiting out the timeout (a clamd that refuses connections
	// costs nothing, a hung one held every message and filled the node's
	// sessions), and Run PINGs every unansweredProbe until clamd answers.
	unanswered atomic.Bool
	// wake and probeNow ask Run for a probe now: a scan failed, and only
	// a PING tells a hung clamd from a message clamd is slow on.
	wake      chan struct{}
	probeNow  atomic.Bool
	lastProbe time.Time // Run's own

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
		wake:   make(chan struct{}, 1),
		log:    log.With("component", "clamav"),
		scans: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_clamav_scans_total",
			Help: "Messages for clamd, by result (clean, virus, error, timeout, too_large, unavailable: not sent, clamd did not answer its last PING). error, timeout, too_large and unavailable messages went on unscanned (on_error=accept) or were tempfailed.",
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

// errUnanswered fails a scan at once while clamd does not answer PINGs.
var errUnanswered = errors.New("clamd: not answering (its last PING got no reply), not waiting for it")

// Check implements scanner.Check. clamd failing (down, ERROR, the
// pipeline's deadline, not answering PINGs) is returned as an error: the
// pipeline applies on_error. A message above max_size is no failure: it
// goes on unscanned.
func (c *Check) Check(ctx context.Context, env *scanner.Envelope, msg *scanner.Message) (scanner.Result, error) {
	if msg.Size() > c.cfg.MaxSize {
		c.scans.WithLabelValues("too_large").Inc()
		return unscanned(SymbolTooLarge, fmt.Sprintf("%d bytes > max_size %d", msg.Size(), c.cfg.MaxSize)), nil
	}
	if c.unanswered.Load() {
		c.scans.WithLabelValues("unavailable").Inc()
		return scanner.Result{}, errUnanswered
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
		c.probeNow.Store(true)
		select {
		case c.wake <- struct{}{}:
		default:
		}
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

// unansweredProbe is how often clamd is PINGed while it does not answer:
// scans skip it meanwhile, so its return must be noticed soon. A PING
// waiting in a stopped clamd's backlog is answered as soon as it goes on.
const unansweredProbe = time.Second

// Run PINGs clamd every probe_interval until ctx ends, so /readyz is right
// between messages and notices when clamd comes back; at once after a
// failed scan, and every unansweredProbe while clamd does not answer.
// Without Run, scans never skip clamd.
func (c *Check) Run(ctx context.Context) error {
	c.probe(ctx)
	periodic.Every(ctx, min(c.cfg.ProbeInterval, unansweredProbe), c.wake, func(ctx context.Context) {
		if c.probeNow.Swap(false) || c.unanswered.Load() || time.Since(c.lastProbe) >= c.cfg.ProbeInterval {
			c.probe(ctx)
		}
	})
	return nil
}

func (c *Check) probe(ctx context.Context) {
	c.lastProbe = time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := c.client.Ping(ctx); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return // shutting down: not clamd's fault
		}
		c.unanswered.Store(true)
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
	c.unanswered.Store(false)
	if c.down.Swap(false) {
		c.log.Info("clamd available again", "clamd", c.cfg.Clamd)
	}
	c.health.Set(HealthComponent, health.OK, "")
}
