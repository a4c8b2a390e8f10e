package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/loadgen"
)

// TestDeferralViewFollowsRetryingSenders: with the customer's server down,
// a retrying sender (loadgen, which backs off on 4xx like an MTA) makes
// the deferral view and mxgrid_tracking_waiting_messages rise; once the
// server is back and the retries are delivered, both fall to zero.
func TestDeferralViewFollowsRetryingSenders(t *testing.T) {
	const token = "deferral-test-operator-token-0123456789"
	tokFile := filepath.Join(t.TempDir(), "op.token")
	if err := os.WriteFile(tokFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	n, sink := nodetest.StartWithSink(t, func(cfg *config.Config) {
		cfg.Admin.OperatorTokenFile = tokFile
		cfg.Tracking.FlushInterval = 20 * time.Millisecond
		cfg.Tracking.DeferralInterval = 100 * time.Millisecond
	})
	sink.Stop()

	waitingAPI := func() int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+n.HTTPAddr()+"/api/v1/deferrals", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Items []struct{ Attempts int } }
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return len(out.Items)
	}
	waitingMetric := func() int {
		t.Helper()
		v, _, err := testenv.MetricSum(http.DefaultClient, "http://"+n.ManagementAddr()+"/metrics", `mxgrid_tracking_waiting_messages{domain="example.org"} `)
		if err != nil {
			t.Fatal(err)
		}
		return int(v)
	}
	until := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
		}
	}

	cfg := loadgen.DefaultConfig()
	cfg.Targets = []string{n.SMTPAddr()}
	cfg.Sessions, cfg.Messages, cfg.Size = 2, 2, 2000
	cfg.RetryDelay, cfg.MaxRetryDelay = 100*time.Millisecond, 300*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan *loadgen.Result, 1)
	go func() {
		res, err := loadgen.Run(ctx, cfg)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()

	until("the deferral view and the gauge show the waiting mail", func() bool { return waitingAPI() >= 1 && waitingMetric() >= 1 })
	sink.Restart(t)
	res := <-done
	for _, r := range res.Records {
		if r.Outcome != loadgen.Delivered || r.Tempfails == 0 {
			t.Fatalf("message %s: %v after %d tempfails", r.ID, r.Outcome, r.Tempfails)
		}
	}
	until("nothing waits any more", func() bool { return waitingAPI() == 0 && waitingMetric() == 0 })
}
