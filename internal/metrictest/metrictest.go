// Package metrictest reads the metrics a test's registry gathered, so that
// a test asserts a counter's value rather than how a package exposes it.
package metrictest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Counter returns the counter name whose series carries labelValue ("" for
// a family without labels). A series never counted fails the test: a
// CounterVec shows a series only once it was touched.
func Counter(t testing.TB, g prometheus.Gatherer, name, labelValue string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelValue == "" && len(m.GetLabel()) == 0 {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetValue() == labelValue {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{%q} gathered", name, labelValue)
	return 0
}
