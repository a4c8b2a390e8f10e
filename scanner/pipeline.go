package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/verdict"
)

// Stage is a check with the failure policy and deadline it runs under.
// The pipeline alone applies both: checks return their errors and honour
// the context they are given. Build stages with NewStage.
type Stage struct {
	Check   Check
	OnError OnError
	// Timeout is the check's deadline (its context's); the pipeline waits
	// StageMargin more for the answer. Zero means the scan's deadline.
	Timeout time.Duration
	// ErrorHeaders are added to the message when the check failed and was
	// skipped under on_error=accept, so the customer can see what was not
	// checked (X-Mxgrid-Virus-Scan: incomplete).
	ErrorHeaders []Header
}

// StageConfig is one check's failure policy and time budget: the on_error
// and timeout keys of every check's configuration section.
type StageConfig struct {
	// OnError is what happens to mail when the check cannot run (error,
	// timeout, panic): accept goes on without its findings, tempfail
	// answers 451.
	OnError OnError `yaml:"on_error"`
	// Timeout is the check's deadline; zero means the scan's (scanner.timeout).
	Timeout time.Duration `yaml:"timeout"`
}

// Validate reports the first invalid key, named relative to the section.
func (c StageConfig) Validate() error {
	if c.OnError != OnErrorAccept && c.OnError != OnErrorTempfail {
		return fmt.Errorf("on_error: %q is not accept or tempfail", c.OnError)
	}
	if c.Timeout < 0 {
		return errors.New("timeout: must not be negative")
	}
	return nil
}

// StageMargin is how long past a check's deadline the pipeline waits for
// its answer. A check that honours its context ends slow work at the
// deadline and still reports what it has (auth's temperror results, the
// blocklists that answered); the margin lets that answer arrive. A check
// still running after it has failed, and its on_error decides.
const StageMargin = time.Second

// NewStage is the one way a check becomes a stage, from its section's
// on_error and timeout. errorHeaders are added when the check fails under
// on_error=accept.
func NewStage(c Check, cfg StageConfig, errorHeaders ...Header) Stage {
	return Stage{Check: c, OnError: cfg.OnError, Timeout: cfg.Timeout, ErrorHeaders: errorHeaders}
}

// Pipeline runs the configured stages against every message. It is safe for
// concurrent use; the stage list is fixed at construction.
type Pipeline struct {
	stages  []Stage
	timeout time.Duration
	log     *slog.Logger

	checkDuration *prometheus.HistogramVec
	checkErrors   *prometheus.CounterVec
	verdicts      *prometheus.CounterVec
}

// SymbolCheckError is added, with zero weight, for every check that failed
// and was skipped under on_error=accept, so the verdict explains itself.
const SymbolCheckError = "CHECK_ERROR"

// NewPipeline builds a pipeline. timeout bounds the whole scan of one message.
func NewPipeline(stages []Stage, timeout time.Duration, log *slog.Logger, reg prometheus.Registerer) *Pipeline {
	f := promauto.With(reg)
	return &Pipeline{
		stages:  stages,
		timeout: timeout,
		log:     log,
		checkDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mxgrid_scanner_check_duration_seconds",
			Help:    "Time one check took for one message, by check and result (ok, error).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"check", "result"}),
		checkErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_scanner_check_errors_total",
			Help: "Checks that could not run (error, timeout or panic), by check and the on_error action taken (accept, tempfail).",
		}, []string{"check", "action"}),
		verdicts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_scanner_verdicts_total",
			Help: "Scan verdicts by action (deliver, tag, reject, tempfail) and reason (clean, spam, virus, policy, check_error).",
		}, []string{"action", "reason"}),
	}
}

// Checks lists the names of the configured checks, in order.
func (p *Pipeline) Checks() []string {
	names := make([]string, len(p.stages))
	for i, s := range p.stages {
		names[i] = s.Check.Name()
	}
	return names
}

type stageOutcome struct {
	res Result
	err error
}

// Scan runs every check on msg and decides with policy. It never fails: a
// check that cannot run is handled by its on_error setting.
func (p *Pipeline) Scan(ctx context.Context, env *Envelope, msg *Message, policy Policy) Verdict {
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	results := make([]chan stageOutcome, len(p.stages))
	waits := make([]context.Context, len(p.stages))
	for i, st := range p.stages {
		// The stage's deadline: the check's own plus the margin for its
		// answer, within the scan's.
		waits[i] = ctx
		if st.Timeout > 0 {
			var cancel context.CancelFunc
			waits[i], cancel = context.WithTimeout(ctx, st.Timeout+StageMargin)
			defer cancel()
		}
		results[i] = make(chan stageOutcome, 1)
		go func() { results[i] <- p.runStage(waits[i], st, env, msg) }()
	}
	// A check that ignores its context (CPU-bound work, a library call
	// without one) must not hold the sender past its deadline: it counts
	// as failed, and its late result goes unread into the buffered channel.
	outcomes := make([]stageOutcome, len(p.stages))
	for i, st := range p.stages {
		select {
		case outcomes[i] = <-results[i]:
			continue
		default:
		}
		select {
		case outcomes[i] = <-results[i]:
		case <-waits[i].Done():
			outcomes[i] = stageOutcome{err: fmt.Errorf("check %s: did not return by its deadline: %w", st.Check.Name(), waits[i].Err())}
		}
	}

	var v Verdict
	var cal Calibrator
	if msg != nil {
		v.Symbols = append(v.Symbols, msg.Symbols...)
	}
	for i, st := range p.stages {
		o := outcomes[i]
		name := st.Check.Name()
		if o.err != nil {
			action := st.OnError
			if action == "" {
				action = OnErrorAccept
			}
			p.checkErrors.WithLabelValues(name, string(action)).Inc()
			p.log.Warn("check failed", "check", name, "queue_id", env.QueueID, "on_error", string(action), "err", o.err)
			v.Incomplete = append(v.Incomplete, name)
			v.Symbols = append(v.Symbols, Symbol{Name: SymbolCheckError, Detail: name})
			if action == OnErrorAccept {
				v.Headers = append(v.Headers, st.ErrorHeaders...)
			}
			if action == OnErrorTempfail && v.Action != Tempfail {
				v.Action = Tempfail
				v.Reason = verdict.ReasonCheckError
				v.Detail = name + " unavailable"
			}
			continue
		}
		v.Symbols = append(v.Symbols, o.res.Symbols...)
		v.Headers = append(v.Headers, o.res.Headers...)
		v.AuthResults = append(v.AuthResults, o.res.AuthResults...)
		if o.res.Calibration != nil {
			cal = o.res.Calibration
		}
		if o.res.Virus != "" && v.Reason != verdict.ReasonVirus {
			v.Reason = verdict.ReasonVirus
			v.Detail = o.res.Virus
		}
		if o.res.Reject != "" && v.Reason == verdict.ReasonNone {
			v.Reason = verdict.ReasonPolicy
			v.Detail = o.res.Reject
		}
	}
	for _, s := range v.Symbols {
		v.Score += s.Score
	}
	if cal != nil {
		v.Probability, v.Calibrated = cal.Probability(v.Score), true
	}
	p.decide(&v, policy)
	reason := string(v.Reason)
	if v.Reason == verdict.ReasonNone {
		reason = "clean"
	}
	p.verdicts.WithLabelValues(v.Action.String(), reason).Inc()
	return v
}

// decide applies the policy. Order matters: a virus wins over everything;
// then a tempfail (a check that must run did not, and an allow list does
// not excuse skipping the virus scan); then the allow list over spam and
// policy verdicts; then a policy rejection; and the score decides the rest.
func (p *Pipeline) decide(v *Verdict, policy Policy) {
	switch {
	case v.Reason == verdict.ReasonVirus && policy.TagViruses:
		v.Action = Tag
	case v.Reason == verdict.ReasonVirus:
		v.Action = Reject
	case v.Action == Tempfail:
	case policy.Allowlisted:
		v.Action, v.Reason, v.Detail = Deliver, verdict.ReasonNone, ""
	case v.Reason == verdict.ReasonPolicy:
		v.Action = Reject
	case policy.RejectScore > 0 && v.Score >= policy.RejectScore:
		v.Action, v.Reason = Reject, verdict.ReasonSpam
	case policy.TagScore > 0 && v.Score >= policy.TagScore:
		v.Action, v.Reason = Tag, verdict.ReasonSpam
	default:
		v.Action = Deliver
	}
}

// runStage runs one check under its deadline; ctx carries the stage's
// (the check's plus StageMargin).
func (p *Pipeline) runStage(ctx context.Context, st Stage, env *Envelope, msg *Message) (out stageOutcome) {
	name := st.Check.Name()
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			// A panicking check is an error finding, never a silent pass.
			out = stageOutcome{err: fmt.Errorf("check %s panicked: %v\n%s", name, r, debug.Stack())}
		}
		result := "ok"
		if out.err != nil {
			result = "error"
		}
		p.checkDuration.WithLabelValues(name, result).Observe(time.Since(start).Seconds())
	}()
	checkCtx := ctx
	if st.Timeout > 0 {
		var cancel context.CancelFunc
		checkCtx, cancel = context.WithTimeout(ctx, st.Timeout)
		defer cancel()
	}
	res, err := st.Check.Check(checkCtx, env, msg)
	if err == nil && ctx.Err() != nil {
		// Answered after the stage's deadline: too late to count.
		err = ctx.Err()
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("check %s: deadline exceeded: %w", name, err)
		}
		return stageOutcome{err: err}
	}
	return stageOutcome{res: res}
}

func formatScore(f float64) string {
	return strconv.FormatFloat(f, 'f', 2, 64)
}
