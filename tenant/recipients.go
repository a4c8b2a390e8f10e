package tenant

import (
	"iter"
	"slices"
	"sort"
	"strings"

	"github.com/mxgrid/mxgrid/mailaddr"
)

// Recipients is a domain's set of accepted local parts, lower-cased,
// sorted and packed into one string. A hosting provider's 100,000 domains
// with 100 recipients each are ten million entries: as a map per domain
// they cost about 70 bytes each beyond the text, packed 4. The set is
// immutable, so snapshots share it.
type Recipients struct {
	text string
	// ends[i] is where the i-th local part ends in text.
	ends []uint32
}

// PackRecipients builds the set of locals (lower-cased; duplicates kept
// once). It does not validate them: each source does (config, API, store).
func PackRecipients(locals []string) Recipients {
	if len(locals) == 0 {
		return Recipients{}
	}
	sorted := make([]string, len(locals))
	size := 0
	for i, l := range locals {
		sorted[i] = mailaddr.FoldLocal(l)
		size += len(sorted[i])
	}
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var b strings.Builder
	b.Grow(size)
	ends := make([]uint32, len(sorted))
	for i, l := range sorted {
		b.WriteString(l)
		ends[i] = uint32(b.Len())
	}
	return Recipients{text: b.String(), ends: ends}
}

// Len is the number of local parts.
func (r Recipients) Len() int { return len(r.ends) }

// at is the i-th local part, a substring of the packed text.
func (r Recipients) at(i int) string {
	start := uint32(0)
	if i > 0 {
		start = r.ends[i-1]
	}
	return r.text[start:r.ends[i]]
}

// Has reports whether local, already lower-cased, is in the set.
func (r Recipients) Has(local string) bool {
	i := sort.Search(len(r.ends), func(i int) bool { return r.at(i) >= local })
	return i < len(r.ends) && r.at(i) == local
}

// All yields the local parts in order.
func (r Recipients) All() iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range r.ends {
			if !yield(r.at(i)) {
				return
			}
		}
	}
}
