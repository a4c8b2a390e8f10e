package rules

import (
	"strings"

	"github.com/mxgrid/mxgrid/scanner"
)

// Rules about sender identity: who the message claims to be from.
const (
	FromBrandClaim = "FROM_BRAND_CLAIM"
	FromLookalike  = "FROM_LOOKALIKE"
	FromMalformed  = "FROM_MALFORMED"
)

var identityWeights = map[string]float64{
	FromBrandClaim: 2.5,
	FromLookalike:  3.0,
	FromMalformed:  2.0,
}

func identity(f *findings, _ *scanner.Envelope, m *scanner.Message) {
	if m.FromAddr == "" {
		return
	}
	_, domain, _ := strings.Cut(m.FromAddr, "@")
	if malformedDomain(m.FromAddr, domain) {
		f.hit(FromMalformed, m.FromAddr)
		return
	}
	host := strings.TrimSuffix(strings.ToLower(domain), ".")
	org := orgDomain(host)
	if b := brands.claimedBy(m.FromName); b != nil && !b.owns(org) {
		f.hit(FromBrandClaim, b.name+" from "+org)
	}
	if b, why := brands.lookalikeUnder(host, org); b != nil {
		f.hit(FromLookalike, b.name+": "+why)
	}
}

// malformedDomain: a From no real mail system writes: a domain without a
// dot (no TLD), an IP literal, "%" routing or a second "@".
func malformedDomain(addr, domain string) bool {
	return !strings.Contains(domain, ".") || strings.HasPrefix(domain, "[") ||
		strings.ContainsAny(addr, "%") || strings.Count(addr, "@") != 1
}
