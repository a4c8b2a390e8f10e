package node

import (
	"context"
	"log/slog"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/model"
	"github.com/mxgrid/mxgrid/scanner/rules"
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
	// Content checks need no network: they run offline too. The model is
	// the embedded default or cfg.Scanner.ModelFile, reloaded on change.
	models, err := model.NewProvider(ctx, cfg.Scanner, env.Log)
	if err != nil {
		return nil, err
	}
	stages = append(stages,
		scanner.Stage{Check: model.NewCheck(models, cfg.Scanner.Weights), OnError: scanner.OnErrorAccept},
		scanner.Stage{Check: rules.New(cfg.Scanner.Weights), OnError: scanner.OnErrorAccept},
	)
	return stages, nil
}
