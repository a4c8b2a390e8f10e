package node_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/ratelimit"
	"github.com/mxgrid/mxgrid/notify"
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

// TestPublicLookupMissesShareOneBudget: a node's public lookups that find
// nothing (map scopes, logo slugs, panel sessions, API tokens) come out of
// one budget per client address, not one per route, and the refusals are
// counted by route on the management listener.
func TestPublicLookupMissesShareOneBudget(t *testing.T) {
	n := nodetest.Start(t, nodetest.Config(t), nil)
	for i := range ratelimit.MissBurst {
		path := []string{"/map.svg?reseller=nobody-", "/panel/logo/nobody-", "/map.json?customer=nobody-"}[i%3] + strconv.Itoa(i)
		if resp := get(t, n.HTTPAddr(), path); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	for route, req := range map[string][]string{
		"map":       {"/map?reseller=nobody"},
		"logo":      {"/panel/logo/nobody"},
		"session":   {"/panel/", "Cookie", "mxg_panel=nobody"},
		"api_token": {"/api/v1/domains", "Authorization", "Bearer nobody"},
	} {
		if resp := get(t, n.HTTPAddr(), req[0], req[1:]...); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s past the budget: %d (Retry-After %q), want 429", route, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	body := metrics(t, n)
	for _, route := range []string{"api_token", "map", "logo", "session"} {
		if want := `mxgrid_http_lookups_refused_total{route="` + route + `"} 1`; !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestDigestLinksLimitedPerClient: a node limits digest link requests per
// client address as http.trusted_proxies tells it (the forwarded one
// behind a proxy, not the proxy's), and counts the refusals on the
// management listener. Altered links spend the budget as valid ones do.
func TestDigestLinksLimitedPerClient(t *testing.T) {
	sink := nodetest.StartSink(t)
	cfg := nodetest.Config(t)
	cfg.Notify.Smarthost, cfg.Notify.SmarthostTLS, cfg.HTTP.PublicURL = sink.Addr, notify.TLSNone, "https://mx.example"
	cfg.HTTP.TrustedProxies = []string{"127.0.0.1"}
	n := nodetest.Start(t, cfg, nil)
	for i := range notify.LinkBurst {
		if resp := get(t, n.HTTPAddr(), "/q/release/altered", "X-Forwarded-For", "192.0.2.1"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("request %d within the burst: %d, want 403", i, resp.StatusCode)
		}
	}
	if resp := get(t, n.HTTPAddr(), "/q/release/altered", "X-Forwarded-For", "192.0.2.1"); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("past the burst: %d (Retry-After %q), want 429", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := get(t, n.HTTPAddr(), "/q/release/altered", "X-Forwarded-For", "192.0.2.2"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another client behind the proxy: %d, want 403", resp.StatusCode)
	}
	if want := "mxgrid_notify_link_requests_refused_total 1"; !strings.Contains(metrics(t, n), want) {
		t.Errorf("metrics lack %s", want)
	}
}

// get sends a GET of path with the header fields hdr (name, value, ...)
// to the listener at addr.
func get(t *testing.T, addr, path string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// metrics is what n's management listener exports.
func metrics(t *testing.T, n *nodetest.Node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.ManagementAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(body)
}
