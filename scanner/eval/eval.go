// Package eval measures the scanner's verdict by k-fold cross-validation:
// the model is trained on k-1 folds and the whole verdict (parser symbols,
// rules, model) is scored on the held-out fold, k times.
//
// With RoutingBlind the model sees every test message without its
// delivery-path headers (Received, Message-ID, To, List-*, ...). Those
// headers identify the mailboxes a corpus was collected in; a model that
// scores the same with and without them has learnt content, which is what
// carries over to mail from servers the corpus never saw.
package eval

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/emersion/go-message/textproto"

	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/lang"
	"github.com/mxgrid/mxgrid/scanner/model"
)

// DeliveryPathHeaders are hidden from the model in routing-blind mode:
// they describe how a message travelled and where it was collected, not
// what it says. Field names ending in "*" are prefixes.
var DeliveryPathHeaders = []string{
	"Received", "Return-Path", "Delivered-To", "X-Original-To", "Message-ID",
	"To", "Cc", "List-*", "X-Loop", "Sender", "Errors-To", "Precedence",
	"X-BeenThere", "X-Mailman-Version", "Mailing-List", "X-Mailing-List",
}

// StripRouting returns raw without the DeliveryPathHeaders fields.
func StripRouting(raw []byte) []byte {
	start := 0
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			start = i + 1
		}
	}
	rd := bytes.NewReader(raw[start:])
	br := bufio.NewReader(rd)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return raw // the parser will flag it; nothing reliable to strip
	}
	body := raw[len(raw)-rd.Len()-br.Buffered():]
	var drop []string
	for f := h.Fields(); f.Next(); {
		if isRouting(f.Key()) {
			drop = append(drop, f.Key())
		}
	}
	for _, k := range drop {
		h.Del(k)
	}
	var out bytes.Buffer
	if err := textproto.WriteHeader(&out, h); err != nil {
		return raw
	}
	out.Write(body)
	return out.Bytes()
}

func isRouting(key string) bool {
	for _, name := range DeliveryPathHeaders {
		if p, ok := strings.CutSuffix(name, "*"); ok {
			if len(key) >= len(p) && strings.EqualFold(key[:len(p)], p) {
				return true
			}
		} else if strings.EqualFold(key, name) {
			return true
		}
	}
	return false
}

// Sample is one labelled message file.
type Sample struct {
	Path string
	Spam bool
	Raw  []byte
}

// MaxSampleBytes bounds one corpus file: a node refuses a larger message
// (smtp.max_message_bytes is 25 MiB by default), and read whole, a disk
// image or log left in a corpus folder took the machine's memory before
// training began.
const MaxSampleBytes = 64 << 20

// LoadDir reads every regular file under dir (recursively), labelled spam
// or not, in lexical path order. A file over MaxSampleBytes is an error
// naming it.
func LoadDir(dir string, spam bool) ([]Sample, error) {
	var out []Sample
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		raw, err := fsperm.ReadLimited(path, MaxSampleBytes, "a message")
		if err != nil {
			return err
		}
		out = append(out, Sample{Path: path, Spam: spam, Raw: raw})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read corpus %s: %w", dir, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read corpus %s: no messages", dir)
	}
	return out, nil
}

// Options configure a cross-validation run.
type Options struct {
	Folds int
	// HoldoutLatest, when positive, replaces cross-validation by one
	// temporal split: the model is trained on the earliest messages of
	// each class and tested on the latest HoldoutLatest fraction (ordered
	// by MessageTime). Mail a filter meets comes after the mail it was
	// trained on, and random folds hide how fast the spam it learnt ages.
	HoldoutLatest float64
	RoutingBlind  bool
	// Model, when set, replaces training: every sample is scored by this
	// model (mail it was not trained on), with its calibration.
	Model *model.Model
	Train model.TrainConfig
	// Calibration turns every fold's model outputs into verdict points;
	// the zero value means the embedded model's.
	Calibration model.Calibration
	Policy      scanner.Policy
	// Weights overrides symbol weights, as in the node's config.
	Weights map[string]float64
	// Rules is the content of the verdict besides the model (nil: none).
	Rules scanner.Check
	// Workers parallelises parsing; 0 means GOMAXPROCS.
	Workers int
}

// Outcome is the cross-validated verdict on one message.
type Outcome struct {
	Path   string
	Spam   bool
	Fold   int
	Subset string    // corpus part, from the file name (see Subset)
	Time   time.Time // MessageTime, in temporal holdout runs
	Margin float64   // regression log-odds
	Bayes  float64   // naive Bayes probability
	Rules  float64   // the verdict score without the model's points
	Lang   lang.Tag  // the language of the text
	// SightedAction is, in routing-blind runs, the action had the model
	// seen the whole message (same fold model, same rules): the other
	// half of the comparison, from one training run.
	SightedAction scanner.Action
	Score         float64 // verdict score
	Action        scanner.Action
	Symbols       []scanner.Symbol
}

// Report is the result of a cross-validation run.
type Report struct {
	Options   Options
	Outcomes  []Outcome
	ScanTime  time.Duration // summed single-thread time of parse+rules+features+model
	Scanned   int
	TrainTime time.Duration
	// TrainSpam and TrainHam count the training messages of a temporal
	// holdout, and TrainEnd is the latest MessageTime among them.
	TrainSpam, TrainHam int
	TrainEnd            time.Time
}

type prepared struct {
	feats     []uint32 // for training (whole message)
	testFeats []uint32 // for testing (routing-stripped when blind)
	symbols   []scanner.Symbol
	rules     float64
	lang      lang.Tag
}

// Run cross-validates, or with HoldoutLatest tests on the latest mail.
// Folds are stratified and assigned in path order, so a run is
// reproducible.
func Run(ctx context.Context, samples []Sample, opts Options) (*Report, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Model == nil && opts.HoldoutLatest == 0 && opts.Folds > len(samples) {
		// Each fold trains a model: -folds 1000000000 on a few messages
		// trained until the machine ran out of memory, its folds empty.
		return nil, fmt.Errorf("folds: %d is more than the %d messages", opts.Folds, len(samples))
	}
	samples = slices.Clone(samples)
	sort.SliceStable(samples, func(i, j int) bool { return samples[i].Path < samples[j].Path })
	switch {
	case opts.Model != nil:
		opts.Calibration = opts.Model.Calibration()
	case opts.Calibration == model.Calibration{}:
		m, err := model.Default()
		if err != nil {
			return nil, err
		}
		opts.Calibration = m.Calibration()
	}
	r := &run{
		samples: samples, opts: opts,
		x:      model.NewExtractor(opts.Train.Bits, opts.Train.Window),
		parser: scanner.NewParser(opts.Weights),
		rep:    &Report{Options: opts, Scanned: len(samples)},
	}
	if opts.Model != nil {
		r.x = opts.Model.Extractor()
	}
	if err := r.prepareAll(ctx); err != nil {
		return nil, err
	}
	rounds := r.split()
	r.check = model.NewCheck(nil, opts.Weights)
	outcomes := make([]Outcome, len(samples))
	for k := 0; k < rounds; k++ {
		m, err := r.train(k)
		if err != nil {
			return nil, fmt.Errorf("fold %d: %w", k, err)
		}
		r.test(k, m, outcomes)
	}
	for i := range outcomes {
		if r.folds[i] >= 0 {
			r.rep.Outcomes = append(r.rep.Outcomes, outcomes[i])
		}
	}
	return r.rep, nil
}

func (opts Options) validate() error {
	switch {
	case opts.Model != nil:
		return nil
	case opts.HoldoutLatest != 0 && !(opts.HoldoutLatest > 0 && opts.HoldoutLatest < 1):
		return fmt.Errorf("holdout: fraction must be in (0, 1), got %v", opts.HoldoutLatest)
	case opts.HoldoutLatest == 0 && opts.Folds < 2:
		return errors.New("folds: need at least 2")
	}
	return opts.Train.Validate()
}

// run is one evaluation's state, shared by its steps.
type run struct {
	samples []Sample // in path order
	opts    Options
	x       *model.Extractor
	parser  *scanner.Parser
	check   *model.Check
	rep     *Report

	prep  []prepared
	folds []int       // each sample's test round; negative: never tested
	times []time.Time // MessageTime, in temporal holdout runs only
}

// prepareAll parses every sample and runs the rules on it, in parallel.
func (r *run) prepareAll(ctx context.Context) error {
	r.prep = make([]prepared, len(r.samples))
	workers := r.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				p, elapsed, err := r.prepare(ctx, i)
				r.prep[i] = p
				mu.Lock()
				if err != nil {
					firstErr = firstError(firstErr, err)
				}
				r.rep.ScanTime += elapsed
				mu.Unlock()
			}
		})
	}
	for i := range r.samples {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// prepare parses sample i, runs the rules on it and extracts its
// features; elapsed is the time a scan would spend on it (the
// routing-blind extraction excluded).
func (r *run) prepare(ctx context.Context, i int) (p prepared, elapsed time.Duration, err error) {
	start := time.Now()
	msg := r.parser.Parse(r.samples[i].Raw)
	p = prepared{feats: r.x.Features(msg), symbols: slices.Clone(msg.Symbols),
		lang: lang.Detect(msg.Subject + "\n" + msg.Text + "\n" + msg.HTML.Text)}
	if r.opts.Rules != nil {
		res, rerr := r.opts.Rules.Check(ctx, &scanner.Envelope{}, msg)
		if rerr != nil {
			err = fmt.Errorf("%s: %w", r.samples[i].Path, rerr)
		}
		p.symbols = append(p.symbols, res.Symbols...)
	}
	for _, s := range p.symbols {
		p.rules += s.Score
	}
	elapsed = time.Since(start)
	p.testFeats = p.feats
	if r.opts.RoutingBlind {
		p.testFeats = r.x.Features(r.parser.Parse(StripRouting(r.samples[i].Raw)))
	}
	return p, elapsed, err
}

// split assigns the samples to test rounds and returns how many rounds.
func (r *run) split() int {
	if r.opts.Model != nil {
		r.folds = make([]int, len(r.samples))
		return 1
	}
	if r.opts.HoldoutLatest > 0 {
		r.folds, r.times = temporalSplit(r.samples, r.opts.HoldoutLatest)
		return 1
	}
	r.folds = assignFolds(r.samples, r.opts.Folds)
	return r.opts.Folds
}

// train trains round k's model on the samples the round does not test.
func (r *run) train(k int) (*model.Model, error) {
	if r.opts.Model != nil {
		return r.opts.Model, nil
	}
	var train []model.Example
	for i, s := range r.samples {
		if r.folds[i] == k {
			continue
		}
		train = append(train, model.Example{Features: r.prep[i].feats, Spam: s.Spam})
		if r.times != nil {
			if s.Spam {
				r.rep.TrainSpam++
			} else {
				r.rep.TrainHam++
			}
			if r.times[i].After(r.rep.TrainEnd) {
				r.rep.TrainEnd = r.times[i]
			}
		}
	}
	start := time.Now()
	m, err := model.Train(train, r.opts.Train)
	r.rep.TrainTime += time.Since(start)
	return m, err
}

// test scores round k's samples with m into outcomes.
func (r *run) test(k int, m *model.Model, outcomes []Outcome) {
	for i, s := range r.samples {
		if r.folds[i] != k {
			continue
		}
		t0 := time.Now()
		z, p := m.Margin(r.prep[i].testFeats), m.NBScore(r.prep[i].testFeats)
		syms := append(slices.Clone(r.prep[i].symbols), r.check.Symbols(r.opts.Calibration, z, p)...)
		r.rep.ScanTime += time.Since(t0)
		score := 0.0
		for _, sy := range syms {
			score += sy.Score
		}
		o := Outcome{Path: s.Path, Spam: s.Spam, Fold: k, Subset: Subset(s.Path), Margin: z, Bayes: p, Rules: r.prep[i].rules, Lang: r.prep[i].lang, Score: score,
			Action: decide(score, r.opts.Policy), Symbols: syms}
		if r.times != nil {
			o.Time = r.times[i]
		}
		o.SightedAction = o.Action
		if r.opts.RoutingBlind {
			sighted := r.prep[i].rules
			for _, sy := range r.check.Symbols(r.opts.Calibration, m.Margin(r.prep[i].feats), m.NBScore(r.prep[i].feats)) {
				sighted += sy.Score
			}
			o.SightedAction = decide(sighted, r.opts.Policy)
		}
		outcomes[i] = o
	}
}

func firstError(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// decide mirrors scanner.Pipeline's score policy (there is no virus or
// policy rejection in a content evaluation).
func decide(score float64, p scanner.Policy) scanner.Action {
	switch {
	case p.RejectScore > 0 && score >= p.RejectScore:
		return scanner.Reject
	case p.TagScore > 0 && score >= p.TagScore:
		return scanner.Tag
	}
	return scanner.Deliver
}

// assignFolds deals spam and ham separately round-robin in path order, so
// every fold has the corpus' class balance.
func assignFolds(samples []Sample, k int) []int {
	folds := make([]int, len(samples))
	var ns, nh int
	for i, s := range samples {
		if s.Spam {
			folds[i] = ns % k
			ns++
		} else {
			folds[i] = nh % k
			nh++
		}
	}
	return folds
}

// Metrics are the summary numbers of a report.
type Metrics struct {
	Spam, Ham            int
	TP, FP, FN, TN       int
	Rejected, Tagged     int // of spam
	HamTagged, HamReject int
	Recall, FPRate       float64
	// SightedRecall and SightedFPRate are the same rates had the model
	// seen the delivery-path headers (equal to Recall and FPRate unless
	// the run was routing-blind).
	SightedRecall, SightedFPRate float64
	Precision, F1                float64
	RecallAt1FP                  float64
	RecallAt5FP                  float64
	OneMinusROCA                 float64 // (1-ROCA)% of the verdict score
	OneMinusROCAModel            float64 // (1-ROCA)% of the model margin alone
	// Subsets break the counts down by corpus part (see Subset), in name
	// order; empty when no file name names one.
	Subsets []SubsetMetrics
}

// SubsetMetrics are the counts of one corpus part.
type SubsetMetrics struct {
	Name       string
	Spam       bool
	N, Flagged int // messages, and those tagged or rejected
	Rejected   int
}

// Metrics computes the summary of r.
func (r *Report) Metrics() Metrics {
	var m Metrics
	var spamScores, hamScores, spamZ, hamZ []float64
	for _, o := range r.Outcomes {
		flagged := o.Action == scanner.Tag || o.Action == scanner.Reject
		if o.Spam {
			m.Spam++
			spamScores = append(spamScores, o.Score)
			spamZ = append(spamZ, o.Margin)
			if flagged {
				m.TP++
			} else {
				m.FN++
			}
			if o.Action == scanner.Reject {
				m.Rejected++
			} else if o.Action == scanner.Tag {
				m.Tagged++
			}
		} else {
			m.Ham++
			hamScores = append(hamScores, o.Score)
			hamZ = append(hamZ, o.Margin)
			if flagged {
				m.FP++
			} else {
				m.TN++
			}
			if o.Action == scanner.Reject {
				m.HamReject++
			} else if o.Action == scanner.Tag {
				m.HamTagged++
			}
		}
	}
	subs := map[string]*SubsetMetrics{}
	for _, o := range r.Outcomes {
		if o.Subset == "" {
			continue
		}
		sm := subs[o.Subset]
		if sm == nil {
			sm = &SubsetMetrics{Name: o.Subset, Spam: o.Spam}
			subs[o.Subset] = sm
		}
		sm.N++
		if o.Action == scanner.Tag || o.Action == scanner.Reject {
			sm.Flagged++
		}
		if o.Action == scanner.Reject {
			sm.Rejected++
		}
	}
	for _, sm := range subs {
		m.Subsets = append(m.Subsets, *sm)
	}
	sort.Slice(m.Subsets, func(i, j int) bool { return m.Subsets[i].Name < m.Subsets[j].Name })
	var sightedTP, sightedFP int
	for _, o := range r.Outcomes {
		if o.SightedAction == scanner.Tag || o.SightedAction == scanner.Reject {
			if o.Spam {
				sightedTP++
			} else {
				sightedFP++
			}
		}
	}
	m.SightedRecall = ratio(sightedTP, m.Spam)
	m.SightedFPRate = ratio(sightedFP, m.Ham)
	m.Recall = ratio(m.TP, m.Spam)
	m.FPRate = ratio(m.FP, m.Ham)
	m.Precision = ratio(m.TP, m.TP+m.FP)
	if m.Precision+m.Recall > 0 {
		m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
	}
	m.RecallAt1FP = recallAtFP(spamScores, hamScores, 1)
	m.RecallAt5FP = recallAtFP(spamScores, hamScores, 5)
	m.OneMinusROCA = 100 * (1 - auc(spamScores, hamScores))
	m.OneMinusROCAModel = 100 * (1 - auc(spamZ, hamZ))
	return m
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// recallAtFP is the spam recall at the lowest threshold that lets at most
// n ham through as spam (threshold swept over the observed scores).
func recallAtFP(spam, ham []float64, n int) float64 {
	if len(spam) == 0 {
		return 0
	}
	h := slices.Clone(ham)
	sort.Sort(sort.Reverse(sort.Float64Slice(h)))
	thr := math.Inf(-1)
	if n < len(h) {
		thr = h[n] // flag only what scores above the (n+1)-th highest ham
	}
	caught := 0
	for _, s := range spam {
		if s > thr {
			caught++
		}
	}
	return float64(caught) / float64(len(spam))
}

// auc is the area under the ROC curve: the probability that a random spam
// scores above a random ham, ties counting half.
func auc(spam, ham []float64) float64 {
	if len(spam) == 0 || len(ham) == 0 {
		return 0
	}
	h := slices.Sorted(slices.Values(ham))
	var sum float64
	for _, s := range spam {
		below := sort.SearchFloat64s(h, s) // ham < s
		upto := sort.Search(len(h), func(i int) bool { return h[i] > s })
		sum += float64(below) + 0.5*float64(upto-below)
	}
	return sum / float64(len(spam)*len(ham))
}

type symbolHit struct {
	name             string
	spam, ham, hamFP int
}

// symbolHits counts, per symbol, the spam and ham it fired on and the
// false positives it was part of: a rule that shows up in ham FPs is the
// first suspect when tuning weights.
func (r *Report) symbolHits() []symbolHit {
	idx := map[string]int{}
	var hits []symbolHit
	for _, o := range r.Outcomes {
		for _, s := range o.Symbols {
			i, ok := idx[s.Name]
			if !ok {
				i = len(hits)
				idx[s.Name] = i
				hits = append(hits, symbolHit{name: s.Name})
			}
			switch {
			case o.Spam:
				hits[i].spam++
			default:
				hits[i].ham++
				if o.Action == scanner.Tag || o.Action == scanner.Reject {
					hits[i].hamFP++
				}
			}
		}
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].name < hits[j].name })
	return hits
}

// Write prints the report as text.
func (r *Report) Write(w io.Writer) error {
	m := r.Metrics()
	o := r.Options
	mode := "full message"
	if o.RoutingBlind {
		mode = "routing-blind (delivery-path headers hidden from the model on test messages)"
	}
	split := fmt.Sprintf("%d-fold cross-validation", o.Folds)
	switch {
	case o.Model != nil:
		st := o.Model.Stats()
		split = fmt.Sprintf("a trained model (%d spam, %d ham) on mail it never saw", st.Spam, st.Ham)
	case o.HoldoutLatest > 0:
		split = fmt.Sprintf("temporal holdout, latest %.0f%% of each class by Date", 100*o.HoldoutLatest)
	}
	perCore := 0.0
	if r.ScanTime > 0 {
		perCore = float64(r.Scanned) / r.ScanTime.Seconds()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mxgrid eval: %s, %s\n", split, mode)
	if o.HoldoutLatest > 0 {
		first := time.Time{}
		for _, oc := range r.Outcomes {
			if !oc.Time.IsZero() && (first.IsZero() || oc.Time.Before(first)) {
				first = oc.Time
			}
		}
		fmt.Fprintf(&b, "trained on %d spam, %d ham up to %s; tested on %d spam, %d ham from %s\n",
			r.TrainSpam, r.TrainHam, r.TrainEnd.UTC().Format(time.DateOnly), m.Spam, m.Ham, first.UTC().Format(time.DateOnly))
	} else {
		fmt.Fprintf(&b, "corpus: %d spam, %d ham\n", m.Spam, m.Ham)
	}
	fmt.Fprintf(&b, "thresholds: tag %.2f, reject %.2f (verdict = parser symbols + rules + model)\n", o.Policy.TagScore, o.Policy.RejectScore)
	if o.Model == nil {
		fmt.Fprintf(&b, "model: bits %d, window %d, epochs %d, dropout %.2f\n", o.Train.Bits, o.Train.Window, o.Train.Epochs, o.Train.Dropout)
	}
	fmt.Fprintf(&b, "\n")
	fmt.Fprintf(&b, "spam recall            %7.2f%%  (%d/%d caught: %d rejected, %d tagged)\n", 100*m.Recall, m.TP, m.Spam, m.Rejected, m.Tagged)
	fmt.Fprintf(&b, "ham false positives    %7.2f%%  (%d/%d: %d rejected, %d tagged)\n", 100*m.FPRate, m.FP, m.Ham, m.HamReject, m.HamTagged)
	if o.RoutingBlind {
		fmt.Fprintf(&b, "  same models, routing headers shown: recall %.2f%%, ham FP %.2f%% (difference %+.2f points)\n",
			100*m.SightedRecall, 100*m.SightedFPRate, 100*(m.Recall-m.SightedRecall))
	}
	for _, sm := range m.Subsets {
		what := "false positives"
		if sm.Spam {
			what = "caught"
		}
		fmt.Fprintf(&b, "  %-20s %7.2f%%  (%d/%d %s, %d rejected)\n", shown(sm.Name), 100*ratio(sm.Flagged, sm.N), sm.Flagged, sm.N, what, sm.Rejected)
	}
	fmt.Fprintf(&b, "precision              %7.2f%%\n", 100*m.Precision)
	fmt.Fprintf(&b, "F1                     %7.2f%%\n", 100*m.F1)
	fmt.Fprintf(&b, "recall at <= 1 FP      %7.2f%%  (threshold swept over the verdict score)\n", 100*m.RecallAt1FP)
	fmt.Fprintf(&b, "recall at <= 5 FP      %7.2f%%\n", 100*m.RecallAt5FP)
	fmt.Fprintf(&b, "(1-ROCA)%%              %7.4f   (verdict score); model margin alone: %.4f\n", m.OneMinusROCA, m.OneMinusROCAModel)
	fmt.Fprintf(&b, "throughput             %7.0f msgs/s per core (parse + rules + features + model; %d msgs in %s of worker time)\n", perCore, r.Scanned, r.ScanTime.Round(time.Millisecond))
	switch {
	case o.Model != nil:
	case o.HoldoutLatest > 0:
		fmt.Fprintf(&b, "training               %s\n", r.TrainTime.Round(time.Millisecond))
	default:
		fmt.Fprintf(&b, "training               %s for %d folds\n", r.TrainTime.Round(time.Millisecond), o.Folds)
	}
	c := o.Calibration
	fmt.Fprintf(&b, "calibration scored   slope %.3f, bayes slope %.3f, offset %.3f; probability mid %.3f steep %.3f\n", c.Slope, c.BayesSlope, c.Offset, c.Mid, c.Steep)
	if fit, err := Calibrate(r.Outcomes, o.Policy.TagScore, MaxHamFP(m.Ham)); err == nil {
		c := fit.Calibration
		fmt.Fprintf(&b, "calibration fitted   slope %.3f, bayes slope %.3f, offset %.3f; probability mid %.3f steep %.3f; reject at %.1f\n", c.Slope, c.BayesSlope, c.Offset, c.Mid, c.Steep, fit.RejectScore)
		fmt.Fprintf(&b, "  (on this run's scores, out of fold unless a fixed model: recall %.2f%% with <= %d ham at tag %.2f, recall at <= 1 FP %.2f%%)\n", 100*fit.RecallAtTag, fit.MaxHamFP, fit.TagScore, 100*fit.RecallAt1FP)
	}
	writeReliability(&b, r.Outcomes, o.Calibration)
	r.writeLanguages(&b)
	r.writeErrorSymbols(&b)
	var fps []Outcome
	for _, oc := range r.Outcomes {
		if !oc.Spam && (oc.Action == scanner.Tag || oc.Action == scanner.Reject) {
			fps = append(fps, oc)
		}
	}
	if len(fps) > 0 {
		sort.SliceStable(fps, func(i, j int) bool { return fps[i].Score > fps[j].Score })
		fmt.Fprintf(&b, "\nham false positives (score, model margin, file):\n")
		for n, oc := range fps {
			if n == 20 {
				fmt.Fprintf(&b, "  ... and %d more\n", len(fps)-n)
				break
			}
			fmt.Fprintf(&b, "  %6.2f %+6.2f  %s\n", oc.Score, oc.Margin, shown(filepath.Base(oc.Path)))
		}
	}
	// The log-likelihood ratio is what the corpus alone says a symbol is
	// worth (smoothed by half a message); a weight far above it is a
	// guess the data does not back, one far below it leaves evidence unused
	// (the model often carries the same evidence, so weights sit below it).
	fmt.Fprintf(&b, "\n%-22s %6s %6s %8s %8s\n", "symbol", "spam", "ham", "ham FPs", "ln LR")
	for _, h := range r.symbolHits() {
		llr := math.Log(((float64(h.spam) + 0.5) / float64(m.Spam+1)) / ((float64(h.ham) + 0.5) / float64(m.Ham+1)))
		fmt.Fprintf(&b, "%-22s %6d %6d %8d %8.2f\n", h.name, h.spam, h.ham, h.hamFP, llr)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Examples parses samples and extracts their model features with workers
// goroutines (0: GOMAXPROCS). The result is in the order of samples, so
// training on it is deterministic whatever the scheduling.
func Examples(ctx context.Context, samples []Sample, x *model.Extractor, parser *scanner.Parser, workers int) ([]model.Example, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	out := make([]model.Example, len(samples))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = model.Example{Features: x.Features(parser.Parse(samples[i].Raw)), Spam: samples[i].Spam}
			}
		}()
	}
	for i := range samples {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return out, ctx.Err()
}

// writeLanguages breaks the counts down by the language of the text.
func (r *Report) writeLanguages(w io.Writer) {
	type counts struct{ spam, caught, ham, fp int }
	by := map[lang.Tag]*counts{}
	for _, o := range r.Outcomes {
		c := by[o.Lang]
		if c == nil {
			c = &counts{}
			by[o.Lang] = c
		}
		flagged := o.Action == scanner.Tag || o.Action == scanner.Reject
		switch {
		case o.Spam:
			c.spam++
			if flagged {
				c.caught++
			}
		default:
			c.ham++
			if flagged {
				c.fp++
			}
		}
	}
	tags := slices.Sorted(maps.Keys(by))
	fmt.Fprintf(w, "\nby language of the text\n  %-6s %6s %8s %8s %6s %8s\n", "lang", "spam", "caught", "recall", "ham", "ham FPs")
	for _, t := range tags {
		c := by[t]
		fmt.Fprintf(w, "  %-6s %6d %8d %7.2f%% %6d %8d\n", t, c.spam, c.caught, 100*ratio(c.caught, c.spam), c.ham, c.fp)
	}
}

// writeErrorSymbols lists the symbols that fired most often on the
// messages judged wrongly: the rules to look at first when tuning.
func (r *Report) writeErrorSymbols(w io.Writer) {
	missed, flagged := map[string]int{}, map[string]int{}
	var nMissed, nFlagged int
	for _, o := range r.Outcomes {
		isFlagged := o.Action == scanner.Tag || o.Action == scanner.Reject
		var into map[string]int
		switch {
		case o.Spam && !isFlagged:
			into = missed
			nMissed++
		case !o.Spam && isFlagged:
			into = flagged
			nFlagged++
		default:
			continue
		}
		for _, s := range o.Symbols {
			into[s.Name]++
		}
	}
	for _, e := range []struct {
		what string
		n    int
		hits map[string]int
	}{{"missed spam", nMissed, missed}, {"flagged ham", nFlagged, flagged}} {
		if e.n == 0 {
			continue
		}
		names := slices.Collect(maps.Keys(e.hits))
		sort.Slice(names, func(i, j int) bool {
			if e.hits[names[i]] != e.hits[names[j]] {
				return e.hits[names[i]] > e.hits[names[j]]
			}
			return names[i] < names[j]
		})
		fmt.Fprintf(w, "\nsymbols on the %d %s:", e.n, e.what)
		for i, name := range names {
			if i == 10 {
				break
			}
			fmt.Fprintf(w, " %s(%d)", name, e.hits[name])
		}
		fmt.Fprintln(w)
	}
}

// shown is a corpus file's name, or the part of the corpus named after
// it (Subset), as the report lists it: quoted as Go quotes it when it
// holds a character a terminal would act on rather than show. A corpus
// saved from a mailbox names its files after their subjects, and the ham
// files flagged are where a spam filed as ham shows.
func shown(name string) string {
	if strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsGraphic(r) }) {
		return strconv.QuoteToGraphic(name)
	}
	return name
}
