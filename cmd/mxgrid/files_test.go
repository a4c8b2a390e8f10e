package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/mxgrid/mxgrid/internal/nodetest"
)

// TestDataFilesPrivate: a node's data directory and the secrets in it
// (database with token and password hashes, snapshot, panel key) are its
// user's alone, and an older, open data directory is tightened at start.
func TestDataFilesPrivate(t *testing.T) {
	for _, tt := range []struct {
		name    string
		prepare func(dir string)
	}{
		{"new data directory", func(string) {}},
		{"open data directory from an older version", func(dir string) {
			os.MkdirAll(dir, 0o755)
			os.Chmod(dir, 0o755)
			os.WriteFile(filepath.Join(dir, "mxgrid.db"), nil, 0o644)
			os.Chmod(filepath.Join(dir, "mxgrid.db"), 0o644)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := nodetest.Config(t)
			cfg.DataDir = filepath.Join(t.TempDir(), "data")
			tt.prepare(cfg.DataDir)
			n := nodetest.Start(t, cfg, nil)
			defer n.Stop(t)
			check := func(p string, want fs.FileMode, required bool) {
				fi, err := os.Stat(p)
				if err != nil {
					if required {
						t.Errorf("%s: %v", p, err)
					}
					return
				}
				if got := fi.Mode().Perm(); got != want {
					t.Errorf("%s: mode %v, want %v", filepath.Base(p), got, want)
				}
			}
			check(cfg.DataDir, 0o700, true)
			db := filepath.Join(cfg.DataDir, "mxgrid.db")
			check(db, 0o600, true)
			check(db+"-wal", 0o600, true)
			check(db+"-shm", 0o600, false)
			check(filepath.Join(cfg.DataDir, "panel-session.key"), 0o600, true)
			check(filepath.Join(cfg.DataDir, "tenants.snapshot.json"), 0o600, false)
		})
	}
}
