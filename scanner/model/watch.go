package model

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/internal/reloadstate"
	"github.com/mxgrid/mxgrid/scanner"
)

// Watcher serves a model file and reloads it when it changes on disk. A
// reload that fails keeps the previous model: a half-written or corrupt
// file never takes the node's classifier away. Scans in flight keep the
// model they started with, so nothing is dropped during a swap. Its state
// (loads, when the model in force was loaded, a file on disk that is not
// it) is reported through reloadstate.
type Watcher struct {
	mu       sync.Mutex // serialises reloads
	path     string
	interval time.Duration
	log      *slog.Logger
	state    *reloadstate.File
	cur      atomic.Pointer[Model]
	// loaded is the stamp of the file in force; tried that of the file
	// last read, which did not load when it differs.
	loaded, tried fileStamp
	// unreadable is the stat error last logged, so that a file gone for
	// good is reported once, not every interval (17,280 lines a day).
	unreadable string
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

// HealthComponent is the /readyz component that reports a model file on
// disk that is not the one in force.
const HealthComponent = "model_file"

// FileState returns the reloadstate of the model file at path, its
// metrics on reg and its condition in h (either may be nil).
func FileState(reg prometheus.Registerer, h *health.Registry, path string) *reloadstate.File {
	return reloadstate.New(reg, h, reloadstate.Spec{
		Metric:    "mxgrid_scanner_model",
		Help:      "the spam model file (scanner.model_file)",
		Name:      "scanner.model_file",
		Paths:     []string{path},
		Component: HealthComponent,
	})
}

// NewWatcher loads path once and fails if it cannot: a node configured with
// a model file must not start without it. interval is how often Run checks
// the file (stat only; the file is read when its size or mtime changed).
// state receives the file's loads (nil: FileState without metrics or
// health).
func NewWatcher(path string, interval time.Duration, log *slog.Logger, state *reloadstate.File) (*Watcher, error) {
	if state == nil {
		state = FileState(nil, nil, path)
	}
	w := &Watcher{path: path, interval: interval, log: log, state: state}
	st, err := stamp(path)
	if err != nil {
		return nil, fmt.Errorf("model file: %w", err)
	}
	m, err := Load(path)
	if err != nil {
		return nil, err
	}
	w.cur.Store(m)
	w.loaded, w.tried = st, st
	w.state.Loaded()
	return w, nil
}

// Model returns the model in force.
func (w *Watcher) Model() *Model { return w.cur.Load() }

// Run polls the file until ctx ends. Polling (rather than inotify) also
// works on network and container-mounted volumes, and costs one stat.
func (w *Watcher) Run(ctx context.Context) error {
	periodic.Every(ctx, w.interval, nil, func(context.Context) { w.Reload() })
	return nil
}

// Reload loads the file if it changed since the last load and reports
// whether a new model is now in force.
func (w *Watcher) Reload() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, err := stamp(w.path)
	if err != nil {
		if err.Error() != w.unreadable {
			w.unreadable = err.Error()
			w.state.Failed(err)
			w.log.Warn("model file unreadable, keeping the loaded model", "path", w.path, "err", err)
		}
		// Whatever comes back at the path is read.
		w.tried = fileStamp{}
		return false
	}
	w.unreadable = ""
	switch st {
	case w.loaded:
		// Back as it was (a file gone for a while, or a bad write
		// undone with its size and mtime): the one in force again.
		w.tried = st
		w.state.InForce()
		return false
	case w.tried:
		// The same bad file: already reported. A new write changes
		// the stamp again.
		return false
	}
	w.tried = st
	m, err := Load(w.path)
	if err != nil {
		w.state.Failed(err)
		w.log.Error("model file changed but does not load, keeping the previous model", "path", w.path, "err", err)
		return false
	}
	w.cur.Store(m)
	w.loaded = st
	w.state.Loaded()
	s := m.Stats()
	w.log.Info("model reloaded", "path", w.path, "spam", s.Spam, "ham", s.Ham, "bits", s.Bits)
	return true
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{size: fi.Size(), mtime: fi.ModTime()}, nil
}

// NewProvider returns the model named by the scanner config: a Watcher of
// the file at cfg.ModelFile (its owner runs it to pick up changes), or the
// embedded default model when no file is configured.
// reg and h receive the file's state (reloadstate); either may be nil.
func NewProvider(cfg scanner.Config, log *slog.Logger, reg prometheus.Registerer, h *health.Registry) (Provider, error) {
	if cfg.ModelFile == "" {
		return Default()
	}
	w, err := NewWatcher(cfg.ModelFile, cfg.ModelReloadInterval, log, FileState(reg, h, cfg.ModelFile))
	if err != nil {
		return nil, fmt.Errorf("scanner.model_file: %w", err)
	}
	return w, nil
}
