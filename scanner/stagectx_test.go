package scanner

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type ctxKey struct{}

// TestStageContextActsAsWithDeadline runs the same steps on a
// stageContext and on context.WithDeadline, and compares what each says.
func TestStageContextActsAsWithDeadline(t *testing.T) {
	errWhy := errors.New("session closed")
	tests := []struct {
		name string
		// parent is the check's parent context; its cancel is called
		// when cancelParent.
		parent       func() (context.Context, context.CancelCauseFunc)
		deadline     time.Duration
		cancelParent bool
		stop         bool
		wait         bool // on Done, before reading
		child        bool // read through a context.WithCancel child
		sleep        time.Duration
	}{
		{name: "before the deadline", deadline: time.Hour},
		{name: "past the deadline, never waited on", deadline: -time.Second},
		{name: "reached while waiting", deadline: 20 * time.Millisecond, wait: true},
		{name: "reached, not waited on", deadline: 20 * time.Millisecond, sleep: 40 * time.Millisecond},
		{name: "through a child", deadline: 20 * time.Millisecond, wait: true, child: true},
		{name: "parent canceled", deadline: time.Hour, cancelParent: true},
		{name: "parent canceled, waited on", deadline: time.Hour, cancelParent: true, wait: true},
		{name: "stopped", deadline: time.Hour, stop: true},
		{name: "stopped, then waited on", deadline: time.Hour, stop: true, wait: true},
		{name: "parent's deadline first", deadline: time.Hour, parent: func() (context.Context, context.CancelCauseFunc) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			return ctx, func(error) { cancel() }
		}},
	}
	type answer struct {
		deadline   time.Time
		ok         bool
		err, cause error
		value      any
		done       bool
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got, want answer
			for _, lazy := range []bool{false, true} {
				parent, cancelParent := context.WithCancelCause(context.WithValue(context.Background(), ctxKey{}, "v"))
				if tt.parent != nil {
					parent, cancelParent = tt.parent()
					parent = context.WithValue(parent, ctxKey{}, "v")
				}
				defer cancelParent(nil)
				deadline := time.Now().Add(tt.deadline)
				var ctx context.Context
				var stop func()
				if lazy {
					sc := &stageContext{parent: parent, deadline: deadline}
					ctx, stop = sc, sc.stop
				} else {
					ctx, stop = context.WithDeadline(parent, deadline)
				}
				if tt.cancelParent {
					cancelParent(errWhy)
				}
				if tt.stop {
					stop()
				}
				if tt.child {
					child, cancel := context.WithCancel(ctx)
					defer cancel()
					ctx = child
				}
				if tt.wait {
					select {
					case <-ctx.Done():
					case <-time.After(5 * time.Second):
						t.Fatal("Done did not close")
					}
				}
				time.Sleep(tt.sleep)
				if !lazy && tt.sleep > 0 && time.Now().After(deadline) {
					// WithDeadline's own timer marks it done, later than
					// its deadline on a loaded machine: the answer to
					// match is the one it gives once it has run. The
					// stageContext must give it without waiting.
					select {
					case <-ctx.Done():
					case <-time.After(5 * time.Second):
						t.Fatal("WithDeadline's Done did not close")
					}
				}
				a := answer{err: ctx.Err(), cause: context.Cause(ctx), value: ctx.Value(ctxKey{})}
				a.deadline, a.ok = ctx.Deadline()
				select {
				case <-ctx.Done():
					a.done = true
				default:
				}
				if lazy {
					got = a
				} else {
					want = a
				}
				stop()
			}
			// Both were made a moment apart: the same deadline, give or take.
			if got.deadline.Sub(want.deadline).Abs() < time.Second {
				got.deadline = want.deadline
			}
			if got != want {
				t.Errorf("stageContext %+v, WithDeadline %+v", got, want)
			}
		})
	}
}

// valueCheck reads its context as most checks do when their DNS answers
// are cached, without waiting on it, and reports whether that made a
// deadline context and its timer.
type valueCheck struct{ made chan bool }

func (valueCheck) Name() string { return "value" }

func (c valueCheck) Check(ctx context.Context, _ *Envelope, _ *Message) (Result, error) {
	_ = ctx.Value(ctxKey{})
	_ = ctx.Err()
	sc, ok := ctx.(*stageContext)
	if !ok {
		c.made <- true
		return Result{}, nil
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	c.made <- sc.ctx != nil
	return Result{}, nil
}

func TestStageDeadlineArmsNoTimerUnlessWaitedOn(t *testing.T) {
	for _, tt := range []struct {
		name    string
		timeout time.Duration
	}{
		{"the stage's own timeout", time.Minute},
		{"the scan's", 0},
	} {
		c := valueCheck{made: make(chan bool, 1)}
		p := NewPipeline([]Stage{NewStage(c, StageConfig{OnError: OnErrorAccept, Timeout: tt.timeout})},
			time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
		p.Scan(context.Background(), &Envelope{}, &Message{}, Policy{})
		if <-c.made {
			t.Errorf("%s: a check that never waited on its context got a deadline context", tt.name)
		}
	}
}
