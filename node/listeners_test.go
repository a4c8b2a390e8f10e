package node_test

import (
	"net/http"
	"testing"

	"github.com/mxgrid/mxgrid/internal/nodetest"
)

// TestManagementEndpointsNotPublic: what maps the cluster for an attacker
// (metrics, members, their addresses) answers only on the management
// listener; the public one carries the map, panel, API and health.
func TestManagementEndpointsNotPublic(t *testing.T) {
	n := nodetest.Start(t, nodetest.Config(t), nil)
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
			t.Errorf("public %s: %d, want %d", tt.path, got, tt.public)
		}
		if got := get(n.ManagementAddr(), tt.path); got != tt.management {
			t.Errorf("management %s: %d, want %d", tt.path, got, tt.management)
		}
	}
}
