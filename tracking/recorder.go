package tracking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/batchq"
	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/replytext"
)

// HealthComponent is the name the Recorder reports under (and its
// metrics' subsystem).
const HealthComponent = "tracking"

// Config is the `tracking:` section.
type Config struct {
	// Enabled records every recipient's outcome (default true).
	Enabled bool `yaml:"enabled"`
	// StoreSubjects keeps each message's Subject in its record (default
	// true). Subjects are personal data: turn this off where the hosting
	// contract or local law forbids keeping them for Retention.
	StoreSubjects bool `yaml:"store_subjects"`
	// DeferralWindow is how far back the deferral view looks for mail
	// senders are still retrying (their retries give up after days; the
	// view is about what is stuck now).
	DeferralWindow time.Duration `yaml:"deferral_window"`
	// DeferralInterval is how often the leader refreshes
	// mxgrid_tracking_waiting_messages.
	DeferralInterval time.Duration `yaml:"deferral_interval"`
	batchq.Tuning    `yaml:",inline"`
}

// DefaultConfig records everything for 30 days.
//
// Batches are of 2,000 records, not the queues' default 500: each commit
// writes again every index page its rows touched, and a node's records
// touch the same few pages of most indexes (one place per sender,
// recipient, tenant, and the newest time and queue ids), so four times the
// rows cost SQLite under half the page writes per record. Below 2,000
// messages a second that is one commit a flush_interval, which still
// bounds how long a record waits.
func DefaultConfig() Config {
	c := Config{Enabled: true, StoreSubjects: true, DeferralWindow: 12 * time.Hour, DeferralInterval: time.Minute,
		Tuning: batchq.DefaultTuning()}
	c.BatchSize = 2000
	return c
}

// Validate checks the section; messages name the key.
func (c Config) Validate() error {
	switch {
	case c.DeferralWindow < time.Minute:
		return errors.New("deferral_window: must be at least 1m")
	case c.DeferralInterval < periodic.MinInterval:
		return fmt.Errorf("deferral_interval: at least %s", periodic.MinInterval)
	}
	return c.Tuning.Validate()
}

// Store persists records; *store.Store is the implementation.
type Store interface {
	// InsertTracking writes recs, all or none; it may set their IDs,
	// and recs given again (a retry) are the same batch.
	InsertTracking(ctx context.Context, recs []Record) error
	PruneTracking(ctx context.Context, before time.Time) (int64, error)
}

// Field bounds: a record stays small whatever the client sent.
const (
	maxText    = 998
	maxSymbols = 10
)

// Recorder takes records from the SMTP path without ever blocking it.
type Recorder struct {
	cfg   Config
	store Store
	log   *slog.Logger
	queue *batchq.Queue[Record, Record]
}

// NewRecorder returns a Recorder; Run writes.
func NewRecorder(cfg Config, st Store, reg prometheus.Registerer, log *slog.Logger, h *health.Registry) (*Recorder, error) {
	return newRecorder(cfg, st, reg, log, h, nil)
}

// newRecorder is NewRecorder with the clock retention counts from.
func newRecorder(cfg Config, st Store, reg prometheus.Registerer, log *slog.Logger, h *health.Registry, now func() time.Time) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tracking: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{cfg: cfg, store: st, log: log.With("component", HealthComponent)}
	keep := func(_ context.Context, recs []Record) []Record { return recs }
	qc := cfg.Queue(HealthComponent, "message records")
	qc.Now = now
	q, err := batchq.New(qc, keep, st.InsertTracking, st.PruneTracking, reg, r.log, h)
	if err != nil {
		return nil, fmt.Errorf("tracking: %w", err)
	}
	r.queue = q
	return r, nil
}

// Record queues rec and returns at once; a full buffer drops the oldest.
// Client-supplied text is bounded and made valid UTF-8 here, once.
func (r *Recorder) Record(rec Record) {
	if rec.Time.IsZero() {
		rec.Time = time.Now()
	}
	// The store gives a batch its ids once, and takes a batch given again
	// with them for one it wrote before.
	rec.ID = 0
	if !r.cfg.StoreSubjects {
		rec.Subject = ""
	}
	for _, f := range []*string{&rec.HELO, &rec.Sender, &rec.Recipient, &rec.MessageID, &rec.Subject, &rec.Reply, &rec.Downstream} {
		*f = Clip(*f)
	}
	if len(rec.Symbols) > maxSymbols {
		rec.Symbols = rec.Symbols[:maxSymbols]
	}
	rec.Symbols = append([]string(nil), rec.Symbols...)
	r.queue.Put(rec)
}

// Room is how many records Record takes before it drops the oldest, and
// how many the buffer holds in all (batchq.Queue.Room).
func (r *Recorder) Room() (free, size int) { return r.queue.Room() }

// Clip makes s one line of printable, valid UTF-8 of at most 998 bytes:
// what a client or a downstream server wrote is shown in the panel, the API
// and the CLI, and PostgreSQL stores nothing else. The quarantine keeps its
// subjects the same way.
//
// A cut value is a copy, not a slice of s: records wait by the thousand in
// the buffer, and a 998-byte slice of a 1 MB Subject held all of it, for
// every message. Only the start of s is made printable: Printable never
// lengthens text and shortens no character below a third of its bytes
// (U+FFFD, 3 bytes, becomes '?'), and a character cut at clipRead becomes
// at most 3 bytes, so that start yields the same first maxText+1 bytes
// as the whole would. Making a 1 MB Subject printable for each of a
// message's 100 recipients was 100 MB of copies.
func Clip(s string) string {
	c := replytext.Truncate(replytext.Printable(s[:min(len(s), clipRead)]), maxText)
	if len(c) < len(s) {
		c = strings.Clone(c)
	}
	return c
}

// clipRead is how much of a value Clip reads, as it says.
const clipRead = 3*(maxText+1) + 3

// Run writes and prunes until ctx ends, then flushes what it holds.
func (r *Recorder) Run(ctx context.Context) error { return r.queue.Run(ctx) }
