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
	testSpam := fs.String("test-spam", "", "instead of cross-validating, score this `folder` of spam with the embedded (or --model) model")
	testHam := fs.String("test-ham", "", "with --test-spam: this `folder` of ham")
	modelPath := fs.String("model", "", "model `file` whose calibration scores the folds (default: the embedded model's)")
	cfgPath := fs.String("config", "", "YAML configuration `file` for thresholds and weights (default: built-in defaults)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	testing := *testSpam != "" || *testHam != ""
	if fs.NArg() > 0 || (testing && (*testSpam == "" || *testHam == "" || *spamDir != "" || *hamDir != "")) ||
		(!testing && (*spamDir == "" || *hamDir == "")) {
		return fmt.Errorf("%w: mxgrid eval --spam DIR --ham DIR [--folds 10 | --holdout-latest 0.3] [--routing-blind]\n"+
			"   or: mxgrid eval --test-spam DIR --test-ham DIR [--model FILE]", errUsage)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	m, err := loadModel(*modelPath)
	if err != nil {
		return err
	}
	var fixed *model.Model
	if testing {
		*spamDir, *hamDir, fixed = *testSpam, *testHam, m
	}
	samples, err := loadCorpus(*spamDir, *hamDir)
	if err != nil {
		return err
	}
	rep, err := eval.Run(ctx, samples, eval.Options{
		Model:         fixed,
		Folds:         *folds,
		HoldoutLatest: *holdout,
		RoutingBlind:  *blind,
		Train:         model.DefaultTrainConfig(),
		Calibration:   m.Calibration(),
		Policy:        cfg.Scanner.Policy(),
		Weights:       cfg.Scanner.Weights,
		Rules:         rules.New(cfg.Scanner.Weights),
	})
	if err != nil {
		return err
	}
	return rep.Write(stdout)
}

// loadModel loads a model file, or the embedded model for "".
func loadModel(path string) (*model.Model, error) {
	if path == "" {
		return model.Default()
	}
	return model.Load(path)
}
