package model

import (
	"bytes"
	"math"
	"slices"
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
	if p := nbScore(tableBytes(big, many)); p < 0.99 {
		t.Errorf("nbScore of %d saturated spam features = %v", len(many), p)
	}
	for _, tt := range tests {
		if p := nbScore(tableBytes(tab, tt.feats)); p < tt.lo || p > tt.hi {
			t.Errorf("nbScore(%v) = %v, want in [%v, %v]", tt.feats, p, tt.lo, tt.hi)
		}
	}
}

func tableBytes(t []int8, feats []uint32) []int8 {
	bs := make([]int8, len(feats))
	for k, i := range feats {
		bs[k] = t[i]
	}
	return bs
}

// nbScoreReference is nbScore as it was written first, reading the table
// twice per feature: the oracle for the one-pass version.
func nbScoreReference(t []int8, feats []uint32) float64 {
	var hist [128]int32
	for _, i := range feats {
		b := t[i]
		if b < 0 {
			b = -b
		}
		if b >= nbMinByte {
			hist[b]++
		}
	}
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
	for _, i := range feats {
		b := t[i]
		a := b
		if a < 0 {
			a = -a
		}
		if a >= cut && a >= nbMinByte {
			lnf += nbLnF[uint8(b)]
			ln1mf += nbLn1mF[uint8(b)]
		}
	}
	s := 1 - chi2Q(-2*ln1mf, 2*int(n))
	h := 1 - chi2Q(-2*lnf, 2*int(n))
	return (s - h + 1) / 2
}

// FuzzNBScoreMatchesReference: any table (including -128, which no
// training writes) and any features give bit for bit the reference's
// probability, from all the features' bytes or only those Judge keeps.
func FuzzNBScoreMatchesReference(f *testing.F) {
	f.Add([]byte{127, 129, 0, 5, 200, 128}, []byte{0, 1, 2, 3, 4, 5, 5})
	f.Add(bytes.Repeat([]byte{120}, 300), bytes.Repeat([]byte{7, 9}, 200))
	f.Fuzz(func(t *testing.T, table, picks []byte) {
		if len(table) == 0 {
			return
		}
		tab := make([]int8, len(table))
		for i, b := range table {
			tab[i] = int8(b)
		}
		feats := make([]uint32, len(picks))
		for i, p := range picks {
			feats[i] = uint32(int(p) % len(tab))
		}
		want := nbScoreReference(tab, feats)
		all := tableBytes(tab, feats)
		counted := slices.DeleteFunc(slices.Clone(all), func(b int8) bool { return nbCounts[uint8(b)] == 0 })
		for _, bs := range [][]int8{all, counted} {
			if got := nbScore(bs); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("nbScore %v, reference %v", got, want)
			}
		}
	})
}
