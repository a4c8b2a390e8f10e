package main

import (
	"context"
	"fmt"
	"io"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/scanner/eval"
	"github.com/mxgrid/mxgrid/scanner/model"
	"github.com/mxgrid/mxgrid/scanner/rules"
)

// runEval cross-validates the verdict (parser symbols + rules + model) on
// a labelled corpus at the configured thresholds and weights, or with
// --holdout-latest tests a model trained on older mail on the latest.
func runEval(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("eval")
	spamDir := fs.String("spam", "", "`folder` of spam messages")
	hamDir := fs.String("ham", "", "`folder` of ham messages")
	folds := fs.Int("folds", 10, "number of cross-validation folds")
	holdout := fs.Float64("holdout-latest", 0, "instead of cross-validating, train on the earliest mail of each class and test on this `fraction` of the latest (by Date), e.g. 0.3")
	blind := fs.Bool("routing-blind", false, "hide delivery-path headers (Received, Message-ID, To, List-*, ...) from the model on test messages")
	cfgPath := fs.String("config", "", "YAML configuration `file` for thresholds and weights (default: built-in defaults)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *spamDir == "" || *hamDir == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: mxgrid eval --spam DIR --ham DIR [--folds 10 | --holdout-latest 0.3] [--routing-blind]", errUsage)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	samples, err := loadCorpus(*spamDir, *hamDir)
	if err != nil {
		return err
	}
	rep, err := eval.Run(ctx, samples, eval.Options{
		Folds:         *folds,
		HoldoutLatest: *holdout,
		RoutingBlind:  *blind,
		Train:         model.DefaultTrainConfig(),
		Policy:        cfg.Scanner.Policy(),
		Weights:       cfg.Scanner.Weights,
		Rules:         rules.New(cfg.Scanner.Weights),
	})
	if err != nil {
		return err
	}
	return rep.Write(stdout)
}
