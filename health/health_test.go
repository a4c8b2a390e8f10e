package health

import (
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

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

// TestLevelsAreMetrics: each component's level is a gauge, which falls
// back to 0 when it recovers.
func TestLevelsAreMetrics(t *testing.T) {
	r := New()
	reg := prometheus.NewPedanticRegistry()
	r.Register(reg)
	r.Set("smtp", OK, "")
	r.Set("clamd", NotReady, "down")
	r.Set("geo", Degraded, "no database")
	r.Set("geo", OK, "")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[f.GetName()+"/"+m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{"mxgrid_health_level/clamd": 2, "mxgrid_health_level/geo": 0, "mxgrid_health_level/smtp": 0}
	if !maps.Equal(got, want) {
		t.Fatalf("gathered %v, want %v", got, want)
	}
}
