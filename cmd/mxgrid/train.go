package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/eval"
	"github.com/mxgrid/mxgrid/scanner/model"
	"github.com/mxgrid/mxgrid/scanner/rules"
)

// runTrain trains a model file from a spam and a ham folder. The embedded
// default model is regenerated with:
//
//	go run ./cmd/mxgrid train --spam ../shared/corpus/train/spam --ham ../shared/corpus/train/ham -o scanner/model/default.model
func runTrain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("train")
	spamDir := fs.String("spam", "", "`folder` of spam messages (one message per file, searched recursively)")
	hamDir := fs.String("ham", "", "`folder` of ham messages")
	out := fs.String("o", "", "model `file` to write")
	cfgPath := fs.String("config", "", "YAML configuration `file` whose rule weights and tag score the calibration uses (default: built-in defaults)")
	cfg := model.DefaultTrainConfig()
	bits := fs.Uint("bits", uint(cfg.Bits), "log2 of the number of hashed feature buckets")
	fs.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "training passes over the corpus")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *spamDir == "" || *hamDir == "" || *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: mxgrid train --spam DIR --ham DIR -o FILE", errUsage)
	}
	if *bits > math.MaxUint8 {
		// Clamped to 255 for Validate, -bits 300 was refused as "got 255".
		return fmt.Errorf("%w: -bits %d: out of range", errUsage, *bits)
	}
	cfg.Bits = uint8(*bits)
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Before the corpus is read and trained on: a bad config was reported
	// only after training, minutes later, and the work was lost.
	conf, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	start := time.Now()
	samples, err := loadCorpus(*spamDir, *hamDir)
	if err != nil {
		return err
	}
	x := model.NewExtractor(cfg.Bits, cfg.Window)
	examples, err := eval.Examples(ctx, samples, x, scanner.NewParser(nil), 0)
	if err != nil {
		return err
	}
	m, err := model.Train(examples, cfg)
	if err != nil {
		return err
	}
	fit, err := eval.CalibrateCorpus(ctx, samples, cfg, rules.New(conf.Scanner.Weights), conf.Scanner.TagScore)
	if err != nil {
		return err
	}
	m = m.WithCalibration(fit.Calibration)
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return err
	}
	if err := writeFileAtomic(*out, buf.Bytes()); err != nil {
		return err
	}
	st := m.Stats()
	fmt.Fprintf(stdout, "wrote %s: %d bytes (%.1f KiB), format %d, features v%d, 2^%d buckets (%d non-zero), window %d\n",
		*out, buf.Len(), float64(buf.Len())/1024, model.FormatVersion, st.FeatureVersion, st.Bits, st.NonZero, st.Window)
	c := fit.Calibration
	fmt.Fprintf(stdout, "calibrated by 10-fold routing-blind cross-validation: slope %.3f, bayes slope %.3f, offset %.3f, probability mid %.3f steep %.3f\n",
		c.Slope, c.BayesSlope, c.Offset, c.Mid, c.Steep)
	fmt.Fprintf(stdout, "  out-of-fold: recall %.2f%% with <= %d ham at tag %.2f, recall at <= 1 FP %.2f%%; a reject score of %.1f would refuse no ham\n",
		100*fit.RecallAtTag, fit.MaxHamFP, fit.TagScore, 100*fit.RecallAt1FP, fit.RejectScore)
	fmt.Fprintf(stdout, "trained on %d spam and %d ham in %s\n", st.Spam, st.Ham, time.Since(start).Round(time.Millisecond))
	return nil
}

func loadCorpus(spamDir, hamDir string) ([]eval.Sample, error) {
	spam, err := eval.LoadDir(spamDir, true)
	if err != nil {
		return nil, err
	}
	ham, err := eval.LoadDir(hamDir, false)
	if err != nil {
		return nil, err
	}
	return append(spam, ham...), nil
}

// writeFileAtomic writes through a temporary file and a rename, so a node
// watching path never loads a half-written model.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".model-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
