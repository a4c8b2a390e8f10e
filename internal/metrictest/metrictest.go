// Package metrictest reads the metrics a test's registry gathered, so that
// a test asserts a counter's value rather than how a package exposes it.
package metrictest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Counter returns the counter name whose series carries labelValue ("" for
// a family without labels). A series never counted fails the test: a
// CounterVec shows a series only once it was touched.
func Counter(t testing.TB, g prometheus.Gatherer, name, labelValue string) float64 {
	t.Helper()
	return series(t, g, name, labelValue).GetCounter().GetValue()
}

// Gauge returns the gauge name whose series carries labelValue, as Counter
// does a counter's.
func Gauge(t testing.TB, g prometheus.Gatherer, name, labelValue string) float64 {
	t.Helper()
	return series(t, g, name, labelValue).GetGauge().GetValue()
}

// CounterOf returns the counter name whose series carries every label
// given (name: value), for a family where one value alone is ambiguous
// (mxgrid_geo_database_loads_total's result of each database).
func CounterOf(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(t, g, name, func(m *dto.Metric) bool {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				return false
			}
		}
		return true
	})
	if m == nil {
		t.Fatalf("no series %s%v gathered", name, labels)
	}
	return m.GetCounter().GetValue()
}

func series(t testing.TB, g prometheus.Gatherer, name, labelValue string) *dto.Metric {
	t.Helper()
	m := find(t, g, name, func(m *dto.Metric) bool {
		if labelValue == "" && len(m.GetLabel()) == 0 {
			return true
		}
		for _, l := range m.GetLabel() {
			if l.GetValue() == labelValue {
				return true
			}
		}
		return false
	})
	if m == nil {
		t.Fatalf("no series %s{%q} gathered", name, labelValue)
	}
	return m
}

// find returns the first series of the family name that match accepts,
// nil for none.
func find(t testing.TB, g prometheus.Gatherer, name string, match func(*dto.Metric) bool) *dto.Metric {
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
			if match(m) {
				return m
			}
		}
	}
	return nil
}
