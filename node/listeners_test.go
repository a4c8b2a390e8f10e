package node_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/mxgrid/mxgrid/internal/nodetest"
)

// TestManagementEndpointsNotPublic: what maps the cluster for an attacker
// (metrics, members, their addresses) answers only on the management
// listener; the public one carries the map, panel, API and health. The
// profiler is off unless http.pprof is set, and then management-only too.
func TestManagementEndpointsNotPublic(t *testing.T) {
	for _, pprof := range []bool{false, true} {
		cfg := nodetest.Config(t)
		cfg.HTTP.Pprof = pprof
		n := nodetest.Start(t, cfg, nil)
		profiler := http.StatusNotFound
		if pprof {
			profiler = http.StatusOK
		}
		tests := []struct {
			path       string
			public     int
			management int
		}{
			{"/metrics", http.StatusNotFound, http.StatusOK},
			{"/cluster", http.StatusNotFound, http.StatusOK},
			{"/api/v1/cluster", http.StatusNotFound, http.StatusOK},
			{"/api/v1/cluster/prometheus-sd", http.StatusNotFound, http.StatusOK},
			{"/healthz", http.StatusOK, http.StatusOK},
			{"/panel/login", http.StatusOK, http.StatusNotFound},
			{"/debug/pprof/", http.StatusNotFound, profiler},
			{"/debug/pprof/heap?debug=1", http.StatusNotFound, profiler},
			{"/debug/pprof/profile?seconds=1", http.StatusNotFound, profiler},
		}
		get := func(addr, path string) int {
			resp, err := http.Get("http://" + addr + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for _, tt := range tests {
			if got := get(n.HTTPAddr(), tt.path); got != tt.public {
				t.Errorf("pprof %v: public %s: %d, want %d", pprof, tt.path, got, tt.public)
			}
			if got := get(n.ManagementAddr(), tt.path); got != tt.management {
				t.Errorf("pprof %v: management %s: %d, want %d", pprof, tt.path, got, tt.management)
			}
		}
	}
}

// TestPrometheusSDListsManagementListener: the address a node gossips,
// which service discovery hands to Prometheus, is its management
// listener's, the only one serving /metrics; the public listener answers
// /metrics 404 (above).
func TestPrometheusSDListsManagementListener(t *testing.T) {
	n := nodetest.Start(t, nodetest.Config(t), nil)
	resp, err := http.Get("http://" + n.ManagementAddr() + "/api/v1/cluster/prometheus-sd")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var groups []struct{ Targets []string }
	if err := json.NewDecoder(resp.Body).Decode(&groups); err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || !slices.Equal(groups[0].Targets, []string{n.ManagementAddr()}) {
		t.Fatalf("service discovery = %+v, want the one target %s (public listener %s)", groups, n.ManagementAddr(), n.HTTPAddr())
	}
}
