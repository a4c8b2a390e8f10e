package node_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"testing"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/node"
	"go.uber.org/goleak"
)

// TestFailedNewReleasesEverything: New failing after any of its steps (the
// cluster's and the ones after it in particular: memberlist is up by then)
// leaves no goroutine behind and frees every port it bound, so the gossip
// port (TCP and UDP), SMTP, HTTP and management can be bound again at once.
func TestFailedNewReleasesEverything(t *testing.T) {
	steps := node.BuildSteps()
	if i := slices.Index(steps, "cluster"); i < 0 || i == len(steps)-1 {
		t.Fatalf("build steps %v: want a cluster step with steps after it", steps)
	}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			cfg := nodetest.Config(t)
			addrs := map[string]*string{
				"smtp": &cfg.SMTP.Listen, "http": &cfg.HTTP.Listen,
				"management": &cfg.HTTP.ManagementListen, "gossip": &cfg.Cluster.Bind,
			}
			for _, a := range addrs {
				*a = net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
			}
			opts := node.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			n, err := node.New(context.Background(), cfg, node.FailAfter(opts, step))
			if !errors.Is(err, node.ErrInjected) || n != nil {
				t.Fatalf("New = %v, %v; want the injected failure", n, err)
			}
			for name, a := range addrs {
				l, err := net.Listen("tcp", *a)
				if err != nil {
					t.Errorf("%s port %s still taken: %v", name, *a, err)
					continue
				}
				l.Close()
			}
			// memberlist gossips over UDP on the same port.
			u, err := net.ListenPacket("udp", cfg.Cluster.Bind)
			if err != nil {
				t.Fatalf("gossip UDP port %s still taken: %v", cfg.Cluster.Bind, err)
			}
			u.Close()
		})
	}
}
