package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/scanner/model"
)

// TestBrokenModelDeployIsReported: a running node whose scanner.model_file
// is replaced by one that does not load keeps scanning with the model in
// force (mail flows, /readyz 200) and says so on the management listener:
// a degraded model_file condition naming the file and the error, and
// mxgrid_scanner_model_loads_total{result="error"}; a good file clears the
// condition and moves mxgrid_scanner_model_loaded_timestamp_seconds on.
// Before, an operator whose pipeline pushed a truncated model learnt from
// nothing but each node's log that the nodes still ran the old one.
func TestBrokenModelDeployIsReported(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("..", "scanner", "model", "default.model"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "spam.model")
	deploy := func(data []byte) {
		t.Helper()
		if err := os.WriteFile(path+".tmp", data, 0o644); err != nil {
			t.Fatal(err)
		}
		// Each deploy a new modification time, as a file system with a
		// coarse clock would not give two writes in a row.
		mtime := time.Now().Add(time.Duration(len(data)) * time.Millisecond)
		if err := os.Chtimes(path+".tmp", mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	deploy(good)
	n, sink := nodetest.StartWithSink(t, func(c *config.Config) {
		c.Scanner.ModelFile = path
		c.Scanner.ModelReloadInterval = 100 * time.Millisecond
	})
	metric := func(series string) float64 {
		t.Helper()
		v, found, err := testenv.MetricSum(http.DefaultClient, "http://"+n.ManagementAddr()+"/metrics", series)
		if err != nil || !found {
			t.Fatalf("%s: found %v, %v", series, found, err)
		}
		return v
	}
	waitModelCondition := func(want func(string) bool) (int, string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			status, cond := readyzCondition(t, n, model.HealthComponent)
			if want(cond) {
				return status, cond
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz %s condition still %q after 10 s", model.HealthComponent, cond)
			}
		}
	}
	if _, cond := readyzCondition(t, n, model.HealthComponent); cond != "" {
		t.Fatalf("a node started on a good model reports %q", cond)
	}
	loadedAt := metric("mxgrid_scanner_model_loaded_timestamp_seconds ")

	deploy(good[:len(good)/2]) // an upload cut short
	status, cond := waitModelCondition(func(c string) bool { return c != "" })
	if status != http.StatusOK || !strings.HasPrefix(cond, "degraded: scanner.model_file not loaded: load model "+path) ||
		!strings.Contains(cond, "still in force") {
		t.Fatalf("/readyz %d %q; want 200 and a degraded model_file condition naming %s", status, cond, path)
	}
	if v := metric(`mxgrid_scanner_model_loads_total{result="error"} `); v != 1 {
		t.Errorf(`loads_total{result="error"} = %v, want 1`, v)
	}
	if v := metric(`mxgrid_health_level{component="model_file"} `); v != 1 {
		t.Errorf("health level %v, want 1 (degraded)", v)
	}
	// Mail flows, scanned by the model in force.
	if code, reply := smtptest.Send(t, n.SMTPAddr(), "x@sender.example", "user@example.org", []byte("Subject: hi\r\n\r\nhi\r\n")); code != 250 {
		t.Fatalf("with a broken model on disk: %d %s", code, reply)
	}
	if got := len(sink.Messages()); got != 1 {
		t.Fatalf("%d messages delivered, want 1", got)
	}

	deploy(append([]byte(nil), good...))
	waitModelCondition(func(c string) bool { return c == "" })
	if v := metric("mxgrid_scanner_model_loaded_timestamp_seconds "); v <= loadedAt {
		t.Errorf("loaded timestamp %v not past the start's %v after a good deploy", v, loadedAt)
	}
	if v := metric(`mxgrid_health_level{component="model_file"} `); v != 0 {
		t.Errorf("health level %v after a good deploy, want 0", v)
	}
}
