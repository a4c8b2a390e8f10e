package tracking

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/internal/periodic"
)

// WaitingSource reads the deferral view; *store.Store implements it.
type WaitingSource interface {
	WaitingTracking(ctx context.Context, f WaitingFilter) ([]Waiting, error)
}

// WaitingGauge publishes, per domain, how many messages senders are still
// retrying because we deferred them (mxgrid_tracking_waiting_messages):
// what an alert on "the customer's server is down and mail is piling up at
// senders" reads. Only the cluster's leader publishes (every node would
// count the same shared records); the others publish nothing, so the
// alert is max by (domain).
type WaitingGauge struct {
	src      WaitingSource
	leader   func() bool
	window   time.Duration
	interval time.Duration
	log      *slog.Logger
	gauge    *prometheus.GaugeVec
}

// NewWaitingGauge reads the last window of deferrals every interval.
func NewWaitingGauge(src WaitingSource, leader func() bool, window, interval time.Duration, reg prometheus.Registerer, log *slog.Logger) *WaitingGauge {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &WaitingGauge{src: src, leader: leader, window: window, interval: interval, log: log,
		gauge: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: "mxgrid_tracking_waiting_messages",
			Help: "Messages we deferred (4xx) in the deferral window that their sender has not yet delivered on a retry, per recipient domain; published by the cluster's leader only.",
		}, []string{"domain"}),
	}
}

// Run refreshes the gauge until ctx ends.
func (g *WaitingGauge) Run(ctx context.Context) error {
	g.refresh(ctx)
	periodic.Every(ctx, g.interval, nil, g.refresh)
	return nil
}

func (g *WaitingGauge) refresh(ctx context.Context) {
	if !g.leader() {
		g.gauge.Reset()
		return
	}
	ws, err := g.src.WaitingTracking(ctx, WaitingFilter{Scope: Scope{Operator: true}, Since: time.Now().Add(-g.window)})
	if err != nil {
		// Keep the last values: a store blip must not clear an alert.
		g.log.Warn("reading the deferral view", "err", err)
		return
	}
	counts := map[string]int{}
	for _, w := range ws {
		counts[w.Domain]++
	}
	g.gauge.Reset()
	for d, n := range counts {
		g.gauge.WithLabelValues(d).Set(float64(n))
	}
}
