package eval

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/model"
	"github.com/mxgrid/mxgrid/scanner/rules"
)

func TestStripRouting(t *testing.T) {
	raw := "From list-bounce@example.org  Mon Sep  9 12:21:16 2002\n" +
		"Return-Path: <list-bounce@example.org>\nReceived: from a by b\n\tid 1\nReceived: from c by d\n" +
		"From: Alice <alice@example.org>\nTo: list@example.org\nCc: bob@example.net\nSubject: hi\n" +
		"Message-ID: <1@example.org>\nList-Id: <list.example.org>\nList-Unsubscribe: <mailto:x>\n" +
		"Precedence: bulk\nX-Loop: list\nSender: owner@example.org\nErrors-To: owner@example.org\n" +
		"Delivered-To: me@example.net\nX-Original-To: me@example.net\nDate: Mon, 9 Sep 2002 17:20:53 +0000\n\nbody\n"
	m := scanner.Parse(StripRouting([]byte(raw)))
	for _, k := range []string{"Return-Path", "Received", "To", "Cc", "Message-Id", "List-Id", "List-Unsubscribe",
		"Precedence", "X-Loop", "Sender", "Errors-To", "Delivered-To", "X-Original-To"} {
		if m.Header.Has(k) {
			t.Errorf("%s survived StripRouting", k)
		}
	}
	for _, k := range []string{"From", "Subject", "Date"} {
		if !m.Header.Has(k) {
			t.Errorf("%s was stripped", k)
		}
	}
	if strings.TrimSpace(m.Text) != "body" {
		t.Errorf("body = %q", m.Text)
	}
}

func TestMetrics(t *testing.T) {
	spam := []float64{10, 8, 7, 3}
	ham := []float64{-3, -2, 1, 4, 9}
	if got := auc(spam, ham); math.Abs(got-0.8) > 1e-9 {
		t.Errorf("auc = %v, want 0.8", got) // 16 of 20 pairs ordered right
	}
	tests := []struct {
		n    int
		want float64
	}{{0, 0.25}, {1, 0.75}, {2, 1}, {5, 1}}
	for _, tt := range tests {
		if got := recallAtFP(spam, ham, tt.n); got != tt.want {
			t.Errorf("recall at %d FP = %v, want %v", tt.n, got, tt.want)
		}
	}
	if got := auc([]float64{1, 1}, []float64{1}); got != 0.5 {
		t.Errorf("auc with ties = %v, want 0.5", got)
	}
}

func loadSamples(t *testing.T, dir string) []Sample {
	t.Helper()
	spam, err := LoadDir(filepath.Join(dir, "spam"), true)
	if err != nil {
		t.Fatal(err)
	}
	ham, err := LoadDir(filepath.Join(dir, "ham"), false)
	if err != nil {
		t.Fatal(err)
	}
	return append(spam, ham...)
}

func options(blind bool) Options {
	return Options{
		Folds: 10, RoutingBlind: blind, Train: model.DefaultTrainConfig(),
		Policy: scanner.DefaultConfig().Policy(), Rules: rules.New(nil),
	}
}

// TestMoreFoldsThanMessages: each fold trains a model, and -folds
// 1000000000 on four messages trained until memory ran out.
func TestMoreFoldsThanMessages(t *testing.T) {
	samples := loadSamples(t, "../../testdata/corpus")[18:22] // two spam, two ham
	opts := options(true)
	opts.Train.Bits = 12
	opts.Folds = len(samples) + 1
	if _, err := Run(context.Background(), samples, opts); err == nil || !strings.Contains(err.Error(), "folds: 5 is more than the 4 messages") {
		t.Errorf("Run = %v, want folds refused", err)
	}
	opts.Folds = len(samples)
	if _, err := Run(context.Background(), samples, opts); err != nil {
		t.Errorf("one fold per message (leave one out): %v", err)
	}
}

// TestLoadDirRefusesAFileLargerThanAMessage: a sparse file one byte over
// the bound is refused by name, not read whole.
func TestLoadDirRefusesAFileLargerThanAMessage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.eml"), []byte("Subject: x\r\n\r\nx\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadDir(dir, true); err != nil || len(got) != 1 {
		t.Fatalf("LoadDir = %d samples, %v", len(got), err)
	}
	big := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, MaxSampleBytes+1); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(dir, true); err == nil || !strings.Contains(err.Error(), "disk.img: over 64 MiB") {
		t.Errorf("LoadDir with %s = %v, want it refused by name", big, err)
	}
}

func TestRunOnSamples(t *testing.T) {
	opts := options(true)
	opts.Folds = 2
	opts.Train.Bits = 16
	rep, err := Run(context.Background(), loadSamples(t, "../../testdata/corpus"), opts)
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Metrics()
	if m.Spam != 20 || m.Ham != 20 || m.TP+m.FN != 20 || m.FP+m.TN != 20 {
		t.Fatalf("metrics = %+v", m)
	}
	for _, o := range rep.Outcomes {
		if o.Fold < 0 || o.Fold > 1 || o.Path == "" {
			t.Fatalf("outcome %+v", o)
		}
	}
	var out strings.Builder
	if err := rep.Write(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2-fold", "routing-blind", "spam recall", "ham false positives", "recall at <= 1 FP", "(1-ROCA)%", "msgs/s per core", "ham FPs", "MODEL_", "routing headers shown"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestCorpusAcceptance is the acceptance bound, on the whole verdict at
// the default thresholds: 10-fold routing-blind CV with at most 2 of the
// 2,625 ham flagged (0.08 %) and spam recall >= 95 %, recall at <= 1 FP
// >= 93 %, (1-ROCA)% <= 0.05, recall within 2 points of what the same fold
// models give when they see whole messages; and the embedded model's
// calibration is the one these out-of-fold scores give.
func TestCorpusAcceptance(t *testing.T) {
	dir, ok := CorpusDir()
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatal("corpus not found (set MXGRID_CORPUS or provide ../shared/corpus/train)")
		}
		t.Skip("corpus not found: set MXGRID_CORPUS or provide ../shared/corpus/train beside the repository")
	}
	if testing.Short() {
		t.Skip("10-fold cross-validation skipped in -short mode")
	}
	rep, err := Run(context.Background(), loadSamples(t, dir), options(true))
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Metrics()
	t.Logf("routing-blind: recall %.2f%% (%d/%d), FP %.2f%% (%d/%d); headers shown: recall %.2f%%, FP %.2f%%",
		100*m.Recall, m.TP, m.Spam, 100*m.FPRate, m.FP, m.Ham, 100*m.SightedRecall, 100*m.SightedFPRate)
	if m.FP > MaxHamFP(m.Ham) {
		t.Errorf("%d ham flagged, more than %d (%.2f%%)", m.FP, MaxHamFP(m.Ham), 100*MaxHamFPRate)
	}
	if m.RecallAt1FP < 0.93 {
		t.Errorf("recall at <= 1 FP %.2f%% < 93%%", 100*m.RecallAt1FP)
	}
	if m.OneMinusROCA > 0.05 {
		t.Errorf("(1-ROCA)%% %.4f > 0.05", m.OneMinusROCA)
	}
	fit, err := Calibrate(rep.Outcomes, rep.Options.Policy.TagScore, MaxHamFP(m.Ham))
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	// Within a grid step or two: a rule change that moves the ranking a
	// little need not retrain at once, one that moves it more must.
	if got, want := shipped.Calibration(), fit.Calibration; math.Abs(got.Slope-want.Slope) > 0.1 ||
		math.Abs(got.BayesSlope-want.BayesSlope) > 0.05 || math.Abs(got.Offset-want.Offset) > 0.3 || math.Abs(got.Mid-want.Mid) > 0.3 {
		t.Errorf("embedded calibration %+v, the corpus gives %+v: retrain the embedded model (scanner/model/README.md)", got, want)
	}
	if math.Abs(fit.RejectScore-scanner.DefaultRejectScore) > 0.5 {
		t.Errorf("the calibration puts reject at %.1f, the default is %v", fit.RejectScore, scanner.DefaultRejectScore)
	}
	if m.Recall < 0.96 {
		t.Errorf("spam recall %.2f%% < 96%%", 100*m.Recall)
	}
	if d := math.Abs(m.Recall - m.SightedRecall); d > 0.02 {
		t.Errorf("recall differs by %.2f points with and without routing headers", 100*d)
	}
}

func TestSubsetAndMessageTime(t *testing.T) {
	for path, want := range map[string]string{
		"/c/ham/easy-ham-1.00001.7c53.eml": "easy-ham", "hard-ham-1.00249.b9.eml": "hard-ham",
		"spam-1.00001.78.eml": "spam", "msg.eml": "msg", "12345": "", ".x": "",
	} {
		if got := Subset(path); got != want {
			t.Errorf("Subset(%q) = %q, want %q", path, got, want)
		}
	}
	recv := "Received: from a by b; Tue, 10 Sep 2002 10:00:00 +0000\n"
	tests := []struct {
		raw  string
		want string
	}{
		{recv + "Date: Mon, 9 Sep 2002 17:20:53 +0000\n\nx", "2002-09-09T17:20:53Z"},
		{recv + "Date: Mon, 9 Sep 2030 17:20:53 +0000\n\nx", "2002-09-10T10:00:00Z"}, // forged: far from Received
		{recv + "Date: garbage\n\nx", "2002-09-10T10:00:00Z"},
		{"Date: Mon, 9 Sep 2030 17:20:53 +0000\n\nx", "2030-09-09T17:20:53Z"},
	}
	for _, tt := range tests {
		got, ok := MessageTime([]byte(tt.raw))
		if !ok || got.UTC().Format(time.RFC3339) != tt.want {
			t.Errorf("MessageTime(%q) = %v, %v; want %s", tt.raw, got, ok, tt.want)
		}
	}
	if _, ok := MessageTime([]byte("Subject: x\n\nbody")); ok {
		t.Error("MessageTime without Date or Received reported a time")
	}
}

func TestTemporalHoldout(t *testing.T) {
	opts := options(true)
	opts.HoldoutLatest = 0.3
	opts.Train.Bits = 16
	samples := loadSamples(t, "../../testdata/corpus")
	rep, err := Run(context.Background(), samples, opts)
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Metrics()
	if m.Spam != 6 || m.Ham != 6 || rep.TrainSpam != 14 || rep.TrainHam != 14 {
		t.Fatalf("tested %d spam %d ham, trained %d spam %d ham; want 6/6 and 14/14", m.Spam, m.Ham, rep.TrainSpam, rep.TrainHam)
	}
	for _, o := range rep.Outcomes {
		if o.Time.IsZero() {
			t.Errorf("test message %s has no time", o.Path)
		}
	}
	var out strings.Builder
	if err := rep.Write(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"temporal holdout", "trained on 14 spam, 14 ham", "easy-ham", "spam recall"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	opts.HoldoutLatest = 1.5
	if _, err := Run(context.Background(), samples, opts); err == nil {
		t.Error("holdout fraction 1.5 accepted")
	}
}

// TestRealworldFixtures scores the embedded model and the rules, offline,
// on the hand-written phishing and look-alike ham of
// scanner/testdata/realworld (never trained on): at the default thresholds
// nearly every phish is caught and no ham is refused. Two of the ham are
// tagged offline (the 2002 model finds a Microsoft security notice and a
// bank newsletter spammy); on a node their aligned DKIM and DMARC passes
// take 2 points off, which this offline test cannot show.
func TestRealworldFixtures(t *testing.T) {
	spam, err := LoadDir("../testdata/realworld/phish", true)
	if err != nil {
		t.Fatal(err)
	}
	ham, err := LoadDir("../testdata/realworld/ham", false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	opts := options(false)
	opts.Model = m
	rep, err := Run(context.Background(), append(spam, ham...), opts)
	if err != nil {
		t.Fatal(err)
	}
	met := rep.Metrics()
	t.Logf("phish caught %d/%d (%d rejected), ham tagged %d, rejected %d", met.TP, met.Spam, met.Rejected, met.HamTagged, met.HamReject)
	if met.Recall < 0.9 {
		t.Errorf("only %.0f%% of the phishing fixtures caught", 100*met.Recall)
	}
	if met.HamReject > 0 || met.HamTagged > 2 {
		t.Errorf("ham fixtures: %d rejected, %d tagged", met.HamReject, met.HamTagged)
	}
}
