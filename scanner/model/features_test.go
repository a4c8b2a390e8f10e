package model

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// drainReference is what the extractor returned before its two-level
// bitset: the first maxFeatures distinct indices added, sorted.
func drainReference(bits uint8, hashes []uint64) []uint32 {
	seen := map[uint32]bool{}
	var out []uint32
	for _, h := range hashes {
		i := uint32(mix(h) >> (64 - bits))
		if !seen[i] && len(out) < maxFeatures {
			seen[i] = true
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// TestDrainMatchesReference: the bitsets give the reference's features
// for few and many features, at the smallest and the default table size,
// past the feature cap, and leave the scratch clean for the next message.
func TestDrainMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, bits := range []uint8{minBits, 16, 20} {
		x := NewExtractor(bits, 4)
		for _, n := range []int{0, 1, 5, 300, 1500, 20000, 3 * maxFeatures} {
			hashes := make([]uint64, n)
			for i := range hashes {
				hashes[i] = rng.Uint64()
				if i > 0 && rng.IntN(4) == 0 {
					hashes[i] = hashes[rng.IntN(i)] // repeats
				}
			}
			s := x.pool.Get().(*scratch)
			e := emitter{x: x, s: s}
			for _, h := range hashes {
				e.add(h)
			}
			s.drain()
			if want := drainReference(bits, hashes); !slices.Equal(s.feats, want) {
				t.Fatalf("bits %d, %d hashes: %d features, reference %d", bits, n, len(s.feats), len(want))
			}
			if slices.ContainsFunc(s.seen, func(w uint64) bool { return w != 0 }) ||
				slices.ContainsFunc(s.used, func(w uint64) bool { return w != 0 }) || s.n != 0 {
				t.Fatalf("bits %d, %d hashes: scratch not cleared", bits, n)
			}
			x.pool.Put(s)
		}
	}
}
