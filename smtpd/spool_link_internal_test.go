//go:build linux || darwin

package smtpd

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/fspermtest"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSpoolDirFollowsNoLink: data_dir/spool is made and made 0700 at
// each start. A symbolic link there was followed by the chmod, so a node
// running as root, finding the spool linked to /etc or /usr, made that
// directory 0700 and every other user's programs lost it. A link is still
// used as the spool, as before (an operator's way to put it on another
// disk), but its target's mode is left as it is, with a warning; what is
// no directory is refused, named, without waiting, and a dangling link's
// target is not created.
func TestSpoolDirFollowsNoLink(t *testing.T) {
	for _, tt := range []struct {
		name string
		// plant makes path; outside is a path in a directory of its own.
		plant func(t *testing.T, path, outside string)
		ok    bool // newSpool goes on (with a warning)
	}{
		{"link to a directory outside", func(t *testing.T, path, outside string) {
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			os.Chmod(outside, 0o755)
			fspermtest.Symlink(t, outside, path)
		}, true},
		{"dangling link", func(t *testing.T, path, outside string) {
			fspermtest.Symlink(t, outside, path)
		}, false},
		{"FIFO", func(t *testing.T, path, _ string) {
			fspermtest.FIFO(t, path)
		}, false},
		{"regular file", func(t *testing.T, path, _ string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path, outside := filepath.Join(t.TempDir(), "spool"), filepath.Join(t.TempDir(), "etc")
			tt.plant(t, path, outside)
			before, beforeErr := os.Lstat(outside)
			var logs bytes.Buffer
			done := make(chan error, 1)
			go func() {
				_, err := newSpool(path, 1<<20, 0, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(&logs, nil)))
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("newSpool still blocked after 5 s")
			}
			if tt.ok && (err != nil || !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), path)) {
				t.Errorf("newSpool: %v, want it used with a warning naming it:\n%s", err, logs.String())
			}
			if !tt.ok && (err == nil || !strings.Contains(err.Error(), path)) {
				t.Errorf("newSpool: %v, want refused naming %s", err, path)
			}
			after, afterErr := os.Lstat(outside)
			switch {
			case beforeErr != nil && afterErr == nil:
				t.Errorf("%s was created through the link", outside)
			case beforeErr == nil && (afterErr != nil || after.Mode() != before.Mode()):
				t.Errorf("%s: mode %v, want %v as it was", outside, after.Mode(), before.Mode())
			}
		})
	}
}
