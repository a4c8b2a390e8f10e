package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
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
