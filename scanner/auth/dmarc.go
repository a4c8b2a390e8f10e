package auth

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"

	"github.com/mxgrid/mxgrid/scanner"
)

// dmarcResult is the DMARC evaluation: the outcome for the header, and the
// disposition the domain asks for (none, quarantine, reject) when it fails.
type dmarcResult struct {
	outcome
	fromDomain  string
	disposition string
}

// maxAuthorDomains bounds the From domains evaluated per message: each
// costs up to two TXT lookups, and a From field can list thousands.
// Real mail with several authors names one or two domains.
const maxAuthorDomains = 10

// maxParsedFromAddresses bounds the addresses of a From field given to
// net/mail's parser, at about 250 bytes allocated each (and each at most
// scanner.MaxAddressBytes long); those of the shapes simpleFromDomain
// reads cost nothing. Real mail lists one or two authors.
const maxParsedFromAddresses = 100

// authorPolicy is the DMARC record of one author domain: at the domain,
// or (atOrg) at its organizational domain.
type authorPolicy struct {
	from  string
	rec   *dmarc.Record
	atOrg bool
	err   error
}

// lookupPolicies starts looking up the record of every author domain of
// msg, each on a goroutine of wg unless its answers are cached
// (tryCached): the records are read once wg is done.
// They are looked up from the start of the check, alongside SPF and DKIM,
// and each domain apart: after them, a sender whose own name servers
// answer slowly spent the check's deadline on its SPF (or on the first of
// the From domains) and the spoofed domain's policy lookup was abandoned,
// DMARC temperror instead of a p=reject failure.
func (c *Check) lookupPolicies(ctx context.Context, msg *scanner.Message, wg *sync.WaitGroup) ([]authorPolicy, error) {
	froms, err := fromDomains(msg)
	policies := make([]authorPolicy, len(froms))
	for i, from := range froms {
		tryCached(ctx, wg, &policies[i], func(ctx context.Context) authorPolicy { return c.lookupPolicy(ctx, from) })
	}
	return policies, err
}

// errMultipleRecords is a domain publishing more than one DMARC record:
// RFC 7489 6.6.3 ends policy discovery there and applies no DMARC, without
// asking the organizational domain. The library would take the first
// record, a policy its owner may never have meant to be the one in force.
var errMultipleRecords = fmt.Errorf("%w: more than one DMARC record", dmarc.ErrNoPolicy)

// lookupPolicy finds from's record, falling back to the organizational
// domain's (RFC 7489 6.6.3).
func (c *Check) lookupPolicy(ctx context.Context, from string) authorPolicy {
	p := authorPolicy{from: from}
	p.rec, p.err = c.lookupRecord(ctx, from)
	if errors.Is(p.err, errMultipleRecords) || !errors.Is(p.err, dmarc.ErrNoPolicy) {
		return p
	}
	if org := orgDomain(from); org != from {
		// No record at the author domain: the organizational domain's,
		// whose sp= then applies.
		p.rec, p.err = c.lookupRecord(ctx, org)
		p.atOrg = true
	}
	return p
}

// lookupRecord is domain's one DMARC record.
func (c *Check) lookupRecord(ctx context.Context, domain string) (*dmarc.Record, error) {
	multiple := false
	lookup := &dmarc.LookupOptions{LookupTXT: func(name string) ([]string, error) {
		txts, err := c.res.LookupTXT(ctx, name)
		for i, txt := range txts {
			txts[i] = canonicalVersion(txt)
		}
		records := dmarcRecords(txts)
		if multiple = len(records) > 1; multiple {
			return nil, err
		}
		// Only that one record is repaired, tag by tag: the library skips
		// every other string, repaired or not, and the sender's DNS
		// chooses how many there are.
		for i, txt := range records {
			records[i] = lenientRecord(txt)
		}
		return records, err
	}}
	rec, err := dmarc.LookupWithOptions(domain, lookup)
	if multiple {
		return nil, errMultipleRecords
	}
	return rec, err
}

// canonicalVersion writes the version tag of a DMARC record as the
// library looks for it, "v=DMARC1" at the very start: RFC 7489 6.4 allows
// white space around its '=' (and its tag name in any case), and
// OpenDMARC white space before it, where the library discarded such a
// record and a spoofed p=reject domain had no DMARC. The value stays
// DMARC1 in upper case, as the ABNF spells it byte by byte.
func canonicalVersion(txt string) string {
	if strings.HasPrefix(txt, "v=DMARC1") {
		return txt
	}
	rest := strings.TrimLeft(txt, " \t")
	if rest == "" || rest[0] != 'v' && rest[0] != 'V' {
		return txt
	}
	rest, ok := strings.CutPrefix(strings.TrimLeft(rest[1:], " \t"), "=")
	if !ok {
		return txt
	}
	if rest, ok = strings.CutPrefix(strings.TrimLeft(rest, " \t"), "DMARC1"); !ok {
		return txt
	}
	return "v=DMARC1" + rest
}

// lenientRecord is txt with the tags go-msgauth refuses left out, but v=
// and p=: RFC 7489 6.3 has a receiver discard syntax errors in the other
// tags in favour of their defaults ("adkim=relaxed" is adkim=r, a bad
// pct= is 100), where the library refused the whole record, so mail
// spoofing a p=reject domain whose owner mistyped another tag was
// dmarc=permerror and passed. A record whose p= is no policy stays broken,
// and so does one of more than maxLenientTags tags (RFC 7489 defines 11):
// each tag is parsed on its own, and a sender's own record of 32,000 tags
// cost 15 ms a From domain.
//
// Tag names and the keywords of the keyword tags are read in any case, as
// RFC 7489 6.4's ABNF (quoted strings, case-insensitive by RFC 5234 2.3)
// and OpenDMARC read them; the library knew "p=reject" only in lower case,
// and mail spoofing a domain whose record said "p=Reject" was
// dmarc=permerror, let through. A record the library parses is read tag
// by tag too when it holds a capital letter: "SP=reject" beside "p=none"
// was an unknown tag, ignored. The version stays DMARC1, in upper case,
// as the ABNF spells it byte by byte.
func lenientRecord(txt string) string {
	if !strings.HasPrefix(txt, "v=") || strings.Count(txt, ";") >= maxLenientTags {
		return txt
	}
	if _, err := dmarc.Parse(txt); err == nil && !hasUpperASCII(strings.TrimPrefix(txt, "v=DMARC1")) {
		return txt
	}
	var kept []string
	for tag := range strings.SplitSeq(txt, ";") {
		name, value, hasValue := strings.Cut(tag, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if hasValue {
			if keywordTags[name] {
				value = strings.ToLower(value)
			}
			tag = name + "=" + value
		}
		if name == "v" || name == "p" {
			kept = append(kept, tag)
		} else if _, err := dmarc.Parse("v=DMARC1; p=none;" + tag); err == nil && name != "" {
			kept = append(kept, tag)
		}
	}
	return strings.Join(kept, ";")
}

// hasUpperASCII reports a capital letter in s: most records have none,
// and take the library's one parse.
func hasUpperASCII(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' }) >= 0
}

// keywordTags are the DMARC tags whose values are keywords (RFC 7489
// 6.4), not URIs or numbers.
var keywordTags = map[string]bool{"p": true, "sp": true, "adkim": true, "aspf": true, "fo": true, "rf": true}

const maxLenientTags = 32

// dmarcRecords returns the strings of txts the library reads as a DMARC
// record (RFC 7489 6.6.3 step 2 discards the rest), by its own test so
// that these and the record it picks agree; lenientRecord keeps every v=
// tag, so it makes no other string one. Most domains publish one TXT
// string at _dmarc, which needs no test.
func dmarcRecords(txts []string) []string {
	if len(txts) < 2 {
		return txts
	}
	var records []string
	for _, txt := range txts {
		one := &dmarc.LookupOptions{LookupTXT: func(string) ([]string, error) { return []string{txt}, nil }}
		if _, err := dmarc.LookupWithOptions("", one); !errors.Is(err, dmarc.ErrNoPolicy) {
			records = append(records, txt)
		}
	}
	return records
}

// evaluateDMARC implements RFC 7489 section 6.6 over the author domains'
// policies (lookupPolicies, fromErr its error): pass when SPF or DKIM
// passed for an identifier aligned with a domain. A From listing several
// domains, or several From fields, is judged by the worst of its domains
// (RFC 7489 6.6.1: the strictest policy among those that fail): a
// recipient sees them all, and answering permerror let "From:
// ceo@bank.example, x@own.example" escape the bank's p=reject.
func evaluateDMARC(policies []authorPolicy, fromErr error, spfRes *spfResult, dkims []dkimResult) dmarcResult {
	var worst dmarcResult
	if fromErr != nil {
		worst.method = "dmarc"
		worst.result, worst.symbol, worst.reason = "permerror", "DMARC_PERMERROR", fromErr.Error()
	}
	// Past maxAuthorDomains the first ones are still judged: a failure
	// among them outweighs the permerror, or "ceo@bank.example" followed
	// by ten other domains escaped the bank's p=reject.
	for i, p := range policies {
		r := evaluateDomain(p, spfRes, dkims)
		if (i == 0 && fromErr == nil) || r.severity() > worst.severity() {
			worst = r
		}
	}
	return worst
}

// severity orders results for a message with several author domains:
// a failure under the strictest policy first; one that could not be
// checked above one that passed.
func (r *dmarcResult) severity() int {
	switch r.result {
	case "fail":
		return 4 + slices.Index([]string{string(dmarc.PolicyNone), string(dmarc.PolicyQuarantine), string(dmarc.PolicyReject)}, r.disposition)
	case "temperror":
		return 3
	case "permerror":
		return 2
	case "none":
		return 1
	}
	return 0
}

// evaluateDomain is the DMARC evaluation for one author domain.
func evaluateDomain(p authorPolicy, spfRes *spfResult, dkims []dkimResult) dmarcResult {
	from, rec, err := p.from, p.rec, p.err
	r := dmarcResult{}
	r.method = "dmarc"
	r.fromDomain = from
	r.detail = from
	r.props[0] = prop{"header.from", from}

	switch {
	case errors.Is(err, errMultipleRecords):
		r.result, r.symbol, r.reason = "none", "DMARC_NONE", "more than one DMARC record"
		return r
	case errors.Is(err, dmarc.ErrNoPolicy):
		r.result, r.symbol = "none", "DMARC_NONE"
		return r
	case dmarc.IsTempFail(err):
		r.result, r.symbol, r.reason = "temperror", "DMARC_TEMPERROR", err.Error()
		return r
	case err != nil:
		r.result, r.symbol, r.reason = "permerror", "DMARC_PERMERROR", err.Error()
		return r
	}

	if aligned(spfAuthenticated(spfRes), from, rec.SPFAlignment) || dkimAligned(dkims, from, rec.DKIMAlignment) {
		r.result, r.symbol = "pass", "DMARC_PASS"
		r.reason = passReason(rec.Policy)
		return r
	}
	if r.temporary(spfRes, dkims, from, rec) {
		return r
	}
	policy := rec.Policy
	if p.atOrg && rec.SubdomainPolicy != "" {
		policy = rec.SubdomainPolicy
	}
	disposition := string(policy)
	// RFC 7489 6.6.4: pct= applies the policy to that share of failing
	// mail; the rest gets the next milder treatment.
	if rec.Percent != nil && *rec.Percent < 100 && rand.IntN(100) >= *rec.Percent {
		switch policy {
		case dmarc.PolicyReject:
			disposition = string(dmarc.PolicyQuarantine)
		case dmarc.PolicyQuarantine:
			disposition = string(dmarc.PolicyNone)
		}
	}
	r.result = "fail"
	r.disposition = disposition
	r.symbol = symbolName("DMARC_FAIL_", disposition)
	r.reason = fmt.Sprintf("p=%s dis=%s", policy, disposition)
	return r
}

// temporary makes r a temperror when nothing aligned passed but an aligned
// identifier's check could not finish (SPF or a DKIM key lookup in
// temperror): it might have passed, and failing would apply the domain's
// policy, a permanent 550 under p=reject, to mail that a retry could
// authenticate (DMARCbis: no pass and an aligned temperror is temperror).
func (r *dmarcResult) temporary(spfRes *spfResult, dkims []dkimResult, from string, rec *dmarc.Record) bool {
	why := ""
	if spfRes != nil && spfRes.result == "temperror" && aligned(spfRes.domain, from, rec.SPFAlignment) {
		why = "SPF for " + spfRes.domain
	}
	for _, d := range dkims {
		if why == "" && d.result == "temperror" && aligned(d.domain, from, rec.DKIMAlignment) {
			why = "DKIM for " + d.domain
		}
	}
	if why == "" {
		return false
	}
	r.result, r.symbol, r.reason = "temperror", "DMARC_TEMPERROR", "no aligned pass, and "+why+" could not be checked"
	return true
}

// passReason is "p=" and the policy, the comment on a pass, not built per
// message for the policies there are.
func passReason(p dmarc.Policy) string {
	switch p {
	case dmarc.PolicyNone:
		return "p=none"
	case dmarc.PolicyQuarantine:
		return "p=quarantine"
	case dmarc.PolicyReject:
		return "p=reject"
	}
	return "p=" + string(p)
}

// spfAuthenticated is the domain SPF authenticated, "" unless it passed.
func spfAuthenticated(r *spfResult) string {
	if r == nil || r.result != "pass" {
		return ""
	}
	return r.domain
}

func dkimAligned(dkims []dkimResult, from string, mode dmarc.AlignmentMode) bool {
	for _, d := range dkims {
		if d.verified() && aligned(d.domain, from, mode) {
			return true
		}
	}
	return false
}

// aligned implements identifier alignment (RFC 7489 3.1): strict needs the
// same domain, relaxed the same organizational domain. Relaxed is the
// default when the record does not say.
func aligned(authenticated, from string, mode dmarc.AlignmentMode) bool {
	if authenticated == "" {
		return false
	}
	a := strings.ToLower(strings.TrimSuffix(authenticated, "."))
	if a == from {
		return true
	}
	return mode != dmarc.AlignmentStrict && orgDomain(a) == orgDomain(from)
}

// orgDomain is the organizational domain (RFC 7489 3.2): one label below
// the public suffix. A name that is itself a public suffix is its own.
func orgDomain(domain string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain
	}
	return org
}

// errTooManyAuthors: the From fields name more than maxAuthorDomains
// domains; fromDomains returns the first ones with it.
var errTooManyAuthors = fmt.Errorf("From names more than %d domains", maxAuthorDomains)

// fromDomains returns the author domains, lower-case, each once: those of
// every address in every From field (RFC 5322 allows one; a second is
// shown by some MUAs all the same). With an error, the domains returned
// (if any) are the first maxAuthorDomains, to be judged all the same.
func fromDomains(msg *scanner.Message) ([]string, error) {
	if msg == nil {
		return nil, errors.New("no message")
	}
	values := msg.Header.Values("From")
	if len(values) == 0 {
		return nil, errors.New("no From field")
	}
	var domains []string
	// add keeps domain once; past maxAuthorDomains the list (a From can
	// hold tens of thousands of addresses) is not read further, and the
	// first maxAuthorDomains are returned with errTooManyAuthors.
	add := func(domain string) error {
		domain = aLabels(domain)
		if !slices.Contains(domains, domain) {
			domains = append(domains, domain)
		}
		if len(domains) > maxAuthorDomains {
			domains = domains[:maxAuthorDomains]
			return errTooManyAuthors
		}
		return nil
	}
	for _, v := range values {
		if d, ok := simpleFromDomain(v); ok {
			if err := add(d); err != nil {
				return domains, err
			}
			continue
		}
		// Address by address, up to the bounds: parsed whole, a list of
		// 75,000 addresses cost 15 MB before the eleventh domain.
		var parseErr error
		parsed := 0
		for elem := range scanner.AddressListElements(v) {
			d, ok := simpleFromDomain(elem)
			if !ok {
				if parsed++; parsed > maxParsedFromAddresses || len(elem) > scanner.MaxAddressBytes {
					parseErr = fmt.Errorf("more than %d addresses or one of more than %d bytes", maxParsedFromAddresses, scanner.MaxAddressBytes)
					break
				}
				a, err := mail.ParseAddress(elem)
				if err != nil {
					parseErr = err
					break
				}
				_, d, ok = strings.Cut(a.Address, "@")
				if d = strings.TrimSuffix(d, "."); !ok || d == "" {
					return nil, fmt.Errorf("From address %q has no domain", a.Address)
				}
			}
			if err := add(d); err != nil {
				return domains, err
			}
		}
		if parseErr == nil {
			continue
		}
		// Mail readers still show a From the parser refuses, making of
		// it what they can: answering permerror (no policy) let "CEO
		// <ceo@bank.example" or "ceo@bank.example <x@own.example>"
		// escape the bank's p=reject. Every domain after an '@' is
		// judged, those of the addresses read before included; so is a
		// list longer than the parser is given.
		found := false
		for d := range domainsAfterAt(v) {
			found = true
			if err := add(d); err != nil {
				return domains, err
			}
		}
		if !found {
			return nil, fmt.Errorf("unparsable From: %w", parseErr)
		}
	}
	if len(domains) == 0 {
		return nil, errors.New("no From address")
	}
	return domains, nil
}

// aLabels is domain as DNS and DKIM's d= name it: lower-case, and an
// internationalized name in A-labels (RFC 5891), as mail readers show and
// registries hold it. Left in UTF-8, "ceo@bänk.example" had its policy
// looked up at a name that cannot exist and got DMARC none, escaping
// xn--bnk-sna.example's p=reject; "ceo@ｅｘａｍｐｌｅ.org" in
// full-width letters, example.org's. A name that is no valid IDN is kept:
// no one can hold a policy for it.
func aLabels(domain string) string {
	for i := 0; i < len(domain); i++ {
		if domain[i] >= utf8.RuneSelf {
			if a, err := idna.Lookup.ToASCII(domain); err == nil {
				return a
			}
			break
		}
	}
	return strings.ToLower(domain)
}

// domainsAfterAt yields the names that follow an '@' in v, each as
// written (namesAfterAt) and as RFC 5322 reads a domain (readDomain):
// comments and white space may come before it and around its dots
// (3.4.1, obs-domain 4.4). net/mail refuses "ceo@(x)bank.example" and
// "ceo@bank. example", and read only as written they named no domain, or
// "bank.": a spoofed p=reject domain was dmarc=permerror. The names after
// an '@' in the comments read past are yielded too, as written, so every
// byte of v is read at most twice.
func domainsAfterAt(v string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for rest := v; ; {
			at := strings.IndexByte(rest, '@')
			if at < 0 {
				return
			}
			d, next := readDomain(strings.TrimPrefix(skipCFWS(rest[at+1:]), "["))
			if d = strings.TrimSuffix(d, "."); strings.Contains(d, ".") && !yield(d) {
				return
			}
			for d := range namesAfterAt(rest[at : len(rest)-len(next)]) {
				if !yield(d) {
					return
				}
			}
			rest = next
		}
	}
}

// namesAfterAt yields the names that follow an '@' in v (a domain
// literal's brackets dropped), up to the first character no domain holds;
// those without a dot are left out.
func namesAfterAt(v string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for rest := v; ; {
			_, after, found := strings.Cut(rest, "@")
			if !found {
				return
			}
			after = strings.TrimPrefix(after, "[")
			end := strings.IndexAny(after, " \t\r\n<>()[],;:\"\\@")
			if end < 0 {
				end = len(after)
			}
			if d := strings.TrimSuffix(after[:end], "."); strings.Contains(d, ".") && !yield(d) {
				return
			}
			rest = after[end:]
		}
	}
}

// readDomain reads the domain at the start of s, its labels up to the
// first character no domain holds, the dots between them perhaps
// surrounded by comments and white space; it returns the name, without
// those, and what follows it. A name written whole is a part of s.
func readDomain(s string) (name, rest string) {
	var b []byte // the name, once comments or blanks split it; nil while it is s[:n]
	n := 0
	rest = s
	for {
		end := strings.IndexAny(rest, " \t\r\n<>()[],;:\"\\@.")
		if end < 0 {
			end = len(rest)
		}
		label, after := rest[:end], rest[end:]
		next := skipCFWS(after)
		dot := strings.HasPrefix(next, ".")
		if dot {
			next = skipCFWS(next[1:])
		}
		switch {
		case b == nil && len(s)-len(rest) == n && !dot:
			n += end
		case b == nil && len(s)-len(rest) == n && strings.HasPrefix(after, "."):
			n += end + 1
			if len(next) != len(after)-1 {
				b = []byte(s[:n])
			}
		default:
			if b == nil {
				b = []byte(s[:n])
			}
			b = append(b, label...)
			if dot {
				b = append(b, '.')
			}
		}
		rest = next
		if !dot {
			break
		}
	}
	if b == nil {
		return s[:n], rest
	}
	return string(b), rest
}

// simpleFromDomain returns the domain of a From value in the shapes
// nearly all mail uses (scanner.SimpleAddress), for which net/mail's
// parser (mail.ParseAddressList) cannot but find that one address; it
// answers !ok for anything else, for the parser to judge.
func simpleFromDomain(v string) (domain string, ok bool) {
	_, addr, ok := scanner.SimpleAddress(v)
	if !ok {
		return "", false
	}
	_, domain, _ = strings.Cut(addr, "@")
	return domain, true
}
