package health

import "testing"

func TestReportWorstLevelAndReasons(t *testing.T) {
	tests := []struct {
		name      string
		set       func(r *Registry)
		wantLevel Level
		wantConds int
	}{
		{"empty registry is ready", func(r *Registry) {}, OK, 0},
		{"degraded component keeps node ready", func(r *Registry) {
			r.Set("smtp", OK, "")
			r.Set("clamd", Degraded, "connection refused")
		}, Degraded, 1},
		{"not ready wins over degraded", func(r *Registry) {
			r.Set("clamd", Degraded, "down")
			r.Set("drain", NotReady, "draining")
		}, NotReady, 2},
		{"recovery clears the reason", func(r *Registry) {
			r.Set("clamd", Degraded, "down")
			r.Set("clamd", OK, "ignored")
		}, OK, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New()
			tt.set(r)
			level, conds := r.Report()
			if level != tt.wantLevel || len(conds) != tt.wantConds {
				t.Fatalf("Report() = %v, %v; want level %v with %d conditions", level, conds, tt.wantLevel, tt.wantConds)
			}
		})
	}
}
