package deploy

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mxgrid/mxgrid/internal/testenv"
)

// TestAlertRules checks deploy/prometheus/alerts.yml with Prometheus's own
// promtool and runs its unit tests (alerts_test.yml): the "mail waiting at
// senders" alert fires for a domain after 15 minutes and survives a leader
// change.
func TestAlertRules(t *testing.T) {
	bin := testenv.Prometheus(t)
	if bin == "" {
		return
	}
	promtool := filepath.Join(filepath.Dir(bin), "promtool")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Join("prometheus")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
