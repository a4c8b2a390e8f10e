package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"

	"github.com/mxgrid/mxgrid/cluster"
)

func TestPrometheusSD(t *testing.T) {
	withHTTP := func(v fakeView) fakeView {
		members := make([]cluster.Member, len(v.Members))
		for i, m := range v.Members {
			m.HTTPAddr = fmt.Sprintf("10.0.0.%d:8025", i+1)
			members[i] = m
		}
		v.Members = members
		return v
	}
	old := withHTTP(sixNodes())
	old.Members[1].HTTPAddr = "" // b runs a version that does not gossip it
	tests := []struct {
		name string
		view fakeView
		// want maps each listed node to its target and ready label.
		want map[string][2]string
	}{
		{"no members", fakeView{Self: "a"}, map[string][2]string{}},
		// Dead d and left g are not scraped; suspect e still is; draining
		// c is scraped but not ready.
		{"alive and suspect only", withHTTP(sixNodes()), map[string][2]string{
			"a": {"10.0.0.1:8025", "true"},
			"b": {"10.0.0.2:8025", "true"},
			"c": {"10.0.0.3:8025", "false"},
			"e": {"10.0.0.5:8025", "true"},
			"f": {"10.0.0.6:8025", "false"},
		}},
		{"members without an address are skipped", old, map[string][2]string{
			"a": {"10.0.0.1:8025", "true"},
			"c": {"10.0.0.3:8025", "false"},
			"e": {"10.0.0.5:8025", "true"},
			"f": {"10.0.0.6:8025", "false"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			PrometheusSD(tt.view).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/cluster/prometheus-sd", nil))
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			// Decode into the shape Prometheus reads, not our own type.
			var groups []struct {
				Targets []string          `json:"targets"`
				Labels  map[string]string `json:"labels"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &groups); err != nil || groups == nil {
				t.Fatalf("body %q: %v (want a JSON array, [] when empty)", rec.Body.String(), err)
			}
			got := map[string][2]string{}
			for _, g := range groups {
				if len(g.Targets) != 1 {
					t.Fatalf("group %+v: want one target", g)
				}
				got[g.Labels["__meta_mxgrid_node"]] = [2]string{g.Targets[0], g.Labels["__meta_mxgrid_ready"]}
				if g.Labels["__meta_mxgrid_provider"] == "" || g.Labels["__meta_mxgrid_region"] == "" {
					t.Errorf("group %+v: provider or region label missing", g)
				}
				if g.Labels["__meta_mxgrid_leader"] != strconv.FormatBool(g.Labels["__meta_mxgrid_node"] == "a") {
					t.Errorf("group %+v: leader label wrong", g)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("targets:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}
