package reloadstate

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/metrictest"
)

// TestFileState: each failure counts once and puts the file's condition in
// /readyz, naming its paths when the error does not; a load or the file in
// force back clears it, and only a load moves the timestamp.
func TestFileState(t *testing.T) {
	tests := []struct {
		name       string
		steps      func(f *File)
		wantReason string // "" for no condition; else a substring
		wantOK     float64
		wantErrors float64
	}{
		{"loaded", func(f *File) { f.Loaded() }, "", 1, 0},
		{"failed before any load", func(f *File) { f.Failed(errors.New("boom")) },
			"thing not loaded: boom (/a, /b); nothing loaded from it is in force", 0, 1},
		{"failed after a load", func(f *File) { f.Loaded(); f.Failed(errors.New("boom")) },
			"thing not loaded: boom (/a, /b); the version loaded at ", 1, 1},
		{"an error naming a path is not given them again", func(f *File) { f.Loaded(); f.Failed(errors.New("open /b: denied")) },
			"thing not loaded: open /b: denied; the version", 1, 1},
		{"a good load clears", func(f *File) { f.Loaded(); f.Failed(errors.New("boom")); f.Loaded() }, "", 2, 1},
		{"the file in force back clears", func(f *File) { f.Loaded(); f.Failed(errors.New("gone")); f.InForce() }, "", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, h := prometheus.NewRegistry(), health.New()
			f := New(reg, h, Spec{Metric: "mxgrid_test_thing", Help: "a thing", Name: "thing", Paths: []string{"/a", "/b"}, Component: "thing"})
			tt.steps(f)
			_, conds := h.Report()
			switch {
			case tt.wantReason == "" && len(conds) != 0:
				t.Errorf("conditions %+v, want none", conds)
			case tt.wantReason != "" && (len(conds) != 1 || conds[0].Level != "degraded" || !strings.Contains(conds[0].Reason, tt.wantReason)):
				t.Errorf("conditions %+v, want one degraded with %q", conds, tt.wantReason)
			}
			if got := f.Reason(); (got == "") != (tt.wantReason == "") {
				t.Errorf("Reason() = %q", got)
			}
			if got := metrictest.Counter(t, reg, "mxgrid_test_thing_loads_total", "ok"); got != tt.wantOK {
				t.Errorf("loads ok %v, want %v", got, tt.wantOK)
			}
			if got := metrictest.Counter(t, reg, "mxgrid_test_thing_loads_total", "error"); got != tt.wantErrors {
				t.Errorf("loads error %v, want %v", got, tt.wantErrors)
			}
		})
	}
}
