package metrictest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	plain := prometheus.NewCounter(prometheus.CounterOpts{Name: "plain_total", Help: "h"})
	byKind := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "by_kind_total", Help: "h"}, []string{"kind"})
	reg.MustRegister(plain, byKind)
	plain.Add(3)
	byKind.WithLabelValues("a").Inc()
	byKind.WithLabelValues("b").Add(2)
	for _, tc := range []struct {
		name, label string
		want        float64
	}{
		{"plain_total", "", 3},
		{"by_kind_total", "a", 1},
		{"by_kind_total", "b", 2},
	} {
		if got := Counter(t, reg, tc.name, tc.label); got != tc.want {
			t.Errorf("Counter(%s, %q) = %v, want %v", tc.name, tc.label, got, tc.want)
		}
	}
}
