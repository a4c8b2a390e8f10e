package scanner

import "testing"

// TopSymbols orders by the size of the score, ties as they came, and
// SymbolNames renders them with two decimals in one allocation: both run
// for every message's log line, tracking record and header.
func TestTopSymbolsAndNames(t *testing.T) {
	v := Verdict{Symbols: []Symbol{
		{Name: "SMALL", Score: 0.1}, {Name: "NEG", Score: -3}, {Name: "TIE_A", Score: 1.5},
		{Name: "BIG", Score: 12.345}, {Name: "TIE_B", Score: -1.5}, {Name: "ZERO", Score: 0},
	}}
	for _, tt := range []struct {
		n    int
		want string
	}{
		{3, "BIG(12.35),NEG(-3.00),TIE_A(1.50)"},
		{8, "BIG(12.35),NEG(-3.00),TIE_A(1.50),TIE_B(-1.50),SMALL(0.10),ZERO(0.00)"},
		{0, ""},
	} {
		if got := SymbolNames(v.TopSymbols(tt.n)); got != tt.want {
			t.Errorf("top %d = %q, want %q", tt.n, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = SymbolNames(v.Symbols) }); n != 1 {
		t.Errorf("SymbolNames allocated %.0f times, want 1", n)
	}
}
