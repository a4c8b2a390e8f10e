package model

import "math"

// The second classifier is naive Bayes with Robinson's per-token
// probabilities and Fisher's chi-square combining (SpamBayes, bogofilter)
// over the same hashed features as the logistic regression. It is biased
// differently: it counts how often a feature occurs in each class instead
// of fitting weights that explain the training set, it ignores features
// it knows little about, and it says "unsure" when the evidence pulls both
// ways, where a regression adds it up.

// Robinson's constants (the SpamBayes defaults): an unseen feature has
// probability nbX with the strength of nbS messages; features closer to
// 0.5 than nbMinDev are ignored; at most nbMaxTokens of the most extreme
// features are combined. Features seen in fewer than nbMinCount training
// messages are left out: with five times more ham than spam, rare features
// are mostly ham's, and without the floor they made new spam look hammy
// (the temporal holdout found 90 of 150 spam above 0.5 with the floor, 82
// without, and no more ham).
const (
	nbMinCount  = 3
	nbS         = 0.45
	nbX         = 0.5
	nbMinDev    = 0.1
	nbMaxTokens = 150
	nbLogitMax  = 7.0 // nb table byte = logit(f) in steps of nbLogitMax/127
)

// nbTable turns per-feature document counts into the stored table: each
// byte is the feature's Robinson f(w) as a quantized logit (0 = unknown).
func nbTable(cs, ch []uint32, nspam, nham int) []int8 {
	t := make([]int8, len(cs))
	for i := range cs {
		s, h := float64(cs[i]), float64(ch[i])
		n := s + h
		if n < nbMinCount {
			continue
		}
		ps, ph := s/float64(nspam), h/float64(nham)
		p := ps / (ps + ph)
		f := (nbS*nbX + n*p) / (nbS + n)
		f = min(max(f, 1e-4), 1-1e-4)
		l := math.Log(f / (1 - f))
		t[i] = int8(math.Round(min(max(l, -nbLogitMax), nbLogitMax) * 127 / nbLogitMax))
	}
	return t
}

// nbLnF and nbLn1mF hold ln f and ln(1-f) for every table byte.
var nbLnF, nbLn1mF [256]float64

func init() {
	for b := range 256 {
		l := float64(int8(b)) * nbLogitMax / 127
		f := 1 / (1 + math.Exp(-l))
		nbLnF[b], nbLn1mF[b] = math.Log(f), math.Log(1-f)
	}
}

// nbMinByte is the smallest |byte| of a feature that counts.
var nbMinByte = int8(math.Ceil(math.Log((0.5+nbMinDev)/(0.5-nbMinDev)) * 127 / nbLogitMax))

// nbCounts is 1 for the table bytes nbScore counts (|byte| >= nbMinByte;
// not -128, whose negation stays negative), else 0.
var nbCounts = func() (c [256]uint8) {
	for b := range 256 {
		if abs8(int8(b)) >= nbMinByte {
			c[b] = 1
		}
	}
	return c
}()

// abs8 is |b| without a branch; abs8(-128) is -128.
func abs8(b int8) int8 {
	m := b >> 7
	return b ^ m - m
}

// nbScore is the chi-square combined spam probability of the features
// whose table bytes are bs (0.5 when nothing is known about them).
func nbScore(bs []int8) float64 {
	var hist [128]int32 // count of features by |byte|
	for _, b := range bs {
		if a := abs8(b); a >= nbMinByte {
			hist[a]++
		}
	}
	// Lowest |byte| that keeps at most nbMaxTokens features (all of the
	// most extreme class, should it alone hold more).
	cut, n := int8(127), int32(0)
	for b := 127; b >= int(nbMinByte); b-- {
		if n > 0 && n+hist[b] > nbMaxTokens {
			break
		}
		n += hist[b]
		cut = int8(b)
	}
	if n == 0 {
		return 0.5
	}
	var lnf, ln1mf float64
	for _, b := range bs {
		if a := abs8(b); a >= cut && a >= nbMinByte {
			lnf += nbLnF[uint8(b)]
			ln1mf += nbLn1mF[uint8(b)]
		}
	}
	s := 1 - chi2Q(-2*ln1mf, 2*int(n))
	h := 1 - chi2Q(-2*lnf, 2*int(n))
	return (s - h + 1) / 2
}

// chi2Q is the probability that a chi-square variable with v (even)
// degrees of freedom exceeds x2.
func chi2Q(x2 float64, v int) float64 {
	m := x2 / 2
	sum := math.Exp(-m)
	term := sum
	for i := 1; i < v/2; i++ {
		term *= m / float64(i)
		sum += term
	}
	return min(sum, 1)
}
