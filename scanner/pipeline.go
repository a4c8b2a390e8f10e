package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/internal/workpool"
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
	// Local says the check works on the message alone, on the CPU, with no
	// network to wait for (the model, the rules, the built-in antivirus).
	// Local stages run one after the other on one goroutine, not each on
	// its own: a goroutine started and woken per stage and a wake-up of
	// Scan per result cost more than the checks of a small message. One
	// that takes longer than ChainPatience no longer holds the others
	// back: those not yet started then get goroutines of their own.
	Local bool
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
	// workers run the stages (each on its own goroutine, the Local ones
	// together on one) on goroutines kept for the next message: a check
	// goes deep, and a new goroutine's stack grew by doubling on the way
	// down every time.
	workers *workpool.Pool
	// untimed says some stage has no timeout of its own and runs under
	// the scan's deadline, which then needs a context.
	untimed bool
	// local lists the Local stages, in order: the chain one goroutine runs.
	local []int
	// chainPatience is ChainPatience, but for tests.
	chainPatience time.Duration

	checkDuration *prometheus.HistogramVec
	// durations holds each stage's observers for checkDuration, looked up
	// once on first use rather than per message (first use, as before, so
	// a series appears only once it has an observation).
	durations   []stageDurations
	checkErrors *prometheus.CounterVec
	verdicts    *prometheus.CounterVec
}

// SymbolCheckError is added, with zero weight, for every check that failed
// and was skipped under on_error=accept, so the verdict explains itself.
const SymbolCheckError = "CHECK_ERROR"

// SymbolAllowlistUnauthenticated is added, with zero weight, when the
// envelope sender is on the domain's allow list but nothing authenticated
// it, so the allow list was not applied: it tells a support desk why an
// allowed sender's mail was tagged or refused.
const SymbolAllowlistUnauthenticated = "ALLOWLIST_SENDER_UNAUTHENTICATED"

// NewPipeline builds a pipeline. timeout bounds the whole scan of one message.
func NewPipeline(stages []Stage, timeout time.Duration, log *slog.Logger, reg prometheus.Registerer) *Pipeline {
	f := promauto.With(reg)
	p := &Pipeline{
		stages:        stages,
		timeout:       timeout,
		log:           log,
		workers:       workpool.New(2 * time.Second),
		chainPatience: ChainPatience,
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
	p.durations = make([]stageDurations, len(stages))
	for i, st := range stages {
		p.untimed = p.untimed || st.Timeout <= 0
		p.durations[i] = stageDurations{ok: p.durationObserver(st, "ok"), failed: p.durationObserver(st, "error")}
		if st.Local {
			p.local = append(p.local, i)
		}
	}
	return p
}

// stageDurations are one stage's checkDuration observers by result.
type stageDurations struct{ ok, failed func() prometheus.Observer }

func (p *Pipeline) durationObserver(st Stage, result string) func() prometheus.Observer {
	return sync.OnceValue(func() prometheus.Observer { return p.checkDuration.WithLabelValues(st.Check.Name(), result) })
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

// ChainPatience is how long the Local stages may take, one after the
// other on one goroutine, before those not yet started get goroutines of
// their own: a check that hangs or crawls holds the others back no longer
// (their deadlines still count from the scan's start).
const ChainPatience = 50 * time.Millisecond

// Stage states in a scanRun: running until the goroutine running the
// check publishes its outcome (done) or Scan gives up on it (abandoned),
// whichever comes first.
const (
	stageRunning int32 = iota
	stageDone
	stageAbandoned
)

// scanRun is what one Scan shares with the goroutines running its checks.
// A new one for each scan: a check Scan gave up on may still write to it.
type scanRun struct {
	p         *Pipeline
	env       *Envelope
	msg       *Message
	stages    []runningStage
	pending   atomic.Int32  // stages still running
	settled   chan struct{} // a value once a check settles the last stage
	nextLocal atomic.Int32  // index into p.local of the next to be claimed
}

// runningStage is one stage of a scanRun. Its contexts and deadlines are
// set before any goroutine starts; result is written by the goroutine
// that ran the check, and read by Scan only once state says done.
type runningStage struct {
	checkCtx                context.Context
	checkDeadline, deadline time.Time
	state                   atomic.Int32
	result                  stageOutcome
}

// run runs stage i's check and publishes its outcome, unless Scan gave
// up on it meanwhile. The last stage to settle wakes Scan, once.
func (r *scanRun) run(i int) {
	s := &r.stages[i]
	s.result = r.p.runStage(s.checkCtx, i, s.checkDeadline, s.deadline, r.env, r.msg)
	if s.state.CompareAndSwap(stageRunning, stageDone) && r.pending.Add(-1) == 0 {
		r.settled <- struct{}{}
	}
}

// claimLocal takes the next Local stage not yet started, if any: for the
// goroutine running the chain, or for Scan handing the rest out.
func (r *scanRun) claimLocal() (int, bool) {
	k := int(r.nextLocal.Add(1)) - 1
	if k >= len(r.p.local) {
		return 0, false
	}
	return r.p.local[k], true
}

// runLocal runs the Local stages one after the other until none is left
// to claim.
func (r *scanRun) runLocal() {
	for i, ok := r.claimLocal(); ok; i, ok = r.claimLocal() {
		r.run(i)
	}
}

// scatter starts each Local stage not yet claimed on a goroutine of its
// own.
func (r *scanRun) scatter() {
	for i, ok := r.claimLocal(); ok; i, ok = r.claimLocal() {
		r.p.workers.Go(func() { r.run(i) })
	}
}

// waitTimers lends Scan the one timer it waits with; Stop and Reset leave
// no stale tick in its channel (Go 1.23 timers), so a timer can be reused.
// A stale tick would only wake await early: it fails a stage by the clock.
var waitTimers sync.Pool

// Scan runs every check on msg and decides with policy. It never fails: a
// check that cannot run is handled by its on_error setting.
func (p *Pipeline) Scan(ctx context.Context, env *Envelope, msg *Message, policy Policy) Verdict {
	now := time.Now()
	var scanDeadline time.Time // zero: only ctx's
	scanCtx := ctx
	if p.timeout > 0 {
		scanDeadline = now.Add(p.timeout)
		if p.untimed {
			sc := &stageContext{parent: ctx, deadline: scanDeadline}
			scanCtx = sc
			defer sc.stop()
		}
	}
	r := &scanRun{p: p, env: env, msg: msg, stages: make([]runningStage, len(p.stages)), settled: make(chan struct{}, 1)}
	r.pending.Store(int32(len(p.stages)))
	for i, st := range p.stages {
		// The stage's deadline: the check's own plus the margin for its
		// answer, within the scan's. A stage without a timeout has the
		// scan's. A check's own deadline hangs off ctx with the scan's
		// folded in, which is the same deadline without making the scan's
		// context track children.
		s := &r.stages[i]
		s.checkCtx, s.deadline = scanCtx, scanDeadline
		if st.Timeout > 0 {
			s.checkCtx, s.checkDeadline = ctx, now.Add(st.Timeout)
			s.deadline = now.Add(st.Timeout + StageMargin)
			if !scanDeadline.IsZero() {
				s.checkDeadline, s.deadline = earlier(s.checkDeadline, scanDeadline), earlier(s.deadline, scanDeadline)
			}
		}
	}
	for i, st := range p.stages {
		if !st.Local {
			p.workers.Go(func() { r.run(i) })
		}
	}
	var chainPatience time.Time // zero: nothing to hand out
	if len(p.local) > 0 {
		p.workers.Go(r.runLocal)
		if len(p.local) > 1 {
			chainPatience = now.Add(p.chainPatience)
		}
	}
	// Small pipelines keep their outcomes on the stack.
	var buf [8]stageOutcome
	outs := buf[:0]
	if len(p.stages) > len(buf) {
		outs = make([]stageOutcome, 0, len(p.stages))
	}
	outs = p.await(ctx, r, chainPatience, outs[:len(p.stages)])

	var v Verdict
	var cal Calibrator
	if n := symbolCount(msg, outs); n > 0 {
		// One allocation; a nil slice still for a verdict without symbols.
		v.Symbols = make([]Symbol, 0, n)
	}
	if msg != nil {
		v.Symbols = append(v.Symbols, msg.Symbols...)
	}
	for i, st := range p.stages {
		o := outs[i]
		name := st.Check.Name()
		if o.err != nil {
			action := st.OnError
			switch {
			case errors.Is(o.err, ErrBusy):
				action = OnErrorTempfail
			case action == "":
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
		v.SenderAuthenticated = v.SenderAuthenticated || o.res.SenderAuthenticated
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
// policy verdicts (a sender's only once authenticated); then a policy
// rejection; and the score decides the rest.
func (p *Pipeline) decide(v *Verdict, policy Policy) {
	allowed := policy.ClientAllowlisted || policy.SenderAllowlisted && v.SenderAuthenticated
	if policy.SenderAllowlisted && !allowed {
		v.Symbols = append(v.Symbols, Symbol{Name: SymbolAllowlistUnauthenticated})
	}
	switch {
	case v.Reason == verdict.ReasonVirus && policy.TagViruses:
		v.Action = Tag
	case v.Reason == verdict.ReasonVirus:
		v.Action = Reject
	case v.Action == Tempfail:
	case allowed:
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

// await fills in outs with every stage's outcome: its result, or a failure
// once its deadline or ctx has passed. A check that ignores its context
// (CPU-bound work, a library call without one) must not hold the sender
// past its deadline: it counts as failed, and its late result goes unread.
// One timer, set to the earliest deadline still out (or chainPatience,
// while Local stages wait to be started), stands for every stage's; the
// checks wake Scan once, when the last of them is done.
func (p *Pipeline) await(ctx context.Context, r *scanRun, chainPatience time.Time, outs []stageOutcome) []stageOutcome {
	var (
		timer *time.Timer
		armed time.Time
	)
	defer func() {
		if timer != nil {
			timer.Stop()
			waitTimers.Put(timer)
		}
	}()
	for r.pending.Load() > 0 {
		next := chainPatience
		for i := range r.stages {
			s := &r.stages[i]
			if s.state.Load() == stageRunning && !s.deadline.IsZero() && (next.IsZero() || s.deadline.Before(next)) {
				next = s.deadline
			}
		}
		var expired <-chan time.Time
		if !next.IsZero() {
			if !next.Equal(armed) {
				if timer == nil {
					timer, _ = waitTimers.Get().(*time.Timer)
				}
				if timer == nil {
					timer = time.NewTimer(time.Until(next))
				} else {
					timer.Reset(time.Until(next))
				}
				armed = next
			}
			expired = timer.C
		}
		select {
		case <-r.settled:
			continue
		case <-expired:
			armed = time.Time{}
		case <-ctx.Done():
		}
		now := time.Now()
		if !chainPatience.IsZero() && !now.Before(chainPatience) {
			r.scatter()
			chainPatience = time.Time{}
		}
		for i := range r.stages {
			s := &r.stages[i]
			err := ctx.Err()
			if err == nil {
				if s.deadline.IsZero() || now.Before(s.deadline) {
					continue
				}
				err = context.DeadlineExceeded
			}
			// An outcome already published counts, however close to its
			// deadline.
			if s.state.CompareAndSwap(stageRunning, stageAbandoned) {
				outs[i] = stageOutcome{err: fmt.Errorf("check %s: did not return by its deadline: %w", p.stages[i].Check.Name(), err)}
				r.pending.Add(-1)
			}
		}
	}
	for i := range r.stages {
		if s := &r.stages[i]; s.state.Load() == stageDone {
			outs[i] = s.result
		}
	}
	return outs
}

// symbolCount is how many symbols the verdict will hold, failures
// included, so they are gathered in one allocation.
func symbolCount(msg *Message, outs []stageOutcome) int {
	n := 0
	if msg != nil {
		n = len(msg.Symbols)
	}
	for _, o := range outs {
		if o.err != nil {
			n++
		} else {
			n += len(o.res.Symbols)
		}
	}
	return n
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// runStage runs stage i's check. Under a timeout of its own the check gets
// ctx ending at checkDeadline; otherwise ctx is the scan's. An answer after
// deadline (the stage's, the check's plus StageMargin) is too late to count.
func (p *Pipeline) runStage(ctx context.Context, i int, checkDeadline, deadline time.Time, env *Envelope, msg *Message) (out stageOutcome) {
	st := &p.stages[i]
	name := st.Check.Name()
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			// A panicking check is an error finding, never a silent pass.
			out = stageOutcome{err: fmt.Errorf("check %s panicked: %v\n%s", name, r, debug.Stack())}
		}
		observe := p.durations[i].ok
		if out.err != nil {
			observe = p.durations[i].failed
		}
		observe().Observe(time.Since(start).Seconds())
	}()
	checkCtx := ctx
	if !checkDeadline.IsZero() {
		sc := &stageContext{parent: ctx, deadline: checkDeadline}
		checkCtx = sc
		defer sc.stop()
	}
	res, err := st.Check.Check(checkCtx, env, msg)
	if err == nil {
		err = ctx.Err()
		if err == nil && !deadline.IsZero() && !time.Now().Before(deadline) {
			err = context.DeadlineExceeded
		}
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("check %s: deadline exceeded: %w", name, err)
		}
		return stageOutcome{err: err}
	}
	return stageOutcome{res: res}
}
