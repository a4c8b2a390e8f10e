package rules

import (
	"slices"
	"strings"
	"unicode"

	"github.com/mxgrid/mxgrid/scanner"
	"golang.org/x/text/width"
)

// Rules about sender identity: who the message claims to be from.
const (
	FromBrandClaim = "FROM_BRAND_CLAIM"
	FromLookalike  = "FROM_LOOKALIKE"
	FromMalformed  = "FROM_MALFORMED"
	FromAbusedTLD  = "FROM_ABUSED_TLD"
	FromNameRcpt   = "FROM_NAME_RCPT_DOMAIN"
)

var identityWeights = map[string]float64{
	FromBrandClaim: 2.5,
	FromLookalike:  3.0,
	FromMalformed:  2.0,
	FromAbusedTLD:  1.0,
	FromNameRcpt:   2.0,
}

func identity(f *findings, env *scanner.Envelope, m *scanner.Message) {
	if m.FromAddr == "" {
		return
	}
	_, domain, _ := strings.Cut(m.FromAddr, "@")
	if malformedDomain(m.FromAddr, domain) {
		f.hit(FromMalformed, m.FromAddr)
		return
	}
	host := strings.TrimSuffix(strings.ToLower(domain), ".")
	org := f.fromOrg.get(host, orgDomain)
	if b := brands.claimedBy(displayed(m.ShownFromName())); b != nil && !b.owns(org) {
		f.hit(FromBrandClaim, b.name+" from "+org)
	}
	if b, why := brands.lookalikeUnder(host, org); b != nil {
		f.hit(FromLookalike, b.name+": "+why)
	}
	if rd := namedRecipientDomain(env, m); rd != "" && orgDomain(rd) != org {
		f.hit(FromNameRcpt, rd+" from "+org)
	}
	if abusedTLD(host) {
		f.hit(FromAbusedTLD, host)
	}
}

// malformedDomain: a From no real mail system writes: a domain without a
// dot (no TLD), an IP literal, "%" routing or a second "@".
func malformedDomain(addr, domain string) bool {
	return !strings.Contains(domain, ".") || strings.HasPrefix(domain, "[") ||
		strings.ContainsAny(addr, "%") || strings.Count(addr, "@") != 1
}

// displayed is a display name as a mail client draws it: format
// characters (zero-width spaces and joiners, soft hyphens, bidi marks)
// take no room and fullwidth letters are the letters, so "Pay\u200bPal"
// and "ＰａｙＰａｌ" read PayPal, and must claim it as "PayPal" does. Text
// after a right-to-left override is drawn backwards, so "\u202elaPyaP"
// reads PayPal too.
func displayed(name string) string {
	if scanner.IsASCII(name) {
		return name
	}
	return width.Fold.String(strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, overridesReversed(name)))
}

// overridesReversed reverses each run of name that a right-to-left
// override (U+202E) starts, up to the pop (U+202C) or the end: the order
// a reader sees its letters in. Nested embeddings are not modelled; the
// trick is one override.
func overridesReversed(name string) string {
	const rlo, pdf = '\u202e', '\u202c'
	if !strings.ContainsRune(name, rlo) {
		return name
	}
	var b strings.Builder
	for {
		before, rest, found := strings.Cut(name, string(rlo))
		b.WriteString(before)
		if !found {
			return b.String()
		}
		run, after, _ := strings.Cut(rest, string(pdf))
		r := []rune(run)
		slices.Reverse(r)
		b.WriteString(string(r))
		name = after
	}
}

// namedRecipientDomain returns the recipient's domain when the From
// display name shows it ("example.com IT Helpdesk", "Webmail
// example.com"), else "". Mailbox-quota and password-expiry phish dress
// as the reader's own organisation this way; the organisation's real
// mail comes from its own domain, and vendors name themselves.
func namedRecipientDomain(env *scanner.Envelope, m *scanner.Message) string {
	if m.FromName == "" {
		return ""
	}
	_, rd, ok := strings.Cut(recipientAddress(env, m), "@")
	if !ok || !strings.Contains(rd, ".") {
		return ""
	}
	if containsAddressWord(strings.ToLower(displayed(m.ShownFromName())), rd) {
		return rd
	}
	return ""
}
