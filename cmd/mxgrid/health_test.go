package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
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
// where the node's http.listen is, a wildcard bind on loopback, over a
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
			cfg := writeConfig(t, fmt.Sprintf("http:\n  listen: "+tt.listen+"\n", port))
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
			return []string{"health", "--config", writeConfig(t, "http:\n  listen: 127.0.0.1:0\n")}
		}, "port 0"},
		{"config and url", func(t *testing.T) []string {
			return []string{"health", "--config", writeConfig(t, ""), "--url", "http://127.0.0.1:1/readyz"}
		}, "--config FILE | --url URL"},
		{"missing config", func(t *testing.T) []string {
			return []string{"health", "--config", filepath.Join(t.TempDir(), "none.yaml")}
		}, "none.yaml"},
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
