package model

import (
	"context"
	"fmt"
	"math"

	"github.com/mxgrid/mxgrid/scanner"
)

// Symbols of the model check.
const (
	// SymbolSpam carries up to its weight when the model leans spam.
	SymbolSpam = "MODEL_SPAM"
	// SymbolHam carries up to its (negative) weight when the model is
	// confident the message is ham.
	SymbolHam = "MODEL_HAM"
)

// Calibration: MODEL_SPAM grows linearly with the margin from spamStart
// (zero) to spamFull (its full weight); MODEL_HAM likewise from hamStart
// to hamFull. With the default weight 9 and tag score 6, the model alone
// tags at margin 0 (p(spam) = 0.5 as trained, ham errors counting twice),
// and messages it is unsure about (margins down to -3) carry a part of the
// weight that rules can complete. The points were read off routing-blind
// cross-validation on the public corpus, where moving spamStart by 0.25
// trades about one caught spam for one false positive.
const (
	spamStart = -3.0
	spamFull  = 1.5
	hamStart  = -3.0
	hamFull   = -6.0
)

// DefaultWeights are the default weights of the model's symbols. With the
// default thresholds (tag 6, reject 12) a confident model alone tags, and
// rejecting takes the model plus rules.
func DefaultWeights() map[string]float64 {
	return map[string]float64{SymbolSpam: 9, SymbolHam: -3}
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
	p           Provider
	spamW, hamW float64
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
	return &Check{p: p, spamW: w[SymbolSpam], hamW: w[SymbolHam]}
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
	return scanner.Result{Symbols: c.Symbols(m.Classify(msg))}, nil
}

// Symbols turns a margin into the check's symbols. The eval uses it too, so
// cross-validation scores exactly what a node would.
func (c *Check) Symbols(z float64) []scanner.Symbol {
	detail := fmt.Sprintf("p=%.4f", 1/(1+math.Exp(-z)))
	switch {
	case z > spamStart:
		f := math.Min(1, (z-spamStart)/(spamFull-spamStart))
		return []scanner.Symbol{{Name: SymbolSpam, Score: round2(c.spamW * f), Detail: detail}}
	case z < hamStart:
		f := math.Min(1, (hamStart-z)/(hamStart-hamFull))
		return []scanner.Symbol{{Name: SymbolHam, Score: round2(c.hamW * f), Detail: detail}}
	}
	return nil
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
