package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"

	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/model"
)

// Fit is a calibration fitted on out-of-fold outcomes, and what it gives
// on them.
type Fit struct {
	Calibration model.Calibration
	// TagScore is the score the offset places the fitted threshold at; at
	// most MaxHamFP of the fitted ham reach it.
	TagScore float64
	MaxHamFP int
	// RejectScore is the lowest score, in steps of 0.5 from TagScore+1,
	// whose probability is at least RejectProbability with no fitted ham
	// at or above it.
	RejectScore float64
	RecallAtTag float64
	RecallAt1FP float64
}

// MaxHamFPRate is the share of ham a calibration lets reach the tag score
// on out-of-fold scores: 2 of the public corpus' 2,625.
const MaxHamFPRate = 0.001

// RejectProbability is how sure a refusal must be: one error in ten
// thousand. A refused sender hears why at once, but a refused ham is
// lost to its reader, where a tagged one is only filed.
const RejectProbability = 0.9999

// MaxHamFP is MaxHamFPRate of nHam, rounded down.
func MaxHamFP(nHam int) int { return int(MaxHamFPRate * float64(nHam)) }

// The grid the slopes are searched over. The regression margin is the
// model's main signal; Bayes adds a little where the regression is unsure.
var (
	slopeGrid      = gridOf(0.1, 1.0, 0.05)
	bayesSlopeGrid = gridOf(0, 0.3, 0.025)
)

func gridOf(from, to, step float64) []float64 {
	var g []float64
	for i := 0; from+float64(i)*step <= to+1e-9; i++ {
		g = append(g, math.Round((from+float64(i)*step)*1000)/1000)
	}
	return g
}

// Calibrate fits the model's calibration on the out-of-fold outcomes of a
// cross-validation run (each scored by a model that never saw it):
//
//   - the slopes maximise recall at 1 and at maxHamFP false positives,
//     averaged over each grid point's neighbours so that a lone lucky
//     point does not win;
//   - the offset puts tag midway between the (maxHamFP+1)-th highest ham
//     and the next spam above it;
//   - Mid and Steep are a logistic fit of the label on the resulting score.
func Calibrate(outs []Outcome, tag float64, maxHamFP int) (Fit, error) {
	var nSpam, nHam int
	for _, o := range outs {
		if o.Spam {
			nSpam++
		} else {
			nHam++
		}
	}
	if nSpam == 0 || nHam <= maxHamFP {
		return Fit{}, errors.New("calibrate: need spam and more ham than the false positives allowed")
	}
	obj := make([][]float64, len(slopeGrid))
	for i, a := range slopeGrid {
		obj[i] = make([]float64, len(bayesSlopeGrid))
		for j, b := range bayesSlopeGrid {
			spam, ham := rawScores(outs, a, b)
			obj[i][j] = recallAtFP(spam, ham, 1) + recallAtFP(spam, ham, maxHamFP)
		}
	}
	bi, bj, best := 0, 0, math.Inf(-1)
	for i := range obj {
		for j := range obj[i] {
			if v := neighbourhoodMean(obj, i, j); v > best {
				bi, bj, best = i, j, v
			}
		}
	}
	cal := model.Calibration{Slope: slopeGrid[bi], BayesSlope: bayesSlopeGrid[bj]}
	spam, ham := rawScores(outs, cal.Slope, cal.BayesSlope)
	cal.Offset = round3(tag - threshold(spam, ham, maxHamFP))
	scores := make([]float64, len(outs))
	labels := make([]bool, len(outs))
	for i, o := range outs {
		scores[i] = o.Rules + cal.Points(o.Margin, o.Bayes)
		labels[i] = o.Spam
	}
	cal.Mid, cal.Steep = logisticFit(scores, labels)
	f := Fit{Calibration: cal, TagScore: tag, MaxHamFP: maxHamFP}
	var caught int
	var hamScores, spamScores []float64
	for i, s := range scores {
		if labels[i] {
			spamScores = append(spamScores, s)
			if s >= tag {
				caught++
			}
		} else {
			hamScores = append(hamScores, s)
		}
	}
	f.RecallAtTag = float64(caught) / float64(nSpam)
	f.RecallAt1FP = recallAtFP(spamScores, hamScores, 1)
	topHam := slices.Max(hamScores)
	for r := tag + 1; ; r += 0.5 {
		if cal.Probability(r) >= RejectProbability && r > topHam {
			f.RejectScore = r
			break
		}
	}
	return f, nil
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// rawScores are the outcomes' verdict scores with the model's points at
// slopes a and b and no offset.
func rawScores(outs []Outcome, a, b float64) (spam, ham []float64) {
	cal := model.Calibration{Slope: a, BayesSlope: b}
	for _, o := range outs {
		s := o.Rules + cal.Points(o.Margin, o.Bayes)
		if o.Spam {
			spam = append(spam, s)
		} else {
			ham = append(ham, s)
		}
	}
	return spam, ham
}

// threshold is midway between the (n+1)-th highest ham score and the
// lowest spam score above it.
func threshold(spam, ham []float64, n int) float64 {
	h := slices.Clone(ham)
	sort.Sort(sort.Reverse(sort.Float64Slice(h)))
	floor := h[n]
	next := math.Inf(1)
	for _, s := range spam {
		if s > floor && s < next {
			next = s
		}
	}
	if math.IsInf(next, 1) {
		return floor + 0.01
	}
	return (floor + next) / 2
}

func neighbourhoodMean(g [][]float64, i, j int) float64 {
	var sum float64
	var n int
	for di := -1; di <= 1; di++ {
		for dj := -1; dj <= 1; dj++ {
			if i+di >= 0 && i+di < len(g) && j+dj >= 0 && j+dj < len(g[i+di]) {
				sum += g[i+di][j+dj]
				n++
			}
		}
	}
	return sum / float64(n)
}

// logisticFit fits P(spam) = 1/(1+exp(-steep*(s-mid))) by Newton's method
// on the log-likelihood, with a tiny ridge so that separable data (a
// corpus the score ranks perfectly) still gives a finite slope.
func logisticFit(scores []float64, spam []bool) (mid, steep float64) {
	var w0, w1 float64 // P = sigmoid(w0 + w1*s)
	const ridge = 1e-3
	for range 100 {
		var g0, g1, h00, h01, h11 float64
		for i, s := range scores {
			p := 1 / (1 + math.Exp(-(w0 + w1*s)))
			y := 0.0
			if spam[i] {
				y = 1
			}
			g0 += p - y
			g1 += (p - y) * s
			w := p * (1 - p)
			h00 += w
			h01 += w * s
			h11 += w * s * s
		}
		g1 += ridge * w1
		h00 += ridge
		h11 += ridge
		det := h00*h11 - h01*h01
		if det <= 0 {
			break
		}
		d0 := (h11*g0 - h01*g1) / det
		d1 := (h00*g1 - h01*g0) / det
		w0 -= d0
		w1 -= d1
		if math.Abs(d0)+math.Abs(d1) < 1e-9 {
			break
		}
	}
	if w1 <= 0 {
		return 0, 0
	}
	return round3(-w0 / w1), round3(w1)
}

// reliabilityBins are the upper edges of the reliability table's bins.
var reliabilityBins = []float64{0.01, 0.1, 0.5, 0.9, 0.99, 1.0000001}

// writeReliability prints, per bin of predicted probability, how many
// messages fell in it, the mean prediction and the observed spam rate: a
// calibrated probability has the two columns close.
func writeReliability(w io.Writer, outs []Outcome, cal model.Calibration) {
	type bin struct {
		n, spam int
		sum     float64
	}
	bins := make([]bin, len(reliabilityBins))
	for _, o := range outs {
		p := cal.Probability(o.Score)
		i := sort.SearchFloat64s(reliabilityBins, p)
		if i < len(reliabilityBins) && reliabilityBins[i] == p {
			i++ // the edges are exclusive upper bounds
		}
		i = min(i, len(bins)-1)
		bins[i].n++
		bins[i].sum += p
		if o.Spam {
			bins[i].spam++
		}
	}
	fmt.Fprintf(w, "\nreliability (predicted spam probability vs observed spam rate)\n")
	fmt.Fprintf(w, "  %-13s %6s %10s %9s\n", "probability", "msgs", "predicted", "observed")
	lo := 0.0
	for i, b := range bins {
		hi := min(reliabilityBins[i], 1)
		if b.n > 0 {
			fmt.Fprintf(w, "  %4.2f - %4.2f   %6d %9.3f %9.3f\n", lo, hi, b.n, b.sum/float64(b.n), float64(b.spam)/float64(b.n))
		} else {
			fmt.Fprintf(w, "  %4.2f - %4.2f   %6d %9s %9s\n", lo, hi, 0, "-", "-")
		}
		lo = hi
	}
}

// CalibrateCorpus cross-validates models trained with cfg on samples
// (10 folds, routing-blind, scored with rules) and fits the calibration
// that puts tag at MaxHamFPRate of the ham: what `mxgrid train` stores in
// the model it then trains on all of samples.
func CalibrateCorpus(ctx context.Context, samples []Sample, cfg model.TrainConfig, rules scanner.Check, tag float64) (Fit, error) {
	rep, err := Run(ctx, samples, Options{Folds: 10, RoutingBlind: true, Train: cfg, Rules: rules,
		Policy: scanner.Policy{TagScore: tag}})
	if err != nil {
		return Fit{}, fmt.Errorf("calibrate: %w", err)
	}
	var nHam int
	for _, o := range rep.Outcomes {
		if !o.Spam {
			nHam++
		}
	}
	return Calibrate(rep.Outcomes, tag, MaxHamFP(nHam))
}
