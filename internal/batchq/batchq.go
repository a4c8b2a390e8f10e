// Package batchq is the bounded, never-blocking queue between the SMTP path
// and a store: records are put from sessions and written in batches by one
// goroutine. Mail flow never waits for the store: when the buffer is full
// the oldest record is dropped and counted, a failed write is retried, and
// the health registry says that records are piling up.
//
// Spam-source events and message tracking both write through it; each names
// its subsystem, which prefixes its metrics (mxgrid_<subsystem>_...) and is
// its health component.
package batchq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/periodic"
)

// Config bounds the queue.
type Config struct {
	// Subsystem names the metrics and the health component ("events").
	Subsystem string
	// Noun is what one record is called in metric help and logs ("events").
	Noun string
	// Buffer is how many records may wait in memory.
	Buffer int
	// BatchSize bounds one write.
	BatchSize int
	// FlushInterval is the longest a record waits when fewer than
	// BatchSize are queued, and the retry period while the store fails.
	FlushInterval time.Duration
	// ShutdownTimeout bounds the final flush when Run's context ends.
	ShutdownTimeout time.Duration
	// Retention and PruneInterval drive the Prune function, when given:
	// at start and every PruneInterval, records older than Retention go.
	Retention     time.Duration
	PruneInterval time.Duration
	// Now is the clock retention counts from (tests inject one); nil is
	// time.Now.
	Now func() time.Time
}

// Write stores one batch; an error keeps the batch for a retry.
type Write[R any] func(ctx context.Context, batch []R) error

// Prepare turns queued records into what Write stores, once per batch
// (events geolocate here); a retried batch is not prepared again.
type Prepare[T, R any] func(ctx context.Context, batch []T) []R

// Prune deletes stored records older than before and says how many.
type Prune func(ctx context.Context, before time.Time) (int64, error)

// Queue holds records of type T and writes them as R.
type Queue[T, R any] struct {
	cfg     Config
	prepare Prepare[T, R]
	write   Write[R]
	prune   Prune
	log     *slog.Logger
	health  *health.Registry
	m       metrics

	mu   sync.Mutex
	buf  []T // ring of len cfg.Buffer: the n records from head on
	head int
	n    int
	wake chan struct{}

	// Owned by Run's goroutine.
	pending []R
	failing bool
	retryAt time.Time
}

type metrics struct {
	put, droppedFull, droppedStop, stored, storeErrors, pruned prometheus.Counter
	batch                                                      prometheus.Histogram
}

// New returns a queue; Run writes it. prune, reg, log and h may be nil.
func New[T, R any](cfg Config, prepare Prepare[T, R], write Write[R], prune Prune, reg prometheus.Registerer, log *slog.Logger, h *health.Registry) (*Queue[T, R], error) {
	if cfg.Subsystem == "" || cfg.Buffer <= 0 || cfg.BatchSize <= 0 || cfg.FlushInterval <= 0 || cfg.ShutdownTimeout <= 0 {
		return nil, fmt.Errorf("batchq: subsystem, buffer, batch size, flush interval and shutdown timeout must be set (%+v)", cfg)
	}
	if prune != nil && (cfg.Retention <= 0 || cfg.PruneInterval <= 0) {
		return nil, fmt.Errorf("batchq: pruning needs a retention and an interval (%+v)", cfg)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Noun == "" {
		cfg.Noun = "records"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	q := &Queue[T, R]{
		cfg: cfg, prepare: prepare, write: write, prune: prune, log: log, health: h,
		buf:  make([]T, cfg.Buffer),
		wake: make(chan struct{}, 1),
	}
	q.m = newMetrics(reg, cfg, q.Len)
	return q, nil
}

func newMetrics(reg prometheus.Registerer, cfg Config, buffered func() int) metrics {
	f := promauto.With(reg)
	name := func(s string) string { return "mxgrid_" + cfg.Subsystem + "_" + s }
	dropped := f.NewCounterVec(prometheus.CounterOpts{
		Name: name("dropped_total"),
		Help: fmt.Sprintf("%s lost: the oldest when the buffer is full (buffer_full), or those still unwritten when the node stopped (shutdown).", title(cfg.Noun)),
	}, []string{"reason"})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: name("buffered"),
		Help: fmt.Sprintf("%s waiting in memory to be written.", title(cfg.Noun)),
	}, func() float64 { return float64(buffered()) })
	return metrics{
		put: f.NewCounter(prometheus.CounterOpts{
			Name: name("recorded_total"),
			Help: fmt.Sprintf("%s handed to the recorder by the SMTP path.", title(cfg.Noun)),
		}),
		droppedFull: dropped.WithLabelValues("buffer_full"),
		droppedStop: dropped.WithLabelValues("shutdown"),
		stored: f.NewCounter(prometheus.CounterOpts{
			Name: name("stored_total"),
			Help: fmt.Sprintf("%s written to the store.", title(cfg.Noun)),
		}),
		storeErrors: f.NewCounter(prometheus.CounterOpts{
			Name: name("store_errors_total"),
			Help: "Failed batch writes (the batch is retried).",
		}),
		pruned: f.NewCounter(prometheus.CounterOpts{
			Name: name("pruned_total"),
			Help: fmt.Sprintf("%s deleted after the retention period.", title(cfg.Noun)),
		}),
		batch: f.NewHistogram(prometheus.HistogramOpts{
			Name:    name("batch_write_seconds"),
			Help:    fmt.Sprintf("Time to write one batch of %s to the store.", cfg.Noun),
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
	}
}

func title(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// Len is how many records wait in memory.
func (q *Queue[T, R]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Room is how many records Put takes before it drops the oldest, and how
// many the buffer holds in all: a producer of records in bulk, which may
// wait, waits for room rather than pushing out the SMTP path's records.
func (q *Queue[T, R]) Room() (free, size int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf) - q.n, len(q.buf)
}

// Put queues v and returns at once: it never blocks and never fails. When
// the buffer is full the oldest queued record is dropped and counted.
func (q *Queue[T, R]) Put(v T) {
	q.m.put.Inc()
	q.mu.Lock()
	if q.n == len(q.buf) {
		q.buf[q.head] = v // overwrite the oldest
		q.head = (q.head + 1) % len(q.buf)
		q.mu.Unlock()
		q.m.droppedFull.Inc()
		return
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
	ready := q.n >= q.cfg.BatchSize
	q.mu.Unlock()
	if ready {
		select {
		case q.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// take removes up to max records from the front of the buffer.
func (q *Queue[T, R]) take(max int) []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := min(q.n, max)
	if k == 0 {
		return nil
	}
	out := make([]T, k)
	var zero T
	for i := range out {
		j := (q.head + i) % len(q.buf)
		out[i] = q.buf[j]
		q.buf[j] = zero // let what it references be collected
	}
	q.head = (q.head + k) % len(q.buf)
	q.n -= k
	return out
}

// Run writes queued records in batches (and prunes old ones) until ctx
// ends; then it writes what it still holds, bounded by ShutdownTimeout,
// and returns an error only if records were lost that way.
func (q *Queue[T, R]) Run(ctx context.Context) error {
	if q.prune != nil {
		pruneDone := make(chan struct{})
		defer func() { <-pruneDone }()
		go func() {
			defer close(pruneDone)
			q.pruneOld(ctx)
			periodic.Every(ctx, q.cfg.PruneInterval, nil, q.pruneOld)
		}()
	}
	flush := time.NewTicker(q.cfg.FlushInterval)
	defer flush.Stop()
	for {
		drain := false
		select {
		case <-ctx.Done():
			return q.shutdown(ctx)
		case <-q.wake:
		case <-flush.C:
			drain = true
		}
		if q.failing && time.Now().Before(q.retryAt) {
			continue // the store just failed; retry on the next tick, not per record
		}
		q.flush(ctx, drain)
	}
}

// flush writes batches until a write fails (the failed batch stays pending
// and is retried first) or fewer than a full batch is left; drain (the
// ticker, shutdown) writes that rest too. A wake-up writes full batches
// only: a commit costs about the same for 10 rows as for 500 (the tail
// pages of the table and of every index are written again), and draining
// on every wake-up wrote ~150-row batches at 2,000 messages/s, three times
// the commits. What is left waits for the tick, FlushInterval at most.
func (q *Queue[T, R]) flush(ctx context.Context, drain bool) error {
	for {
		if q.pending == nil {
			if !drain && q.Len() < q.cfg.BatchSize {
				return nil
			}
			recs := q.take(q.cfg.BatchSize)
			if len(recs) == 0 {
				return nil
			}
			q.pending = q.prepare(ctx, recs)
		}
		if err := q.writeBatch(ctx, q.pending); err != nil {
			return err
		}
		q.pending = nil
	}
}

func (q *Queue[T, R]) writeBatch(ctx context.Context, batch []R) error {
	start := time.Now()
	err := q.write(ctx, batch)
	q.m.batch.Observe(time.Since(start).Seconds())
	if err != nil {
		q.m.storeErrors.Inc()
		q.retryAt = time.Now().Add(q.cfg.FlushInterval)
		if !q.failing {
			q.failing = true
			q.log.Error("storing "+q.cfg.Noun+" failed; retrying, the buffer drops the oldest when full", "batch", len(batch), "err", err)
			if q.health != nil {
				q.health.Set(q.cfg.Subsystem, health.Degraded,
					fmt.Sprintf("%s cannot be stored (%v); buffering up to %d, then dropping the oldest", q.cfg.Noun, err, q.cfg.Buffer))
			}
		}
		return err
	}
	q.m.stored.Add(float64(len(batch)))
	if q.failing {
		q.failing = false
		q.log.Info("storing " + q.cfg.Noun + " again")
		if q.health != nil {
			q.health.Set(q.cfg.Subsystem, health.OK, "")
		}
	}
	return nil
}

func (q *Queue[T, R]) pruneOld(ctx context.Context) {
	before := q.cfg.Now().Add(-q.cfg.Retention)
	n, err := q.prune(ctx, before)
	q.m.pruned.Add(float64(n))
	if err != nil {
		if ctx.Err() == nil {
			q.log.Warn("pruning old "+q.cfg.Noun, "before", before, "err", err)
		}
		return
	}
	if n > 0 {
		q.log.Info("pruned old "+q.cfg.Noun, "count", n, "before", before)
	}
}

// shutdown writes everything still held, within ShutdownTimeout. A context
// detached from the cancelled one lets the writes proceed.
func (q *Queue[T, R]) shutdown(parent context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), q.cfg.ShutdownTimeout)
	defer cancel()
	err := q.flush(ctx, true)
	if err == nil {
		return nil
	}
	lost := len(q.pending)
	q.pending = nil
	q.mu.Lock()
	lost += q.n
	q.head, q.n = 0, 0
	clear(q.buf)
	q.mu.Unlock()
	q.m.droppedStop.Add(float64(lost))
	return fmt.Errorf("%s: %d %s not stored at shutdown: %w", q.cfg.Subsystem, lost, q.cfg.Noun, err)
}

// MaxBuffer bounds Tuning.Buffer, a hundred times the default. New
// allocates the ring whole: a buffer of 4e9 records was a fatal "out of
// memory" as the node started, one of 1e14 a makeslice panic.
const MaxBuffer = 1_000_000

// Tuning is the YAML-facing part of a queue's configuration and its
// retention, shared (inline) by the events and tracking sections.
type Tuning struct {
	// Buffer is how many records wait in memory for the writer. When it is
	// full the oldest is dropped (and counted): mail never waits.
	Buffer int `yaml:"buffer"`
	// Retention is how long records are kept; older ones are pruned in
	// the background.
	Retention time.Duration `yaml:"retention"`
	// BatchSize bounds one store write.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest a record waits before it is written
	// when fewer than BatchSize are pending; also the retry period while
	// the store fails.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// PruneInterval is how often records older than Retention are deleted.
	PruneInterval time.Duration `yaml:"prune_interval"`
	// ShutdownTimeout bounds the final flush when the node stops.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// DefaultTuning keeps 30 days and buffers a burst of 10,000 records.
func DefaultTuning() Tuning {
	return Tuning{
		Buffer:          10_000,
		Retention:       30 * 24 * time.Hour,
		BatchSize:       500,
		FlushInterval:   time.Second,
		PruneInterval:   time.Hour,
		ShutdownTimeout: 10 * time.Second,
	}
}

// minFlushInterval is below periodic.MinInterval: a flush of an empty
// queue costs no store call, and 1ns, back to back, still half a core.
const minFlushInterval = time.Millisecond

// Validate checks the keys; messages name them.
func (t Tuning) Validate() error {
	switch {
	case t.Buffer <= 0 || t.Buffer > MaxBuffer:
		return fmt.Errorf("buffer: between 1 and %d (the whole buffer is allocated when the node starts)", MaxBuffer)
	case t.Retention < time.Hour:
		return errors.New("retention: must be at least 1h")
	case t.BatchSize <= 0:
		return errors.New("batch_size: must be positive")
	case t.FlushInterval < minFlushInterval:
		return fmt.Errorf("flush_interval: at least %s", minFlushInterval)
	case t.PruneInterval < periodic.MinInterval:
		return fmt.Errorf("prune_interval: at least %s", periodic.MinInterval)
	case t.ShutdownTimeout <= 0:
		return errors.New("shutdown_timeout: must be positive")
	}
	return nil
}

// Queue returns the queue configuration for subsystem.
func (t Tuning) Queue(subsystem, noun string) Config {
	return Config{Subsystem: subsystem, Noun: noun, Buffer: t.Buffer, BatchSize: t.BatchSize,
		FlushInterval: t.FlushInterval, ShutdownTimeout: t.ShutdownTimeout,
		Retention: t.Retention, PruneInterval: t.PruneInterval}
}
