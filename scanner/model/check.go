package model

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mxgrid/mxgrid/scanner"
)

// Symbols of the model check.
const (
	// SymbolSpam carries the model's points when they are positive.
	SymbolSpam = "MODEL_SPAM"
	// SymbolHam carries them when they are negative, down to its weight.
	SymbolHam = "MODEL_HAM"
)

// Calibration turns the two classifiers' outputs into the model's share
// of the verdict score, and a verdict score into a spam probability.
//
// The points are a straight line in the regression margin and the naive
// Bayes log-odds, with no cap on the spam side. A cap ties every confident
// message at the same score (hundreds of spam at exactly 6.00 before), so
// the ranking among them, which is what a threshold needs, was lost.
//
// Nothing here is set by hand: `mxgrid train` fits it on out-of-fold
// cross-validation scores of its training corpus (the slopes that rank
// spam above ham best at one or two false positives, the offset that puts
// the tag score just above the ham the fit allows, a logistic fit of the
// probability; see scanner/eval.Calibrate) and stores it in the model file.
type Calibration struct {
	Slope      float64 // points per unit of regression margin
	BayesSlope float64 // points per unit of Bayes log-odds, clipped to ±bayesClip
	Offset     float64 // points at margin 0 and Bayes probability 0.5
	// Mid and Steep map a verdict score s to the probability
	// 1/(1+exp(-Steep*(s-Mid))) that the message is spam, at the training
	// corpus' mix of spam and ham.
	Mid, Steep float64
}

// Points returns the model's points for margin z and Bayes probability p.
func (c Calibration) Points(z, p float64) float64 {
	return c.Slope*z + c.BayesSlope*BayesLogOdds(p) + c.Offset
}

// Probability returns the calibrated spam probability of a verdict score.
func (c Calibration) Probability(score float64) float64 {
	return 1 / (1 + math.Exp(-c.Steep*(score-c.Mid)))
}

// bayesClip bounds the Bayes log-odds: chi-square combining saturates at
// 0 and 1 for long messages, and one saturated classifier must not drown
// the other.
const bayesClip = 10

// BayesLogOdds is the clipped log-odds of a Bayes probability.
func BayesLogOdds(p float64) float64 {
	p = math.Min(math.Max(p, 1e-9), 1-1e-9)
	return math.Max(-bayesClip, math.Min(bayesClip, math.Log(p/(1-p))))
}

// DefaultWeights are the default weights of the model's symbols: MODEL_SPAM
// multiplies the positive points (1 keeps the calibration; 0 switches the
// model's spam side off), MODEL_HAM is the most the model can take off, so
// that a confident ham model cannot bury a decisive rule (an executable
// attachment).
func DefaultWeights() map[string]float64 {
	return map[string]float64{SymbolSpam: 1, SymbolHam: -3}
}

// Provider hands out the model in force. A *Model provides itself; a
// *Watcher provides the latest good version of a file.
type Provider interface {
	Model() *Model
}

// Model returns m itself, so a fixed model is a Provider.
func (m *Model) Model() *Model { return m }

// Check is the scanner.Check of the statistical model.
type Check struct {
	p             Provider
	spamW, hamMin float64
}

var _ scanner.Check = (*Check)(nil)

// NewCheck returns the model check. overrides may change the weights of
// MODEL_SPAM and MODEL_HAM; other names are ignored.
func NewCheck(p Provider, overrides map[string]float64) *Check {
	w := DefaultWeights()
	for k := range w {
		if v, ok := overrides[k]; ok {
			w[k] = v
		}
	}
	return &Check{p: p, spamW: w[SymbolSpam], hamMin: math.Min(0, w[SymbolHam])}
}

// Name implements scanner.Check.
func (c *Check) Name() string { return "model" }

// Check implements scanner.Check. Classification is pure CPU work of well
// under a millisecond, so it does not watch ctx.
func (c *Check) Check(_ context.Context, _ *scanner.Envelope, msg *scanner.Message) (scanner.Result, error) {
	m := c.p.Model()
	if m == nil {
		return scanner.Result{}, fmt.Errorf("model check: no model loaded")
	}
	z, p := m.Judge(msg)
	cal := m.Calibration()
	return scanner.Result{Symbols: c.Symbols(cal, z, p), Calibration: cal}, nil
}

// Symbols turns a regression margin z and a Bayes probability p into the
// check's symbol under calibration cal. The eval uses it too, so
// cross-validation scores exactly what a node would.
func (c *Check) Symbols(cal Calibration, z, p float64) []scanner.Symbol {
	pts := cal.Points(z, p)
	switch {
	case pts > 0 && c.spamW != 0:
		return []scanner.Symbol{{Name: SymbolSpam, Score: round2(c.spamW * pts), Detail: detail(z, p)}}
	case pts < 0 && c.hamMin != 0:
		return []scanner.Symbol{{Name: SymbolHam, Score: round2(math.Max(c.hamMin, pts)), Detail: detail(z, p)}}
	}
	return nil
}

// detail is fmt.Sprintf("margin=%+.2f bayes=%.3f", z, p) in one
// allocation: Sprintf boxed both floats, three a message.
func detail(z, p float64) string {
	var num [32]byte
	var b strings.Builder
	b.Grow(len("margin=+0.00 bayes=0.000") + 8)
	b.WriteString("margin=")
	zs := strconv.AppendFloat(num[:0], z, 'f', 2, 64)
	if zs[0] != '-' && zs[0] != '+' {
		// %+ signs what AppendFloat leaves unsigned, NaN included.
		b.WriteByte('+')
	}
	b.Write(zs)
	b.WriteString(" bayes=")
	b.Write(strconv.AppendFloat(num[:0], p, 'f', 3, 64))
	return b.String()
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
