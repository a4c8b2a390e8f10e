package clamav_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/antivirus"
	"github.com/mxgrid/mxgrid/scanner/clamav"
)

func newCheck(t testing.TB, addr string, onError scanner.OnError) (*clamav.Check, *health.Registry) {
	t.Helper()
	cfg := clamav.DefaultConfig()
	cfg.Clamd = addr
	cfg.OnError = onError
	cfg.Timeout = 5 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := health.New()
	c, err := clamav.New(cfg, h, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return c, h
}

func TestRealClamd(t *testing.T) {
	addr := testenv.Clamd(t)
	c, h := newCheck(t, addr, scanner.OnErrorAccept)
	tests := []struct {
		name      string
		raw       []byte
		wantFound string // substring of the signature; "" for clean
	}{
		{"clean", []byte("Subject: hi\r\n\r\nHello.\r\n"), ""},
		{"clean 100 KB", testenv.Message100KB(), ""},
		{"EICAR in a plain part", []byte("Subject: t\r\n\r\n" + string(testenv.EICAR()) + "\r\n"), "EICAR"},
		{"EICAR in a base64 zip attachment", testenv.Attachment("files.zip", testenv.Zipped(t, "eicar.com", testenv.EICAR())), "EICAR"},
		{"custom signature", []byte("Subject: t\r\n\r\n" + testenv.ClamdTestString + "\r\n"), "MxGrid.Test.String.UNOFFICIAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Check(context.Background(), &scanner.Envelope{}, scanner.Parse(tt.raw))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if tt.wantFound == "" && res.Virus != "" || !strings.Contains(res.Virus, tt.wantFound) {
				t.Errorf("Virus = %q, want %q", res.Virus, tt.wantFound)
			}
			if len(res.Headers) != 0 {
				t.Errorf("a scanned message got headers %v", res.Headers)
			}
		})
	}
	if level, conds := h.Report(); level != health.OK {
		t.Errorf("health after good scans = %v %v", level, conds)
	}
}

// TestPipeline runs both antivirus layers as the node does: a virus found
// by either rejects, clean mail is delivered.
func TestPipeline(t *testing.T) {
	addr := testenv.Clamd(t)
	c, _ := newCheck(t, addr, scanner.OnErrorAccept)
	builtin, err := antivirus.New(antivirus.DefaultConfig(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	p := scanner.NewPipeline([]scanner.Stage{{Check: builtin, OnError: scanner.OnErrorAccept}, c.Stage()}, 10*time.Second,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	policy := scanner.Policy{TagScore: 5, RejectScore: 10}
	tests := []struct {
		name       string
		raw        []byte
		wantAction scanner.Action
		wantDetail string
	}{
		{"clean", testenv.Message100KB(), scanner.Deliver, ""},
		{"EICAR in a zip", testenv.Attachment("files.zip", testenv.Zipped(t, "eicar.com", testenv.EICAR())), scanner.Reject, "EICAR"},
		{"clamd-only signature", []byte("Subject: t\r\n\r\n" + testenv.ClamdTestString + "\r\n"), scanner.Reject, "MxGrid.Test.String"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := p.Scan(context.Background(), &scanner.Envelope{QueueID: "q1"}, scanner.Parse(tt.raw), policy)
			if v.Action != tt.wantAction || !strings.Contains(v.Detail, tt.wantDetail) {
				t.Errorf("verdict = %v %q %q, want %v %q", v.Action, v.Reason, v.Detail, tt.wantAction, tt.wantDetail)
			}
			if tt.wantAction == scanner.Reject && v.Reason != "virus" {
				t.Errorf("reason = %q, want virus", v.Reason)
			}
		})
	}
}

// TestClamdDown stops a private clamd and checks both on_error settings,
// the verdict, the header and /readyz, then brings clamd back.
func TestClamdDown(t *testing.T) {
	tests := []struct {
		onError    scanner.OnError
		wantAction scanner.Action
		wantHeader bool
		wantLevel  health.Level
	}{
		{scanner.OnErrorAccept, scanner.Deliver, true, health.Degraded},
		{scanner.OnErrorTempfail, scanner.Tempfail, false, health.NotReady},
	}
	for _, tt := range tests {
		t.Run(string(tt.onError), func(t *testing.T) {
			hostport, stop := testenv.StartClamd(t)
			c, h := newCheck(t, "tcp://"+hostport, tt.onError)
			p := scanner.NewPipeline([]scanner.Stage{c.Stage()}, 10*time.Second,
				slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
			msg := scanner.Parse(testenv.Message100KB())
			env := &scanner.Envelope{QueueID: "q1"}

			if v := p.Scan(context.Background(), env, msg, scanner.Policy{}); v.Action != scanner.Deliver || len(v.Headers) != 0 {
				t.Fatalf("with clamd up: %v %v", v.Action, v.Headers)
			}
			stop()
			v := p.Scan(context.Background(), env, msg, scanner.Policy{})
			if v.Action != tt.wantAction {
				t.Errorf("with clamd down: action = %v (%s), want %v", v.Action, v.Detail, tt.wantAction)
			}
			gotHeader := len(v.Headers) == 1 && v.Headers[0] == scanner.Header{Name: clamav.HeaderScan, Value: "incomplete"}
			if gotHeader != tt.wantHeader {
				t.Errorf("headers = %v, want the incomplete header: %v", v.Headers, tt.wantHeader)
			}
			level, conds := h.Report()
			if level != tt.wantLevel || len(conds) != 1 || conds[0].Component != clamav.HealthComponent ||
				!strings.Contains(conds[0].Reason, hostport) {
				t.Errorf("readiness = %v %+v, want %v naming clamd at %s", level, conds, tt.wantLevel, hostport)
			}
			t.Logf("readyz reason: %s", conds[0].Reason)

			// Back on the same address: the prober notices without mail.
			testenv.StartClamdAt(t, hostport)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- c.Run(ctx) }()
			for level != health.OK {
				time.Sleep(10 * time.Millisecond)
				level, _ = h.Report()
			}
			cancel()
			<-done
		})
	}
}

// BenchmarkScan100KB is the added latency of a clamd scan of a clean
// 100 KB message (connection, INSTREAM, reply), with p50 and p99. With the
// test database's three signatures it is mostly protocol cost; the
// official database adds matching time.
func BenchmarkScan100KB(b *testing.B) {
	addr := testenv.Clamd(b)
	c, _ := newCheck(b, addr, scanner.OnErrorAccept)
	msg := scanner.Parse(testenv.Message100KB())
	env := &scanner.Envelope{}
	durations := make([]time.Duration, 0, 1024)
	for b.Loop() {
		start := time.Now()
		res, err := c.Check(context.Background(), env, msg)
		durations = append(durations, time.Since(start))
		if err != nil || res.Virus != "" || len(res.Headers) != 0 {
			b.Fatalf("Check = %+v, %v", res, err)
		}
	}
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(durations[min(len(durations)-1, len(durations)*99/100)].Microseconds()), "p99-µs")
}
