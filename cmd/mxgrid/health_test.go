package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/web"
)

// TestHealth: the exit status follows /readyz's status code, over a real
// socket, and an unreachable node fails.
func TestHealth(t *testing.T) {
	tests := []struct {
		name   string
		status int
		want   int
	}{
		{"ready", http.StatusOK, 0},
		{"not ready", http.StatusServiceUnavailable, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/readyz" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(`{"status":"x"}`))
			}))
			defer srv.Close()
			var out, errOut bytes.Buffer
			if got := run(context.Background(), []string{"health", "--url", srv.URL + "/readyz"}, &out, &errOut); got != tt.want {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", got, tt.want, out.String(), errOut.String())
			}
		})
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	var out, errOut bytes.Buffer
	if got := run(context.Background(), []string{"health", "--url", url + "/readyz"}, &out, &errOut); got != 1 {
		t.Fatalf("closed port: exit %d, want 1", got)
	}
}

// TestHealthAsksTheConfigsListener: with --config, health asks /readyz
// where the node's http.management_listen is, a wildcard bind on loopback, over a
// real socket on a port only the config names.
func TestHealthAsksTheConfigsListener(t *testing.T) {
	ready := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"status":"ready"}`))
	})
	tests := []struct {
		name, network, addr, listen string
	}{
		{"IPv4 wildcard", "tcp4", "127.0.0.1:0", "0.0.0.0:%d"},
		{"no host", "tcp4", "127.0.0.1:0", ":%d"},
		{"loopback", "tcp4", "127.0.0.1:0", "127.0.0.1:%d"},
		{"IPv6 wildcard", "tcp6", "[::1]:0", "'[::]:%d'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen(tt.network, tt.addr)
			if err != nil {
				t.Skipf("no %s loopback: %v", tt.network, err)
			}
			srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: ready}}
			srv.Start()
			defer srv.Close()
			port := ln.Addr().(*net.TCPAddr).Port
			cfg := writeConfig(t, fmt.Sprintf("http:\n  management_listen: "+tt.listen+"\n", port))
			var out, errOut bytes.Buffer
			if got := run(context.Background(), []string{"health", "--config", cfg}, &out, &errOut); got != 0 {
				t.Fatalf("exit %d, want 0; stdout %q stderr %q", got, out.String(), errOut.String())
			}
		})
	}
}

// TestHealthRefusesWhatItCannotAsk: a listen address no client can reach
// and an ambiguous command line are clear errors, not a request elsewhere.
func TestHealthRefusesWhatItCannotAsk(t *testing.T) {
	tests := []struct {
		name string
		args func(t *testing.T) []string
		want string
	}{
		{"port 0", func(t *testing.T) []string {
			return []string{"health", "--config", writeConfig(t, "http:\n  management_listen: 127.0.0.1:0\n")}
		}, "port 0"},
		{"config and url", func(t *testing.T) []string {
			return []string{"health", "--config", writeConfig(t, ""), "--url", "http://127.0.0.1:1/readyz"}
		}, "--config FILE | --url URL"},
		{"missing config", func(t *testing.T) []string {
			return []string{"health", "--config", filepath.Join(t.TempDir(), "none.yaml")}
		}, "none.yaml"},
		// A timeout of none gave every node "context deadline exceeded":
		// unhealthy, restarted, for a typo in the HEALTHCHECK.
		{"zero timeout", func(t *testing.T) []string {
			return []string{"health", "--url", "http://127.0.0.1:1/readyz", "--timeout", "0s"}
		}, "--timeout must be positive"},
		{"negative timeout", func(t *testing.T) []string {
			return []string{"health", "--url", "http://127.0.0.1:1/readyz", "--timeout", "-3s"}
		}, "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := run(context.Background(), tt.args(t), &out, &errOut); got == 0 || !strings.Contains(errOut.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q: want a failure naming %q", got, errOut.String(), tt.want)
			}
		})
	}
}

// TestHealthOutlastsAFullPublicListener: anyone on the internet can take
// every connection the public listener serves at once (a few addresses'
// worth of requests sent slowly), which costs the node no mail. The
// health check asks the management listener, which they cannot reach, so
// it does not report the node unhealthy (and have it restarted or taken
// out of rotation) for a flood of map viewers.
func TestHealthOutlastsAFullPublicListener(t *testing.T) {
	const maxConns = 2
	srv := web.New(health.New(), prometheus.NewRegistry(), slog.New(slog.DiscardHandler),
		web.Limits{ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute, MaxConns: maxConns})
	pub, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mgmt, err := srv.ListenManagement("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pub, mgmt) }()
	defer func() { cancel(); <-done }()
	for range maxConns {
		c, err := net.Dial("tcp", pub.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\n") // the rest never comes
	}
	time.Sleep(100 * time.Millisecond) // let the server accept them
	cfg := writeConfig(t, fmt.Sprintf("http:\n  listen: %s\n  management_listen: %s\n", pub.Addr(), mgmt.Addr()))
	var out, errOut bytes.Buffer
	if got := run(context.Background(), []string{"health", "--config", cfg, "--timeout", "2s"}, &out, &errOut); got != 0 {
		t.Fatalf("exit %d, want 0; stdout %q stderr %q", got, out.String(), errOut.String())
	}
}
