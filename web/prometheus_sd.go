package web

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/mxgrid/mxgrid/cluster"
)

// sdTargetGroup is one entry of Prometheus's HTTP service discovery
// (https://prometheus.io/docs/prometheus/latest/http_sd/): a list of
// host:port targets sharing labels. Labels beginning with __meta_ are
// dropped after relabelling, so a scrape config keeps the ones it wants.
type sdTargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// PrometheusSD serves GET /api/v1/cluster/prometheus-sd: every member this
// node sees alive or suspect, one target group each, the target being the
// member's management address (where /metrics answers). One Prometheus pointed at
// any node therefore finds all of them, and nodes that come and go need no
// edit of its config. Dead and left members are left out: scraping them only
// produces "up 0" noise until they are forgotten an hour later; the
// mxgrid_cluster_members gauge already counts them. Members that gossip no
// HTTP address (older versions) are skipped too.
func PrometheusSD(view ClusterView) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s := view.Status()
		groups := make([]sdTargetGroup, 0, len(s.Members))
		for _, m := range s.Members {
			if m.HTTPAddr == "" || (m.State != cluster.StateAlive && m.State != cluster.StateSuspect) {
				continue
			}
			groups = append(groups, sdTargetGroup{
				Targets: []string{m.HTTPAddr},
				Labels: map[string]string{
					"__meta_mxgrid_node":     m.Name,
					"__meta_mxgrid_provider": m.Provider,
					"__meta_mxgrid_region":   m.Region,
					"__meta_mxgrid_version":  m.Version,
					"__meta_mxgrid_state":    string(m.State),
					"__meta_mxgrid_ready":    strconv.FormatBool(m.Ready && !m.Draining),
					"__meta_mxgrid_leader":   strconv.FormatBool(m.Leader),
				},
			})
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(groups)
	})
}
