package smtpd

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/mxgrid/mxgrid/scanner"
)

// FuzzTopSymbolNamesMatchesReference: the one-pass pick names the same
// symbols in the same order as sorting them all (TopSymbols), whatever the
// scores (ties, signs, zeros of both signs, infinities, NaN) and n.
func FuzzTopSymbolNamesMatchesReference(f *testing.F) {
	f.Add([]byte{3, 1, 2, 3, 4, 5, 6, 7, 8}, uint8(5))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0}, uint8(5))
	f.Add([]byte{9, 10, 11, 12, 1, 2, 200, 201, 9}, uint8(3))
	f.Add(make([]byte, 40), uint8(17))
	scores := []float64{0, math.Copysign(0, -1), 0.5, -0.5, 1, -1, 2.5, -2.5, 10, -10, math.Inf(1), math.Inf(-1), math.NaN(), 0.01, -7, 7}
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		var v scanner.Verdict
		for i, b := range data {
			v.Symbols = append(v.Symbols, scanner.Symbol{Name: fmt.Sprint("S", i), Score: scores[int(b)%len(scores)]})
		}
		k := int(n % 24)
		got := topSymbolNames(v, k)
		want := symbolNames(v.TopSymbols(k))
		if !slices.Equal(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("topSymbolNames(%v, %d) = %q, want %q", v.Symbols, k, got, want)
		}
	})
}

// BenchmarkTopSymbolNames: a tracking record's symbols from a verdict of
// twenty.
func BenchmarkTopSymbolNames(b *testing.B) {
	var v scanner.Verdict
	for i := range 20 {
		v.Symbols = append(v.Symbols, scanner.Symbol{Name: fmt.Sprint("SYMBOL_", i), Score: float64((i*7)%11) / 4})
	}
	for b.Loop() {
		topSymbolNames(v, 5)
	}
}
