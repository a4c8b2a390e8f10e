package clamav

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/scanner"
)

// TestHungClamdFailsFast: a hung clamd (SIGSTOPped, its host frozen)
// accepts connections and answers nothing. Each scan used to wait out the
// whole timeout, so every message was held that long and a node's
// sessions filled up, where a clamd that is down costs nothing. Once a
// PING confirms clamd does not answer, scans fail at once (on_error
// applies), and clamd's return is noticed without waiting for the next
// probe_interval.
func TestHungClamdFailsFast(t *testing.T) {
	var hang atomic.Pointer[chan struct{}]
	f := &fakeClamd{reply: func(cmd string, stream []byte) string {
		if ch := hang.Load(); ch != nil {
			<-*ch
		}
		switch {
		case cmd == "zPING\x00":
			return "PONG"
		case strings.Contains(string(stream), "BAD"):
			return "stream: Fake.Sig FOUND"
		}
		return "stream: OK"
	}}
	cfg := DefaultConfig()
	cfg.Clamd = startFake(t, "tcp", "127.0.0.1:0", f)
	cfg.Timeout = time.Second
	cfg.ProbeInterval = time.Hour // only the first probe, and those a failed scan asks for
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, health.New(), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	scan := func(body string) (string, time.Duration, error) {
		sctx, scancel := context.WithTimeout(context.Background(), cfg.Timeout)
		defer scancel()
		start := time.Now()
		res, err := c.Check(sctx, &scanner.Envelope{}, scanner.Parse([]byte("Subject: t\r\n\r\n"+body+"\r\n")))
		return res.Virus, time.Since(start), err
	}
	quick := cfg.Timeout / 2

	if virus, _, err := scan("BAD"); err != nil || virus != "Fake.Sig" {
		t.Fatalf("clamd answering: virus %q, err %v", virus, err)
	}

	stopped := make(chan struct{})
	var resume sync.Once
	cont := func() { resume.Do(func() { hang.Store(nil); close(stopped) }) }
	t.Cleanup(cont) // before the fake's own: its connections must end
	hang.Store(&stopped)
	for deadline := time.Now().Add(10 * cfg.Timeout); ; {
		_, took, err := scan("hello")
		if err == nil {
			t.Fatal("a scan by a hung clamd succeeded")
		}
		if took < quick {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("clamd hung for %v: every scan still waits for it (the last %v: %v)", 10*cfg.Timeout, took, err)
		}
	}
	// Messages at once: none waits for clamd.
	var waited atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, took, err := scan("hello")
			if err == nil {
				t.Error("a scan by a hung clamd succeeded")
			}
			if took >= quick {
				waited.Add(1)
			}
		})
	}
	wg.Wait()
	if n := waited.Load(); n > 0 {
		t.Errorf("%d of 8 scans waited for the hung clamd", n)
	}

	cont()
	for deadline := time.Now().Add(10 * cfg.Timeout); ; {
		virus, _, err := scan("BAD")
		if virus == "Fake.Sig" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("clamd answers again, yet no scan reaches it: %v", err)
		}
	}
	for range 4 {
		wg.Go(func() {
			if virus, _, err := scan("BAD"); err != nil || virus != "Fake.Sig" {
				t.Errorf("after clamd came back: virus %q, err %v", virus, err)
			}
		})
	}
	wg.Wait()
}
