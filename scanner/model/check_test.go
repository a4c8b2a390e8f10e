package model

import (
	"fmt"
	"math"
	"testing"
)

// detail writes what fmt.Sprintf did.
func FuzzDetailMatchesSprintf(f *testing.F) {
	for _, v := range [][2]float64{{2.954, 0.99}, {-2.65, 0.01}, {0, 0}, {math.Copysign(0, -1), 1}, {-0.001, 0.5},
		{math.NaN(), math.NaN()}, {math.Inf(1), math.Inf(-1)}, {math.Inf(-1), 1e300}, {1e300, -1e-300}} {
		f.Add(v[0], v[1])
	}
	f.Fuzz(func(t *testing.T, z, p float64) {
		if got, want := detail(z, p), fmt.Sprintf("margin=%+.2f bayes=%.3f", z, p); got != want {
			t.Fatalf("detail(%v, %v) = %q, Sprintf %q", z, p, got, want)
		}
	})
}
