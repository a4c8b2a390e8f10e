package tenant

import (
	"slices"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/mailaddr"
)

func TestPackRecipients(t *testing.T) {
	for _, tc := range []struct {
		in       []string
		has, not []string
		all      []string
	}{
		{in: nil, not: []string{"", "a"}},
		{in: []string{"Bob", "alice", "bob", "ALICE"}, has: []string{"alice", "bob"}, not: []string{"Bob", "b", "alicex", ""}, all: []string{"alice", "bob"}},
		{in: []string{"a", "ab", "abc", "b"}, has: []string{"a", "ab", "abc", "b"}, not: []string{"abcd", "aa", "c"}, all: []string{"a", "ab", "abc", "b"}},
		{in: []string{"", "x"}, has: []string{"", "x"}, all: []string{"", "x"}},
	} {
		r := PackRecipients(tc.in)
		for _, l := range tc.has {
			if !r.Has(l) {
				t.Errorf("PackRecipients(%q).Has(%q) = false", tc.in, l)
			}
		}
		for _, l := range tc.not {
			if r.Has(l) {
				t.Errorf("PackRecipients(%q).Has(%q) = true", tc.in, l)
			}
		}
		if got := slices.Collect(r.All()); !slices.Equal(got, tc.all) || r.Len() != len(tc.all) {
			t.Errorf("PackRecipients(%q) = %q (len %d), want %q", tc.in, got, r.Len(), tc.all)
		}
	}
}

// FuzzPackRecipients: the packed set answers like a map of the local parts
// as mailaddr.FoldLocal folds them, for any bytes.
func FuzzPackRecipients(f *testing.F) {
	f.Add("alice,Bob,carol", "bob")
	f.Add("a,,ab", "")
	f.Add("ÄÖ,äö", "äö")
	f.Fuzz(func(t *testing.T, list, probe string) {
		locals := strings.Split(list, ",")
		want := map[string]bool{}
		for _, l := range locals {
			want[mailaddr.FoldLocal(l)] = true
		}
		r := PackRecipients(locals)
		if r.Len() != len(want) {
			t.Fatalf("Len %d, want %d", r.Len(), len(want))
		}
		for l := range want {
			if !r.Has(l) {
				t.Fatalf("%q missing", l)
			}
		}
		if r.Has(probe) != want[probe] {
			t.Fatalf("Has(%q) = %v, want %v", probe, r.Has(probe), want[probe])
		}
	})
}
