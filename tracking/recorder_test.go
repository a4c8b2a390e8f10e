package tracking_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tracking"
)

// TestRetentionWithInjectedClock: the recorder prunes what is older than
// the retention by its clock, on a real SQLite store, and writes what it
// is given, client text bounded.
func TestRetentionWithInjectedClock(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(store.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.MigrateTracking(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2027, 2, 1, 12, 0, 0, 0, time.UTC)
	for _, age := range []time.Duration{31 * 24 * time.Hour, 29 * 24 * time.Hour} {
		if err := st.InsertTracking(ctx, []tracking.Record{{Time: now.Add(-age), QueueID: age.String(), Status: tracking.StatusDelivered}}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := tracking.DefaultConfig()
	cfg.FlushInterval = 10 * time.Millisecond
	rec, err := tracking.NewRecorderAt(cfg, st, prometheus.NewRegistry(), nil, nil, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	rec.Record(tracking.Record{Time: now, QueueID: "fresh", HELO: string(make([]byte, 5000)), Status: tracking.StatusRefused})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rec.Run(runCtx) }()
	var got []tracking.Record
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		got, _, err = st.SearchTracking(ctx, tracking.Filter{Scope: tracking.Scope{Operator: true}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 2 && got[0].QueueID == "fresh" {
			break // written, and the 31-day-old record pruned
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].QueueID != "fresh" || got[1].QueueID != (29*24*time.Hour).String() {
		t.Fatalf("after pruning at %s: %+v", now, got)
	}
	if len(got[0].HELO) > 998 {
		t.Fatalf("HELO of %d bytes stored", len(got[0].HELO))
	}
}

// TestQueuedRecordsHoldNoLongText: a record waiting in the buffer holds
// its clipped text, not the value it was clipped from. 40 messages whose
// Subject and Message-ID were 1 MB each held 80 MB, as 998-byte slices.
func TestQueuedRecordsHoldNoLongText(t *testing.T) {
	tests := []struct{ name, unit string }{
		{"ASCII", "Buy now "},
		{"not ASCII", "Achetez maintenant é "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := store.Open(store.DefaultConfig(), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			rec, err := tracking.NewRecorder(tracking.DefaultConfig(), st, prometheus.NewRegistry(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			const records, valueBytes = 40, 1 << 20
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range records {
				long := strings.Repeat(tt.unit, valueBytes/len(tt.unit)) // anew per message
				rec.Record(tracking.Record{QueueID: "q", Subject: long, MessageID: "<" + long + ">", Status: tracking.StatusRefused})
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(rec) // and what it queued
			if held := int64(after.HeapAlloc) - int64(before.HeapAlloc); held > 2*records*valueBytes/10 {
				t.Errorf("%d queued records hold %d KB, want far less than their %d KB of text", records, held>>10, 2*records*valueBytes>>10)
			}
		})
	}
}
