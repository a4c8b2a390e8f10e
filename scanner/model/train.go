package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// TrainConfig holds the training hyper-parameters. The defaults were chosen
// by routing-blind cross-validation on the public corpus, preferring the
// more regularised setting whenever two were close (see the package's
// README for the reasoning).
type TrainConfig struct {
	// Bits sizes the hashed feature table: 2^Bits weights of one byte.
	Bits uint8
	// Window is the orthogonal sparse bigram window: each word is paired
	// with the Window-1 words before it.
	Window int
	// Epochs is the number of shuffled passes over the training set.
	Epochs int
	// Rate is the initial learning rate; pass e uses Rate/sqrt(1+e).
	Rate float64
	// Dropout is the probability that a feature is hidden from one
	// training step. It spreads the weight over many features instead of a
	// few corpus-specific ones, which is what lets the model generalise to
	// mail from other mailboxes.
	Dropout float64
	// HamWeight scales the gradient of ham messages: a false positive
	// costs more than a missed spam.
	HamWeight float64
	// Seed fixes the shuffling and dropout, so training is reproducible.
	Seed uint64
}

// DefaultTrainConfig returns the settings used for the embedded model.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{Bits: 20, Window: 4, Epochs: 30, Rate: 20, Dropout: 0.2, HamWeight: 2, Seed: 1}
}

// Validate reports an unusable setting.
func (c TrainConfig) Validate() error {
	switch {
	case c.Bits < minBits || c.Bits > maxBits:
		return fmt.Errorf("bits: must be in [%d, %d], got %d", minBits, maxBits, c.Bits)
	case c.Window < 1 || c.Window > 8:
		return fmt.Errorf("window: must be in [1, 8], got %d", c.Window)
	case c.Epochs < 1:
		return fmt.Errorf("epochs: must be at least 1, got %d", c.Epochs)
	case !(c.Rate > 0):
		return fmt.Errorf("rate: must be positive, got %v", c.Rate)
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return fmt.Errorf("dropout: must be in [0, 1), got %v", c.Dropout)
	case !(c.HamWeight > 0):
		return fmt.Errorf("ham_weight: must be positive, got %v", c.HamWeight)
	}
	return nil
}

// Example is one training message, already turned into features by the
// extractor of the same Bits and Window.
type Example struct {
	Features []uint32
	Spam     bool
}

// Train fits a model. It is deterministic: the same examples in the same
// order with the same config give the same model, bit for bit.
func Train(examples []Example, cfg TrainConfig) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var nspam, nham int
	for _, ex := range examples {
		if ex.Spam {
			nspam++
		} else {
			nham++
		}
	}
	if nspam == 0 || nham == 0 {
		return nil, errors.New("train: need both spam and ham examples")
	}
	size := 1 << cfg.Bits
	w := make([]float32, size)
	var bias float64
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6d78677269642d6d))
	order := make([]int, len(examples))
	for i := range order {
		order[i] = i
	}
	keep := make([]uint32, 0, 1024)
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		rate := cfg.Rate / math.Sqrt(1+float64(epoch))
		for _, idx := range order {
			ex := &examples[idx]
			keep = keep[:0]
			for _, f := range ex.Features {
				if cfg.Dropout == 0 || rng.Float64() >= cfg.Dropout {
					if int(f) < size {
						keep = append(keep, f)
					}
				}
			}
			var sum float64
			for _, f := range keep {
				sum += float64(w[f])
			}
			norm := 1.0
			if len(keep) > 0 {
				norm = 1 / math.Sqrt(float64(len(keep)))
			}
			p := sigmoid(bias + sum*norm)
			y, cw := 0.0, cfg.HamWeight
			if ex.Spam {
				y, cw = 1, 1
			}
			g := rate * cw * (y - p)
			step := float32(g * norm)
			for _, f := range keep {
				w[f] += step
			}
			bias += g * 0.1 // the bias moves slowly: it only tracks the class prior
		}
	}
	m := quantize(w, bias, cfg, nspam, nham)
	cs, ch := make([]uint32, size), make([]uint32, size)
	for _, ex := range examples {
		c := ch
		if ex.Spam {
			c = cs
		}
		for _, f := range ex.Features {
			if int(f) < size {
				c[f]++
			}
		}
	}
	m.nb = nbTable(cs, ch, nspam, nham)
	return m, nil
}

// quantize stores weights as int8 steps of a common scale. Training saw,
// on average, (1-Dropout) of the features with the norm computed over those
// it saw; scoring sees all of them, so the margins are scaled by
// sqrt(1-Dropout) to stay on the scale the bias was learnt on.
func quantize(w []float32, bias float64, cfg TrainConfig, nspam, nham int) *Model {
	var maxAbs float64
	for _, v := range w {
		maxAbs = max(maxAbs, math.Abs(float64(v)))
	}
	step := maxAbs / 127
	if step == 0 {
		step = 1
	}
	q := make([]int8, len(w))
	for i, v := range w {
		q[i] = int8(math.Round(float64(v) / step))
	}
	gain := math.Sqrt(1 - cfg.Dropout)
	return &Model{
		bits: cfg.Bits, window: uint8(cfg.Window),
		spam: uint32(nspam), ham: uint32(nham),
		bias: float32(bias), scale: float32(step * gain),
		w: q, x: NewExtractor(cfg.Bits, cfg.Window),
	}
}

func sigmoid(z float64) float64 {
	return 1 / (1 + math.Exp(-z))
}
