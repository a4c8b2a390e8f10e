package smtpd_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/netguard"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// testNode is an smtpd.Server with the collaborators a node gives it, built
// from a config the way the node builds them (directory from the configured
// domains, the real relay behind the route guard, the scan pipeline, the
// default policy), and nothing else: no store, cluster or HTTP. smtpd's own
// behaviour is tested through it over real sockets; what depends on the
// node's wiring is tested in package e2e.
type testNode struct {
	Config  config.Config
	addr    string
	health  *health.Registry
	metrics prometheus.Gatherer
}

func (n *testNode) SMTPAddr() string         { return n.addr }
func (n *testNode) Health() *health.Registry { return n.health }

// testConfig is a loopback configuration: the port chosen by the OS, tenant
// routes allowed to reach the loopback sinks.
func testConfig(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.Node.Name = "test-node"
	cfg.DataDir = t.TempDir()
	cfg.SMTP.Listen = "127.0.0.1:0"
	cfg.SMTP.Hostname = "mx.test"
	cfg.SMTP.ShutdownGrace = 5 * time.Second
	cfg.Relay.AllowedRouteNetworks = []string{smtptest.Loopback.String()}
	return cfg
}

// startConfigured serves cfg's SMTP side until the end of the test; stages
// are the scan checks (nil: none, every message is delivered).
func startConfigured(t *testing.T, cfg config.Config, stages []scanner.Stage) *testNode {
	t.Helper()
	return startWith(t, cfg, configDeps(t, cfg, stages))
}

// configDeps builds the server's collaborators from cfg; a test may replace
// some (a fake relay) before startWith.
func configDeps(t testing.TB, cfg config.Config, stages []scanner.Stage) smtpd.Deps {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	domains, err := cfg.StaticDomains()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tenant.NewSnapshot(1, domains)
	if err != nil {
		t.Fatal(err)
	}
	allowed, err := netguard.ParsePrefixes(cfg.Relay.AllowedRouteNetworks)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	return smtpd.Deps{
		Directory:  tenant.NewDirectory(snap),
		Parser:     scanner.NewParser(cfg.Scanner.Weights),
		AuthServID: cfg.AuthServID(),
		Scanner:    scanner.NewPipeline(stages, cfg.Scanner.Timeout, log, reg),
		Relay:      smtpd.Relay{Relay: relay.New(cfg.Relay, cfg.SMTP.Hostname, netguard.New(nil, allowed), log, reg)},
		Policy:     cfg.Scanner.Policy(),
		Health:     health.New(),
		Log:        log,
		Registry:   reg,
		SpoolDir:   filepath.Join(cfg.DataDir, "spool"),
	}
}

// startWith serves an smtpd.Server made of cfg.SMTP and deps until the end
// of the test.
func startWith(t testing.TB, cfg config.Config, deps smtpd.Deps) *testNode {
	t.Helper()
	srv, err := smtpd.New(cfg.SMTP, deps)
	if err != nil {
		t.Fatal(err)
	}
	gatherer, _ := deps.Registry.(prometheus.Gatherer)
	return &testNode{Config: cfg, addr: serve(t, srv, cfg.SMTP.ShutdownGrace), health: deps.Health, metrics: gatherer}
}

// serve runs srv until the end of the test, then shuts it down within grace
// and waits for Serve to return.
func serve(t testing.TB, srv *smtpd.Server, grace time.Duration) string {
	t.Helper()
	l, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return l.Addr().String()
}
