//go:build linux || darwin

package node_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/internal/fspermtest"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/node"
	"github.com/mxgrid/mxgrid/panel"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestDataDirLinksAreNotFollowed: whoever can write data_dir (or an
// operator's link) put a symbolic link where the node keeps a file or its
// spool, and a node running as root created, wrote or chmodded what the
// link named: the database's dangling link made its target, the spool's
// link made /etc 0700. Whatever the link names is left as it was: the
// database's link stops the start, naming it and store.dsn; a link at any
// other file is left with a warning (or replaced) and the node runs.
func TestDataDirLinksAreNotFollowed(t *testing.T) {
	const precious = "root:x:0:0:root:/root:/bin/sh\n"
	for _, tt := range []struct {
		name     string // in data_dir
		dangling bool   // the link names nothing; else a 0644 file (a 0755 directory for the spool)
		refused  bool   // node.New fails, naming the file and store.dsn
	}{
		{"mxgrid.db", true, true},
		{"mxgrid.db", false, true},
		{"mxgrid.db-wal", true, false},
		{tenant.SnapshotFile, false, false},
		{tenant.SnapshotJournal, true, false},
		{panel.KeyFile, false, false},
		{"spool", false, false},
	} {
		t.Run(tt.name+map[bool]string{true: "/dangling", false: "/to something outside"}[tt.dangling], func(t *testing.T) {
			cfg := nodetest.Config(t)
			outside := filepath.Join(t.TempDir(), "victim")
			var mode os.FileMode = 0o644
			switch {
			case tt.dangling:
			case tt.name == "spool":
				mode = 0o755 | os.ModeDir
				if err := os.Mkdir(outside, 0o755); err != nil {
					t.Fatal(err)
				}
			default:
				if err := os.WriteFile(outside, []byte(precious), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			os.Chmod(outside, mode.Perm())
			fspermtest.Symlink(t, outside, filepath.Join(cfg.DataDir, tt.name))
			if tt.refused {
				_, err := node.New(context.Background(), cfg, node.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err == nil || !strings.Contains(err.Error(), filepath.Join(cfg.DataDir, tt.name)) || !strings.Contains(err.Error(), "store.dsn") {
					t.Fatalf("node.New: %v, want refused naming the file and store.dsn", err)
				}
			} else {
				nodetest.Start(t, cfg, nil).Stop(t)
			}
			fi, err := os.Stat(outside)
			switch {
			case tt.dangling && err == nil:
				t.Fatalf("%s was created through the link", outside)
			case tt.dangling:
			case err != nil:
				t.Fatal(err)
			case fi.Mode() != mode:
				t.Fatalf("%s: mode %v, want %v as it was", outside, fi.Mode(), mode)
			case !fi.IsDir():
				if b, _ := os.ReadFile(outside); string(b) != precious {
					t.Fatalf("%s was written through the link: %q", outside, b)
				}
			}
		})
	}
}
