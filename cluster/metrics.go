package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	probeFailures prometheus.Counter
	transitions   *prometheus.CounterVec
	probeRTT      prometheus.Histogram
	gossipBytes   *prometheus.CounterVec
	dropped       prometheus.Counter
	// streamsRefused counts inbound gossip TCP streams cut off by the
	// transport's limits: someone without the key, or a cluster that
	// outgrew them.
	streamsRefused *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, c *Cluster) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		probeFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_cluster_probe_failures_total",
			Help: "Probes of another member by this node that got no ack (the member became suspect).",
		}),
		transitions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_cluster_member_transitions_total",
			Help: "Members entering a state as seen by this node; state is alive, suspect, dead or left.",
		}, []string{"state"}),
		probeRTT: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "mxgrid_cluster_probe_rtt_seconds",
			Help:    "Round trip of this node's successful direct probes.",
			Buckets: []float64{.0005, .001, .005, .01, .025, .05, .1, .2, .4, .8},
		}),
		gossipBytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_cluster_gossip_bytes_total",
			Help: "Gossip traffic of this node (UDP and TCP, after encryption); direction is in or out.",
		}, []string{"direction"}),
		streamsRefused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_cluster_streams_refused_total",
			Help: "Inbound gossip TCP streams cut off by this node's limits; reason is busy (too many open at once, from one address or in all) or too_large (over 1 MiB).",
		}, []string{"reason"}),
		dropped: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_cluster_inbox_dropped_total",
			Help: "Broadcasts and membership events dropped because this node's handlers fell behind.",
		}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxgrid_cluster_broadcast_queue_messages",
		Help: "Broadcasts waiting for their retransmissions.",
	}, func() float64 { return float64(c.queue.NumQueued()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxgrid_cluster_is_leader",
		Help: "1 on the node that runs cluster-wide periodic jobs; the sum over nodes should be 1.",
	}, func() float64 {
		if c.IsLeader() {
			return 1
		}
		return 0
	})
	reg.MustRegister(membersCollector{c})
	return m
}

var membersDesc = prometheus.NewDesc("mxgrid_cluster_members",
	"Members known to this node by state (alive, suspect, dead, left) and provider.",
	[]string{"state", "provider"}, nil)

// membersCollector computes the member gauge at scrape time from the member
// table, so a provider that disappears leaves no stale series behind.
type membersCollector struct{ c *Cluster }

func (m membersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- membersDesc }

func (m membersCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct {
		state    State
		provider string
	}
	counts := map[key]int{}
	for _, mem := range m.c.Members() {
		counts[key{mem.State, mem.Provider}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(n), string(k.state), k.provider)
	}
}
