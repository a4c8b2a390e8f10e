// Package web serves the node's HTTP side: health for load balancers,
// Prometheus metrics, and the handlers other packages contribute (the map,
// the admin API, the cluster page), mounted by cmd/mxgrid.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/mxgrid/mxgrid/health"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is the HTTP listener.
type Server struct {
	mux    *http.ServeMux
	health *health.Registry
	log    *slog.Logger
	srv    *http.Server
	addr   net.Addr
}

// New builds the server with /healthz, /readyz and /metrics mounted.
func New(h *health.Registry, gatherer prometheus.Gatherer, log *slog.Logger) *Server {
	s := &Server{mux: http.NewServeMux(), health: h, log: log}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	return s
}

// Handle mounts h at pattern (http.ServeMux syntax, e.g. "GET /map").
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler returns the root handler, for tests.
func (s *Server) Handler() http.Handler { return s.mux }

// Listen binds addr.
func (s *Server) Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	s.addr = l.Addr()
	return l, nil
}

// Addr is the bound address once Listen has run.
func (s *Server) Addr() net.Addr { return s.addr }

// Serve serves l until ctx is cancelled, then shuts down within 5 s.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// healthz is liveness only: the process answers. Restarting a node because
// clamd or the database is down would only make things worse.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

type readiness struct {
	Status     string             `json:"status"`
	Conditions []health.Condition `json:"conditions"`
}

// readyz says whether this node should get mail now: 503 when it should not
// (draining, SMTP down, no tenant snapshot), 200 otherwise, with degraded
// conditions listed so an operator sees what protection is missing.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	level, conds := s.health.Report()
	if conds == nil {
		conds = []health.Condition{}
	}
	code := http.StatusOK
	if level == health.NotReady {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(readiness{Status: level.String(), Conditions: conds})
}
