package node_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
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

// TestStopLeavesNoGoroutine: a node that relayed a message and was stopped
// leaves no goroutine of its own behind (sessions, the relay's cached
// downstream session, recorders, gossip, the loops of every part). Idle
// workers (the scan's pool, go-smtp's connection workers, the sink's too)
// end 2 s after their last work, so they get a few seconds to.
func TestStopLeavesNoGoroutine(t *testing.T) {
	sink := nodetest.StartSink(t)
	// The sink serves for the whole test: only goroutines started after it count.
	before := goleak.IgnoreCurrent()
	cfg := nodetest.Config(t)
	cfg.Domains = append(cfg.Domains, nodetest.Domain("example.org", sink.Addr))
	n := nodetest.Start(t, cfg, nil)
	if code, msg := smtptest.Send(t, n.SMTPAddr(), "alice@sender.test", "bob@example.org",
		[]byte("Subject: hello\r\n\r\nSee you at noon.\r\n")); code != 250 {
		t.Fatalf("send: %d %s", code, msg)
	}
	n.Stop(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := goleak.Find(before)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSecondNodeOnOneDataDirIsRefused: two nodes given one data_dir (a
// config copied for a second instance, one volume mounted into two
// containers) both ran: each start's spool sweep removed the other's
// bodies in flight, each rewrote the tenant snapshot file the other then
// journaled onto under its own id, lines a restart during a database
// outage skips, so a node came back on the other's older snapshot (a
// deleted domain accepted again). The second is refused at start, naming
// the directory; the first's lock goes with it, on Stop as on a failed
// New, so a restart on the same directory works.
func TestSecondNodeOnOneDataDirIsRefused(t *testing.T) {
	cfg := nodetest.Config(t)
	first := nodetest.Start(t, cfg, nil)

	second := nodetest.Config(t)
	second.DataDir = cfg.DataDir
	opts := node.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := node.New(context.Background(), second, opts); err == nil {
		t.Fatal("a second node started on the first's data_dir")
	} else if !strings.Contains(err.Error(), cfg.DataDir) || !strings.Contains(err.Error(), "in use by another") {
		t.Fatalf("refused with %q: want it to name the directory and say it is in use", err)
	}

	first.Stop(t)
	if _, err := node.New(context.Background(), second, node.FailAfter(opts, "data dir")); !errors.Is(err, node.ErrInjected) {
		t.Fatalf("New failing after its data dir step: %v", err)
	}
	// Both let the directory go: this start finds it free.
	nodetest.Start(t, second, nil)
}
