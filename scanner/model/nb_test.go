package model

import (
	"math"
	"testing"
)

func TestNaiveBayes(t *testing.T) {
	if q := chi2Q(0, 4); q != 1 {
		t.Errorf("chi2Q(0, 4) = %v, want 1", q)
	}
	if q := chi2Q(2, 2); math.Abs(q-math.Exp(-1)) > 1e-12 {
		t.Errorf("chi2Q(2, 2) = %v, want e^-1", q)
	}
	// Buckets 0-9 were in 10 spam and no ham, 10-19 the other way round,
	// 20 in a single spam (under the count floor), 21 in both alike.
	cs, ch := make([]uint32, 32), make([]uint32, 32)
	for i := range 10 {
		cs[i], ch[10+i] = 10, 10
	}
	cs[20], cs[21], ch[21] = 1, 5, 25
	tab := nbTable(cs, ch, 10, 50)
	if tab[20] != 0 || tab[21] != 0 || tab[0] <= 0 || tab[10] >= 0 {
		t.Fatalf("table %v", tab)
	}
	tests := []struct {
		feats  []uint32
		lo, hi float64
	}{
		{nil, 0.5, 0.5},
		{[]uint32{20, 21, 30}, 0.5, 0.5}, // nothing known counts
		{[]uint32{0, 1, 2, 3}, 0.99, 1},
		{[]uint32{10, 11, 12, 13}, 0, 0.01},
		{[]uint32{0, 1, 10, 11}, 0.3, 0.7}, // evidence both ways: unsure
	}
	// More saturated spam features than nbMaxTokens still count.
	big := make([]int8, 400)
	var many []uint32
	for i := range big {
		big[i] = 127
		many = append(many, uint32(i))
	}
	if p := nbScore(big, many); p < 0.99 {
		t.Errorf("nbScore of %d saturated spam features = %v", len(many), p)
	}
	for _, tt := range tests {
		if p := nbScore(tab, tt.feats); p < tt.lo || p > tt.hi {
			t.Errorf("nbScore(%v) = %v, want in [%v, %v]", tt.feats, p, tt.lo, tt.hi)
		}
	}
}
