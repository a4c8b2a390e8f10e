package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/cluster"
	"github.com/mxgrid/mxgrid/health"
)

// A node on its own: announcements reach every node, the sender included,
// and the leader is the lowest-named ready member, here the only one.
// Draining takes the node out of rotation through its health registry.
func Example() {
	ready := health.New()
	c, err := cluster.New(
		cluster.Config{Bind: "127.0.0.1:0", Profile: "lan"},
		cluster.NodeInfo{Name: "mx1", Provider: "hetzner", Region: "fsn1", Version: "v1.0.0", Started: time.Now()},
		ready, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()

	got := make(chan string, 1)
	c.Subscribe("tenant.config", func(payload []byte, from string) {
		got <- fmt.Sprintf("%s from %s", payload, from)
	})
	if err := c.Broadcast("tenant.config", []byte("version=2")); err != nil {
		fmt.Println(err)
	}
	fmt.Println(<-got)
	fmt.Println("leader:", c.Leader(), c.IsLeader())

	c.Drain()
	level, conds := ready.Report()
	fmt.Println(level, conds[0].Component, conds[0].Reason)

	cancel() // Run leaves the cluster and returns
	<-done
	// Output:
	// version=2 from mx1
	// leader: mx1 true
	// not_ready cluster draining
}
