// Package nodetest runs real nodes in-process on loopback for end-to-end
// tests (package e2e, and the tests of node and cmd/mxgrid): a test sends
// over real SMTP and checks what the customer's server received. Leaf
// packages' tests must not use it (internal/archtest checks): they build
// their own package with internal/smtptest's sinks.
package nodetest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/node"
	"github.com/mxgrid/mxgrid/scanner"
)

// The downstream sink lives in smtptest so that leaf packages' tests can use
// it without a node; these names keep an end-to-end test on one import.
type (
	Sink     = smtptest.Sink
	Received = smtptest.Received
)

var (
	StartSink      = smtptest.StartSink
	StripPrepended = smtptest.StripPrepended
	Domain         = smtptest.Domain
)

// NoDNS is a loopback address where no DNS server listens.
const NoDNS = "127.0.0.1:9"

// Node is a node running in the test process.
type Node struct {
	*node.Node
	Config config.Config
	done   chan error
	cancel context.CancelFunc
}

// Config returns a loopback configuration with ports chosen by the OS and
// data in a temporary directory.
func Config(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.Node.Name = "test-node"
	cfg.SMTP.Listen = "127.0.0.1:0"
	cfg.SMTP.Hostname = "mx.test"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.HTTP.ManagementListen = "127.0.0.1:0"
	cfg.Cluster.Bind = "127.0.0.1:0"
	// Test nodes join each other on loopback without a gossip key.
	cfg.Cluster.InsecureNoKey = true
	cfg.DataDir = t.TempDir()
	cfg.SMTP.ShutdownGrace = 5 * time.Second
	// Test downstreams (sinks) listen on loopback, where tenant routes may
	// not go by default.
	cfg.Relay.AllowedRouteNetworks = []string{smtptest.Loopback.String()}
	// Sender authentication is on by default; tests that do not serve DNS
	// point it at a loopback port nobody answers, which fails at once, so
	// no test waits on the machine's resolver (CI may have none).
	cfg.DNS.Server = NoDNS
	return cfg
}

// Start builds and runs a node from cfg; stages replaces the configured
// checks when non-nil. The node is stopped at the end of the test.
func Start(t testing.TB, cfg config.Config, stages []scanner.Stage) *Node {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	var logw io.Writer = io.Discard
	if os.Getenv("MXGRID_TEST_LOG") != "" {
		logw = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.New(ctx, cfg, node.Options{Log: log, Stages: stages})
	if err != nil {
		cancel()
		t.Fatalf("start node: %v", err)
	}
	tn := &Node{Node: n, Config: cfg, done: make(chan error, 1), cancel: cancel}
	go func() { tn.done <- n.Run(ctx) }()
	t.Cleanup(func() { tn.Stop(t) })
	return tn
}

// StartWithSink runs a node that relays example.org to a new sink; mutate,
// when set, edits the config first (the sink's address is
// cfg.Domains[0].Route).
func StartWithSink(t testing.TB, mutate func(*config.Config)) (*Node, *Sink) {
	t.Helper()
	sink := StartSink(t)
	cfg := Config(t)
	cfg.Domains = append(cfg.Domains, Domain("example.org", sink.Addr))
	if mutate != nil {
		mutate(&cfg)
	}
	return Start(t, cfg, nil), sink
}

// Stop shuts the node down and waits for Run to return.
func (n *Node) Stop(t testing.TB) {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.cancel = nil
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("node Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("node did not stop within 30 s")
	}
}

// TagBand is a check that puts messages whose subject contains "TAGME"
// between the default tag (6) and reject (12) scores, and leaves the rest
// alone: tests of what happens in the tag band (tagging, the quarantine)
// need it without the real model's judgement.
type TagBand struct{}

func (TagBand) Name() string { return "tag_band" }

func (TagBand) Check(_ context.Context, _ *scanner.Envelope, m *scanner.Message) (scanner.Result, error) {
	if strings.Contains(m.Subject, "TAGME") {
		return scanner.Result{Symbols: []scanner.Symbol{{Name: "TEST_TAG_BAND", Score: 8}}}, nil
	}
	return scanner.Result{}, nil
}
