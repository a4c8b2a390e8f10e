package model

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/scanner"
)

// Watcher serves a model file and reloads it when it changes on disk. A
// reload that fails keeps the previous model: a half-written or corrupt
// file never takes the node's classifier away. Scans in flight keep the
// model they started with, so nothing is dropped during a swap.
type Watcher struct {
	mu       sync.Mutex // serialises reloads
	path     string
	interval time.Duration
	log      *slog.Logger
	cur      atomic.Pointer[Model]
	stamp    fileStamp
	// unreadable is the stat error last logged, so that a file gone for
	// good is reported once, not every interval (17,280 lines a day).
	unreadable string
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

// NewWatcher loads path once and fails if it cannot: a node configured with
// a model file must not start without it. interval is how often Run checks
// the file (stat only; the file is read when its size or mtime changed).
func NewWatcher(path string, interval time.Duration, log *slog.Logger) (*Watcher, error) {
	w := &Watcher{path: path, interval: interval, log: log}
	st, err := stamp(path)
	if err != nil {
		return nil, fmt.Errorf("model file: %w", err)
	}
	m, err := Load(path)
	if err != nil {
		return nil, err
	}
	w.cur.Store(m)
	w.stamp = st
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
			w.log.Warn("model file unreadable, keeping the loaded model", "path", w.path, "err", err)
		}
		return false
	}
	w.unreadable = ""
	if st == w.stamp {
		return false
	}
	m, err := Load(w.path)
	if err != nil {
		// Remember the stamp: retrying the same bad file every tick would
		// only repeat the warning. A new write changes the stamp again.
		w.stamp = st
		w.log.Error("model file changed but does not load, keeping the previous model", "path", w.path, "err", err)
		return false
	}
	w.cur.Store(m)
	w.stamp = st
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

// ReloadInterval is how often a configured model file is checked for
// changes.
const ReloadInterval = 5 * time.Second

// NewProvider returns the model named by the scanner config: a Watcher of
// the file at cfg.ModelFile (its owner runs it to pick up changes), or the
// embedded default model when no file is configured.
func NewProvider(cfg scanner.Config, log *slog.Logger) (Provider, error) {
	if cfg.ModelFile == "" {
		return Default()
	}
	w, err := NewWatcher(cfg.ModelFile, ReloadInterval, log)
	if err != nil {
		return nil, fmt.Errorf("scanner.model_file: %w", err)
	}
	return w, nil
}
