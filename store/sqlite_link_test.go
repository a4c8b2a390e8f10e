//go:build linux || darwin

package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/fspermtest"
)

// TestSQLiteFileFollowsNoLink: the SQLite database in data_dir is created
// (0600) before SQLite opens it. A dangling symbolic link at its path was
// followed and its target created, so a node running as root created an
// empty file wherever a link in data_dir pointed (/etc/ld.so.preload), and
// SQLite then made it a database; a link to an existing empty file had it
// made one; a FIFO blocked the start for good. Anything but a regular file
// is refused at Open, naming it and store.dsn, the target untouched.
func TestSQLiteFileFollowsNoLink(t *testing.T) {
	for _, tt := range []struct {
		name string
		// plant makes path; outside is a path in a directory of its own.
		plant   func(t *testing.T, path, outside string)
		missing bool // outside must still not exist; else still empty
	}{
		{"link to an empty file outside", func(t *testing.T, path, outside string) {
			if err := os.WriteFile(outside, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			fspermtest.Symlink(t, outside, path)
		}, false},
		{"dangling link", func(t *testing.T, path, outside string) {
			fspermtest.Symlink(t, outside, path)
		}, true},
		{"FIFO", func(t *testing.T, path, _ string) {
			fspermtest.FIFO(t, path)
		}, true},
		{"directory", func(t *testing.T, path, _ string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir, outside := t.TempDir(), filepath.Join(t.TempDir(), "victim")
			path := filepath.Join(dir, "mxgrid.db")
			tt.plant(t, path, outside)
			done := make(chan error, 1)
			go func() {
				s, err := Open(DefaultConfig(), dir)
				if err == nil {
					err = s.Migrate(context.Background(), "test", []Migration{{Version: 1, Common: `CREATE TABLE t (id INTEGER PRIMARY KEY)`}})
					s.Close()
					if err == nil {
						err = errors.New("opened")
					} else {
						err = nil
					}
				}
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Open still blocked after 5 s")
			}
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), "store.dsn") {
				t.Errorf("Open: %v, want refused naming the file and store.dsn", err)
			}
			fi, serr := os.Stat(outside)
			switch {
			case tt.missing && serr == nil:
				t.Errorf("%s was created through the link", outside)
			case !tt.missing && (serr != nil || fi.Size() != 0):
				t.Errorf("%s was written through the link (%v, %v)", outside, fi, serr)
			}
		})
	}
}
