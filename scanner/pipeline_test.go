package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/verdict"
)

// fakeCheck injects results and failures; the pipeline's own logic is what
// these tests exercise.
type fakeCheck struct {
	name  string
	res   Result
	err   error
	panic bool
	sleep time.Duration
}

func (f fakeCheck) Name() string { return f.name }

func (f fakeCheck) Check(ctx context.Context, _ *Envelope, _ *Message) (Result, error) {
	if f.panic {
		panic("boom")
	}
	if f.sleep > 0 {
		select {
		case <-time.After(f.sleep):
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
	return f.res, f.err
}

func sym(name string, score float64) Result {
	return Result{Symbols: []Symbol{{Name: name, Score: score}}}
}

func TestPipelineDecides(t *testing.T) {
	policy := Policy{TagScore: 5, RejectScore: 10}
	tests := []struct {
		name       string
		stages     []Stage
		policy     Policy
		wantAction Action
		wantReason verdict.Reason
		wantScore  float64
	}{
		{"clean", []Stage{{Check: fakeCheck{name: "a", res: sym("X", 1)}}}, policy, Deliver, "", 1},
		{"scores add up to tag", []Stage{{Check: fakeCheck{name: "a", res: sym("X", 3)}}, {Check: fakeCheck{name: "b", res: sym("Y", 2.5)}}}, policy, Tag, "spam", 5.5},
		{"reject score", []Stage{{Check: fakeCheck{name: "a", res: sym("X", 12)}}}, policy, Reject, "spam", 12},
		{"virus rejects whatever the score", []Stage{{Check: fakeCheck{name: "av", res: Result{Virus: "EICAR"}}}, {Check: fakeCheck{name: "b", res: sym("HAM", -20)}}}, policy, Reject, "virus", -20},
		{"virus tagged on request", []Stage{{Check: fakeCheck{name: "av", res: Result{Virus: "EICAR"}}}}, Policy{TagScore: 5, RejectScore: 10, TagViruses: true}, Tag, "virus", 0},
		{"policy reject", []Stage{{Check: fakeCheck{name: "auth", res: Result{Reject: "DMARC"}}}}, policy, Reject, "policy", 0},
		{"client allow list beats spam", []Stage{{Check: fakeCheck{name: "a", res: sym("X", 50)}}}, Policy{TagScore: 5, RejectScore: 10, ClientAllowlisted: true}, Deliver, "", 50},
		{"authenticated sender on the allow list beats spam", []Stage{{Check: fakeCheck{name: "a", res: sym("X", 50)}}, {Check: fakeCheck{name: "auth", res: Result{SenderAuthenticated: true}}}},
			Policy{TagScore: 5, RejectScore: 10, SenderAllowlisted: true}, Deliver, "", 50},
		{"unauthenticated sender on the allow list is judged as any other", []Stage{{Check: fakeCheck{name: "a", res: sym("X", 50)}}, {Check: fakeCheck{name: "auth", res: Result{}}}},
			Policy{TagScore: 5, RejectScore: 10, SenderAllowlisted: true}, Reject, "spam", 50},
		{"allow list does not beat a policy rejection for an unauthenticated sender", []Stage{{Check: fakeCheck{name: "auth", res: Result{Reject: "DMARC"}}}},
			Policy{TagScore: 5, RejectScore: 10, SenderAllowlisted: true}, Reject, "policy", 0},
		{"allow list does not beat a virus", []Stage{{Check: fakeCheck{name: "av", res: Result{Virus: "EICAR", SenderAuthenticated: true}}}}, Policy{TagScore: 5, RejectScore: 10, ClientAllowlisted: true, SenderAllowlisted: true}, Reject, "virus", 0},
		{"error with on_error accept delivers", []Stage{{Check: fakeCheck{name: "clamd", err: errors.New("down")}, OnError: OnErrorAccept}}, policy, Deliver, "", 0},
		{"a busy check tempfails even with on_error accept", []Stage{{Check: fakeCheck{name: "antivirus", err: fmt.Errorf("pool: %w", ErrBusy)}, OnError: OnErrorAccept}}, policy, Tempfail, "check_error", 0},
		{"error with on_error tempfail", []Stage{{Check: fakeCheck{name: "clamd", err: errors.New("down")}, OnError: OnErrorTempfail}, {Check: fakeCheck{name: "a", res: sym("X", 20)}}}, policy, Tempfail, "check_error", 20},
		{"tempfail beats the allow list", []Stage{{Check: fakeCheck{name: "clamd", err: errors.New("down")}, OnError: OnErrorTempfail}}, Policy{TagScore: 5, RejectScore: 10, ClientAllowlisted: true}, Tempfail, "check_error", 0},
		{"panic is an error, not a pass", []Stage{{Check: fakeCheck{name: "p", panic: true}, OnError: OnErrorTempfail}}, policy, Tempfail, "check_error", 0},
		{"timeout is an error", []Stage{{Check: fakeCheck{name: "slow", sleep: time.Minute}, OnError: OnErrorTempfail, Timeout: 20 * time.Millisecond}}, policy, Tempfail, "check_error", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPipeline(tt.stages, 5*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
			v := p.Scan(context.Background(), &Envelope{}, &Message{}, tt.policy)
			if v.Action != tt.wantAction || v.Reason != tt.wantReason || v.Score != tt.wantScore {
				t.Fatalf("got %v/%q/%.2f, want %v/%q/%.2f (symbols %v)", v.Action, v.Reason, v.Score, tt.wantAction, tt.wantReason, tt.wantScore, v.Symbols)
			}
			explained := strings.Contains(SymbolNames(v.Symbols), SymbolAllowlistUnauthenticated)
			if want := tt.policy.SenderAllowlisted && !v.SenderAuthenticated; explained != want {
				t.Errorf("symbols %s: %s present = %v, want %v", SymbolNames(v.Symbols), SymbolAllowlistUnauthenticated, explained, want)
			}
		})
	}
}

func TestFailedCheckIsExplained(t *testing.T) {
	hdr := Header{Name: "X-Mxgrid-Virus-Scan", Value: "incomplete"}
	p := NewPipeline([]Stage{{Check: fakeCheck{name: "clamd", err: errors.New("connection refused")}, ErrorHeaders: []Header{hdr}}}, time.Second,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	v := p.Scan(context.Background(), &Envelope{}, &Message{}, Policy{TagScore: 5, RejectScore: 10})
	if len(v.Incomplete) != 1 || v.Incomplete[0] != "clamd" {
		t.Fatalf("Incomplete = %v", v.Incomplete)
	}
	if len(v.Headers) != 1 || v.Headers[0] != hdr {
		t.Fatalf("headers = %v, want the check's error header", v.Headers)
	}
	if SymbolNames(v.Symbols) != "CHECK_ERROR(0.00)" {
		t.Fatalf("symbols = %s", SymbolNames(v.Symbols))
	}
}

// stuckCheck ignores its context, like CPU-bound work or a library call
// without one, until released.
type stuckCheck struct{ release chan struct{} }

func (stuckCheck) Name() string { return "stuck" }

func (c stuckCheck) Check(context.Context, *Envelope, *Message) (Result, error) {
	<-c.release
	return Result{}, nil
}

// The scan deadline holds even for a check that ignores it: the sender is
// answered by the check's on_error, not kept waiting for the check.
func TestStuckCheckDoesNotOutliveTheDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	p := NewPipeline([]Stage{{Check: stuckCheck{release}, OnError: OnErrorTempfail}, {Check: fakeCheck{name: "a", res: sym("X", 1)}}},
		100*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	done := make(chan Verdict, 1)
	go func() {
		done <- p.Scan(context.Background(), &Envelope{}, &Message{}, Policy{TagScore: 5, RejectScore: 10})
	}()
	select {
	case v := <-done:
		if v.Action != Tempfail || len(v.Incomplete) != 1 || v.Incomplete[0] != "stuck" || v.Score != 1 {
			t.Fatalf("got %v incomplete=%v score=%.2f, want a tempfail for stuck and the other check's score", v.Action, v.Incomplete, v.Score)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Scan waited for a check past the scan deadline")
	}
}

// lateCheck honours its deadline the way auth and dnsbl do: it stops at
// ctx's end and reports what it has.
type lateCheck struct{}

func (lateCheck) Name() string { return "late" }

func (lateCheck) Check(ctx context.Context, _ *Envelope, _ *Message) (Result, error) {
	<-ctx.Done()
	return sym("PARTIAL", 1), nil
}

// The pipeline alone applies a stage's timeout: the check's context ends
// at Timeout, an answer within StageMargin after it counts, and a check
// that ignores its deadline fails at Timeout+StageMargin, long before the
// scan's own deadline.
func TestStageDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	const timeout = 50 * time.Millisecond
	p := NewPipeline([]Stage{
		NewStage(lateCheck{}, StageConfig{OnError: OnErrorTempfail, Timeout: timeout}),
		NewStage(stuckCheck{release}, StageConfig{OnError: OnErrorAccept, Timeout: timeout}),
	}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	start := time.Now()
	v := p.Scan(context.Background(), &Envelope{}, &Message{}, Policy{TagScore: 5, RejectScore: 10})
	took := time.Since(start)
	if v.Action != Deliver || v.Score != 1 || len(v.Incomplete) != 1 || v.Incomplete[0] != "stuck" {
		t.Fatalf("got %v score=%.2f incomplete=%v, want the late check's answer and stuck skipped", v.Action, v.Score, v.Incomplete)
	}
	if took < timeout+StageMargin || took > timeout+StageMargin+5*time.Second {
		t.Errorf("scan took %v, want about %v (the stuck check's deadline plus the margin)", took, timeout+StageMargin)
	}
}

// sleepyCheck ignores its context and answers after sleep.
type sleepyCheck struct {
	name  string
	sleep time.Duration
}

func (c sleepyCheck) Name() string { return c.name }

func (c sleepyCheck) Check(context.Context, *Envelope, *Message) (Result, error) {
	time.Sleep(c.sleep)
	return sym("LATE_"+c.name, 1), nil
}

// An answer that comes after its stage's deadline does not count, even
// while the scan still waits for another check; the other check's answer,
// in time, does.
func TestAnswerPastTheStageDeadlineDoesNotCount(t *testing.T) {
	t.Parallel()
	const timeout = 20 * time.Millisecond
	p := NewPipeline([]Stage{
		NewStage(sleepyCheck{"late", timeout + StageMargin + 100*time.Millisecond}, StageConfig{OnError: OnErrorAccept, Timeout: timeout}),
		NewStage(fakeCheck{name: "slow", sleep: timeout + StageMargin + 300*time.Millisecond, res: sym("SLOW", 2)}, StageConfig{OnError: OnErrorAccept}),
	}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	v := p.Scan(context.Background(), &Envelope{}, &Message{}, Policy{TagScore: 5, RejectScore: 10})
	if got := SymbolNames(v.Symbols); got != "CHECK_ERROR(0.00),SLOW(2.00)" || len(v.Incomplete) != 1 || v.Incomplete[0] != "late" {
		t.Fatalf("symbols %s incomplete %v, want late skipped and slow counted", SymbolNames(v.Symbols), v.Incomplete)
	}
}

// A caller that gives up (the SMTP session ended) ends the scan at once,
// every check still out counting as failed.
func TestScanEndsWithItsContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	p := NewPipeline([]Stage{
		NewStage(stuckCheck{release}, StageConfig{OnError: OnErrorTempfail, Timeout: time.Minute}),
		NewStage(fakeCheck{name: "slow", sleep: time.Minute}, StageConfig{OnError: OnErrorAccept}),
		NewStage(fakeCheck{name: "a", res: sym("X", 1)}, StageConfig{OnError: OnErrorAccept}),
	}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	v := p.Scan(ctx, &Envelope{}, &Message{}, Policy{TagScore: 5, RejectScore: 10})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("scan took %v after its context ended", took)
	}
	if v.Action != Tempfail || v.Score != 1 || strings.Join(v.Incomplete, ",") != "stuck,slow" {
		t.Fatalf("got %v score=%.2f incomplete=%v, want a tempfail for stuck, slow skipped, a's score", v.Action, v.Score, v.Incomplete)
	}
}

// twiceCheck ignores its context: its first call answers FIRST once
// released, its second SECOND after a short while.
type twiceCheck struct {
	calls   *atomic.Int32
	release chan struct{}
}

func (twiceCheck) Name() string { return "twice" }

func (c twiceCheck) Check(context.Context, *Envelope, *Message) (Result, error) {
	if c.calls.Add(1) == 1 {
		<-c.release
		return sym("FIRST", 1), nil
	}
	time.Sleep(50 * time.Millisecond)
	return sym("SECOND", 1), nil
}

// A result that comes after its scan gave up on it is read by no scan,
// not even the next one of the same pipeline.
func TestLateResultDoesNotReachTheNextScan(t *testing.T) {
	// One P: anything the first scan left to be reused, the second gets.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	release := make(chan struct{})
	p := NewPipeline([]Stage{
		NewStage(twiceCheck{new(atomic.Int32), release}, StageConfig{OnError: OnErrorAccept, Timeout: 10 * time.Millisecond}),
	}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if v := p.Scan(context.Background(), &Envelope{}, &Message{}, Policy{}); len(v.Incomplete) != 1 {
		t.Fatalf("first scan: incomplete %v, want twice given up on", v.Incomplete)
	}
	close(release)
	time.Sleep(50 * time.Millisecond) // for the late FIRST to be sent
	if v := p.Scan(context.Background(), &Envelope{}, &Message{}, Policy{}); SymbolNames(v.Symbols) != "SECOND(1.00)" {
		t.Fatalf("second scan: symbols %s, want its own check's SECOND", SymbolNames(v.Symbols))
	}
}

// Check durations are observed per check and result, a series appearing
// with its first observation, and nothing for what did not happen.
func TestCheckDurationSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := NewPipeline([]Stage{
		{Check: fakeCheck{name: "ok", res: sym("X", 1)}},
		{Check: fakeCheck{name: "bad", err: errors.New("down")}},
		{Check: fakeCheck{name: "p", panic: true}, Timeout: time.Second},
	}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	series := func() map[string]uint64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]uint64{}
		for _, mf := range mfs {
			if mf.GetName() != "mxgrid_scanner_check_duration_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetValue())
				}
				got[strings.Join(labels, "/")] = m.GetHistogram().GetSampleCount()
			}
		}
		return got
	}
	if got := series(); len(got) != 0 {
		t.Fatalf("before any scan: %v", got)
	}
	for n := uint64(1); n <= 2; n++ {
		p.Scan(context.Background(), &Envelope{}, &Message{}, Policy{})
		want := map[string]uint64{"ok/ok": n, "bad/error": n, "p/error": n}
		if got := series(); len(got) != len(want) || got["ok/ok"] != n || got["bad/error"] != n || got["p/error"] != n {
			t.Fatalf("after %d scans: %v, want %v", n, got, want)
		}
	}
}

func TestStageConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  StageConfig
		want string // error prefix; "" for valid
	}{
		{StageConfig{OnError: OnErrorAccept}, ""},
		{StageConfig{OnError: OnErrorTempfail, Timeout: time.Second}, ""},
		{StageConfig{}, "on_error:"},
		{StageConfig{OnError: "reject"}, "on_error:"},
		{StageConfig{OnError: OnErrorAccept, Timeout: -time.Second}, "timeout:"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)) {
			t.Errorf("%+v.Validate() = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// BenchmarkScanPipeline is the pipeline's own cost per message: five
// trivial checks shaped like the default pipeline's (three without a
// timeout of their own, as model, rules and antivirus; two with one, as
// auth and dnsbl), so what is measured is the goroutines, deadlines,
// channels, metrics and merging around them.
func BenchmarkScanPipeline(b *testing.B) {
	stages := []Stage{
		NewStage(fakeCheck{name: "model", res: sym("BAYES_50", 0.5)}, StageConfig{OnError: OnErrorAccept}),
		NewStage(fakeCheck{name: "rules", res: Result{Symbols: []Symbol{{Name: "R1", Score: 1}, {Name: "R2", Score: 0.5}}}}, StageConfig{OnError: OnErrorAccept}),
		NewStage(fakeCheck{name: "antivirus"}, StageConfig{OnError: OnErrorAccept}),
		NewStage(fakeCheck{name: "auth", res: Result{Symbols: []Symbol{{Name: "SPF_PASS", Score: -0.5}}, AuthResults: []string{"spf=pass"}}}, StageConfig{OnError: OnErrorAccept, Timeout: 5 * time.Second}),
		NewStage(fakeCheck{name: "dnsbl"}, StageConfig{OnError: OnErrorAccept, Timeout: 2 * time.Second}),
	}
	p := NewPipeline(stages, 30*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	env, msg := &Envelope{}, &Message{Symbols: []Symbol{{Name: "MSG", Score: 0.1}}}
	policy := Policy{TagScore: 5, RejectScore: 10}
	b.ReportAllocs()
	for b.Loop() {
		if v := p.Scan(context.Background(), env, msg, policy); len(v.Symbols) != 5 || len(v.Incomplete) != 0 {
			b.Fatalf("verdict = %+v", v)
		}
	}
}

// overlapCheck reports whether other started while it ran: it waits for
// that up to wait, then answers.
type overlapCheck struct {
	name     string
	started  chan struct{} // closed when this check starts
	other    chan struct{} // the other check's started
	wait     time.Duration
	overlaps *atomic.Bool
}

func (c overlapCheck) Name() string { return c.name }

func (c overlapCheck) Check(context.Context, *Envelope, *Message) (Result, error) {
	close(c.started)
	select {
	case <-c.other:
		c.overlaps.Store(true)
	case <-time.After(c.wait):
	}
	return sym(strings.ToUpper(c.name), 1), nil
}

// Local stages run one after the other, on one goroutine; the others
// alongside them.
func TestLocalStagesRunInTurn(t *testing.T) {
	model, rules, auth := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var localOverlap, authOverlap atomic.Bool
	p := NewPipeline([]Stage{
		{Check: overlapCheck{"model", model, rules, 100 * time.Millisecond, &localOverlap}, Local: true},
		{Check: overlapCheck{"auth", auth, model, 5 * time.Second, &authOverlap}},
		{Check: overlapCheck{"rules", rules, model, 0, new(atomic.Bool)}, Local: true},
	}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	p.chainPatience = time.Minute // however slow the machine, no stage is handed out
	v := p.Scan(context.Background(), &Envelope{}, &Message{}, Policy{})
	if v.Score != 3 || len(v.Incomplete) != 0 {
		t.Fatalf("score %.2f incomplete %v, want every check's symbol", v.Score, v.Incomplete)
	}
	if localOverlap.Load() {
		t.Error("rules started while model ran: Local stages ran alongside")
	}
	if !authOverlap.Load() {
		t.Error("auth did not see model start: it waited for the Local stages")
	}
}

// A Local stage that hangs holds the Local stages behind it back for
// ChainPatience only: they run on goroutines of their own and count; the
// hung one fails at its deadline.
func TestStuckLocalStageDoesNotHoldTheOthers(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	p := NewPipeline([]Stage{
		{Check: stuckCheck{release}, OnError: OnErrorAccept, Timeout: 50 * time.Millisecond, Local: true},
		{Check: fakeCheck{name: "a", res: sym("A", 1)}, Local: true},
		{Check: fakeCheck{name: "b", res: sym("B", 2)}, Local: true},
	}, 30*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	v := p.Scan(context.Background(), &Envelope{}, &Message{}, Policy{TagScore: 5, RejectScore: 10})
	if v.Score != 3 || len(v.Incomplete) != 1 || v.Incomplete[0] != "stuck" {
		t.Fatalf("score %.2f incomplete %v, want a's and b's symbols and stuck skipped", v.Score, v.Incomplete)
	}
}
