// Package reloadstate reports, the same way for each, the state of a file
// a node reloads while it runs (the spam model, the STARTTLS pair, the
// GeoIP databases). A reload that fails keeps the version in force, which
// is right, but said so only in the log: an operator whose pipeline pushed
// a truncated model never learnt that the nodes still ran the old one.
// Each file now has two metrics, <prefix>_loads_total{result} and
// <prefix>_loaded_timestamp_seconds, and a degraded condition in /readyz
// that names the file and the error while the file on disk is not the one
// in force, cleared once a good one is loaded.
package reloadstate

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/health"
)

// Spec describes one reloaded file.
type Spec struct {
	// Metric is the prefix of the file's metrics, mxgrid_<subsystem>_<name>.
	Metric string
	// Labels tell apart files that share Metric (geo's database label);
	// such files must share Help too.
	Labels prometheus.Labels
	// Help names the file (or the files sharing Metric) in the metrics'
	// help, with its configuration key.
	Help string
	// Name names the file in /readyz: its configuration key, or what it
	// holds ("STARTTLS certificate").
	Name string
	// Paths are the file's paths, named in /readyz after an error that
	// names none of them.
	Paths []string
	// Component is the /readyz component that reports the file; "" leaves
	// that to the owner, which reads Reason (geo folds it into its own).
	Component string
}

// File is the state of one reloaded file. Its owner calls Loaded, Failed
// and InForce as its poller finds the file; all are safe for concurrent
// use.
type File struct {
	spec   Spec
	health *health.Registry
	ok     prometheus.Counter
	failed prometheus.Counter
	loaded *prometheus.GaugeVec

	mu       sync.Mutex
	loadedAt time.Time
	reason   string
}

// New registers the file's metrics on reg (nil: unregistered) and reports
// it to h (nil: nowhere).
func New(reg prometheus.Registerer, h *health.Registry, s Spec) *File {
	f := promauto.With(reg)
	loads := f.NewCounterVec(prometheus.CounterOpts{
		Name:        s.Metric + "_loads_total",
		Help:        fmt.Sprintf("Loads of %s by result: ok, or error (the file does not load or cannot be read, and the version loaded before stays in force; /readyz says so until a good file is loaded).", s.Help),
		ConstLabels: s.Labels,
	}, []string{"result"})
	return &File{
		spec:   s,
		health: h,
		ok:     loads.WithLabelValues("ok"),
		failed: loads.WithLabelValues("error"),
		// A vector of no variable label, so that the series is absent
		// until something is loaded rather than a misleading 0.
		loaded: f.NewGaugeVec(prometheus.GaugeOpts{
			Name:        s.Metric + "_loaded_timestamp_seconds",
			Help:        fmt.Sprintf("When the version of %s in force was loaded, as a Unix time; absent while none is. Older than the file's deployment: the nodes still run the previous one (mxgrid_health_level, /readyz say why).", s.Help),
			ConstLabels: s.Labels,
		}, nil),
	}
}

// Loaded records that the file on disk was loaded and is now in force.
func (f *File) Loaded() {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ok.Inc()
	f.loaded.WithLabelValues().Set(float64(now.UnixNano()) / 1e9)
	f.loadedAt, f.reason = now, ""
	f.report()
}

// Failed records that the file on disk could not be read or loaded, so the
// version in force (if any) is not it. Call it once per failure (a new
// file, a new error), not every poll: each call counts one.
func (f *File) Failed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed.Inc()
	msg := err.Error()
	if !slices.ContainsFunc(f.spec.Paths, func(p string) bool { return strings.Contains(msg, p) }) {
		msg += " (" + strings.Join(f.spec.Paths, ", ") + ")"
	}
	if f.loadedAt.IsZero() {
		f.reason = fmt.Sprintf("%s not loaded: %s; nothing loaded from it is in force", f.spec.Name, msg)
	} else {
		f.reason = fmt.Sprintf("%s not loaded: %s; the version loaded at %s is still in force",
			f.spec.Name, msg, f.loadedAt.UTC().Format(time.RFC3339))
	}
	f.report()
}

// InForce records that the file on disk is the one in force again without
// a load: a file gone for a while and back unchanged.
func (f *File) InForce() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reason == "" {
		return
	}
	f.reason = ""
	f.report()
}

// Reason says why the file on disk is not in force, or "" when it is.
func (f *File) Reason() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reason
}

func (f *File) report() {
	if f.health == nil || f.spec.Component == "" {
		return
	}
	if f.reason == "" {
		f.health.Set(f.spec.Component, health.OK, "")
		return
	}
	f.health.Set(f.spec.Component, health.Degraded, f.reason)
}
