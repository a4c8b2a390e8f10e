// Package tenant answers, on the SMTP hot path, "do we take mail for this
// domain and recipient, and where does it go?" from an in-memory snapshot
// swapped atomically, so lookups never wait for a database. It also holds
// the tenant data the snapshot is built from (resellers, customers, domain
// records, policies) and their validation; changing that data, with its
// authorization and audit, is package admin's.
package tenant

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/net/idna"

	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/netguard"
)

// Policy is a domain's filtering policy. It is set at each level of the
// hierarchy (reseller, customer, domain); a nil field (or nil list) inherits
// from the level above, and at the top from the node's defaults in the
// `scanner:` and `smtp:` sections.
type Policy struct {
	TagScore    *float64 `yaml:"tag_score" json:"tag_score,omitempty"`
	RejectScore *float64 `yaml:"reject_score" json:"reject_score,omitempty"`
	SubjectTag  *string  `yaml:"subject_tag" json:"subject_tag,omitempty"`
	// VirusAction is VirusReject (554 at DATA) or VirusTag (deliver with
	// headers, for customers who quarantine themselves).
	VirusAction *string `yaml:"virus_action" json:"virus_action,omitempty"`
	// TagAction is what happens to mail between the tag and reject scores:
	// TagDeliver (delivered with a subject tag and X-Spam headers, the
	// default) or TagQuarantine (kept in the quarantine, not delivered).
	TagAction *string `yaml:"tag_action" json:"tag_action,omitempty"`
	// DMARCEnforce applies the sender domain's published p=reject/quarantine.
	DMARCEnforce *bool `yaml:"dmarc_enforce" json:"dmarc_enforce,omitempty"`
	// MaxMessageSize in bytes; it can only lower the node's smtp.max_message_bytes.
	MaxMessageSize *int64 `yaml:"max_message_size" json:"max_message_size,omitempty"`
	// Sender lists hold addresses ("a@b.example") or whole domains
	// ("b.example"); IP lists hold addresses or CIDR prefixes.
	SenderAllow []string `yaml:"sender_allow" json:"sender_allow,omitempty"`
	SenderBlock []string `yaml:"sender_block" json:"sender_block,omitempty"`
	IPAllow     []string `yaml:"ip_allow" json:"ip_allow,omitempty"`
	IPBlock     []string `yaml:"ip_block" json:"ip_block,omitempty"`
}

// Lists are a policy's address lists, parsed.
type Lists struct {
	// IPAllow and IPBlock hold prefixes; an address is a full-length one.
	IPAllow, IPBlock []netip.Prefix
	// SenderAllow and SenderBlock hold lower-cased addresses and domains,
	// domains as A-labels.
	SenderAllow, SenderBlock []string
}

// lists parses p's lists. Entries were validated when the policy was
// saved; one that does not parse (or an address with a zone, which no
// client address carries) matches nothing rather than everything.
func (p Policy) lists() Lists {
	return Lists{
		IPAllow: parseIPs(p.IPAllow), IPBlock: parseIPs(p.IPBlock),
		SenderAllow: parseSenders(p.SenderAllow), SenderBlock: parseSenders(p.SenderBlock),
	}
}

func parseIPs(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, e := range list {
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, netguard.Unmapped(p))
		} else if a, err := netip.ParseAddr(e); err == nil && a.Zone() == "" {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// parseSenders lower-cases the entries and writes their domains as
// A-labels, the form a sender's domain is compared in (smtpd): written as
// typed, "bücher.example" let xn--bcher-kva.example through, and an
// A-label let the same domain through in UTF-8.
func parseSenders(list []string) []string {
	var out []string
	for _, e := range list {
		e = strings.ToLower(strings.TrimSpace(e))
		at := strings.LastIndexByte(e, '@')
		if d, err := NormalizeDomain(e[at+1:]); err == nil {
			e = e[:at+1] + d
		}
		out = append(out, e)
	}
	return out
}

// Domain is one provisioned domain as the SMTP session needs it. Domains
// are built by newDomain (StaticDomain.Build, Resolve, the snapshot file).
type Domain struct {
	Name string
	// ID is the stored domain's id (0 for config domains): tenant data
	// (statistics, history) keys on it, so a name deleted by one reseller
	// and re-created by another starts with none of the old owner's data.
	ID int64
	// CustomerID is the tenant the domain belongs to (0 for config
	// domains, the operator's): one transaction never mixes tenants.
	CustomerID int64
	// Route is where the domain's mail goes unless Routes sends a
	// recipient elsewhere; RouteFor decides.
	Route Route
	// Routes holds per-recipient rules (co-existence); nil when there are
	// none.
	Routes *RouteTable
	// Recipients holds lower-cased local parts; empty accepts any.
	Recipients Recipients
	// Policy is the effective policy: the domain's over its customer's
	// over its reseller's.
	Policy Policy
	// Lists are Policy's sender and IP lists, parsed when the domain was
	// built (once per snapshot), for the checks at RCPT and DATA.
	Lists Lists
	// Source says where the domain was defined ("config" or "store"),
	// for logs and the API.
	Source string
}

// AcceptsRecipient reports whether local (the part before @) is known.
// postmaster always is: RFC 5321 §4.5.1 says every domain that takes mail
// takes it, so it goes to the customer's server, whose answer is final,
// even when a list of recipients leaves it out.
func (d *Domain) AcceptsRecipient(local string) bool {
	if d.Recipients.Len() == 0 || mailaddr.IsPostmaster(local) {
		return true
	}
	return d.Recipients.Has(mailaddr.FoldLocal(local))
}

// Snapshot is an immutable view of every domain.
type Snapshot struct {
	Version uint64
	domains map[string]*Domain
	// unservable are the stored domains whose record could not be built
	// (damaged, or refused by the checks the API makes): provisioned, so
	// their mail must be deferred, not refused as no one's.
	unservable map[string]unservable
}

// unservable is a stored domain left out of a snapshot, and why.
type unservable struct {
	id     int64
	reason string
}

// NewSnapshot indexes domains by normalised name. A later duplicate is an
// error: one domain has one route.
func NewSnapshot(version uint64, domains []*Domain) (*Snapshot, error) {
	s := &Snapshot{Version: version, domains: make(map[string]*Domain, len(domains))}
	for _, d := range domains {
		name, err := NormalizeDomain(d.Name)
		if err != nil {
			return nil, err
		}
		if _, dup := s.domains[name]; dup {
			return nil, fmt.Errorf("domain %s is defined twice", name)
		}
		s.domains[name] = d
	}
	return s, nil
}

// Len is the number of domains.
func (s *Snapshot) Len() int { return len(s.domains) }

// All yields every domain served, in no particular order.
func (s *Snapshot) All() iter.Seq[*Domain] { return maps.Values(s.domains) }

// Directory serves lookups from the current snapshot.
type Directory struct {
	cur atomic.Pointer[Snapshot]
	// unconfirmed is set by the Syncer while the store has not confirmed
	// the snapshot lately: a name missing from it may have been
	// provisioned since.
	unconfirmed atomic.Bool
}

// NewDirectory starts with snap.
func NewDirectory(snap *Snapshot) *Directory {
	d := &Directory{}
	d.cur.Store(snap)
	return d
}

// Swap replaces the snapshot; lookups in flight finish on the old one.
func (d *Directory) Swap(snap *Snapshot) { d.cur.Store(snap) }

// Snapshot returns the current snapshot.
func (d *Directory) Snapshot() *Snapshot { return d.cur.Load() }

// Partial reports whether the snapshot may lack domains the store holds:
// the store's domains were never loaded, or the store has not confirmed
// them for longer than the syncer's stale limit (a snapshot file from
// yesterday, the store unreachable from this node while another node's API
// adds domains). A domain it does not find may exist, so the sender must be
// told to try again (4xx), never that the domain is not ours (5xx).
func (d *Directory) Partial() bool { return d.unconfirmed.Load() }

// Lookup finds the domain for name (any case, Unicode or punycode).
func (d *Directory) Lookup(name string) (*Domain, bool) {
	n, err := NormalizeDomain(name)
	if err != nil {
		return nil, false
	}
	dom, ok := d.cur.Load().domains[n]
	return dom, ok
}

// Unservable reports whether name is a stored domain whose record could
// not be built, and why: its mail is the customer's, held up by data an
// operator must repair, so a sender is told to try again.
func (d *Directory) Unservable(name string) (string, bool) {
	n, err := NormalizeDomain(name)
	if err != nil {
		return "", false
	}
	u, ok := d.cur.Load().unservable[n]
	return u.reason, ok
}

// rootDots are the dots IDNA maps to ".": U+002E and the full-width,
// ideographic and half-width ideographic full stops (UTS #46).
var rootDots = [...]string{".", "\uff0e", "\u3002", "\uff61"}

// trimRootDot drops one trailing dot, the DNS root's, in any of its IDNA
// spellings: "example.org\uff0e" is "example.org." as IDNA reads it, not a
// name with an empty label.
func trimRootDot(name string) string {
	for _, dot := range rootDots {
		if n, ok := strings.CutSuffix(name, dot); ok {
			return n
		}
	}
	return name
}

// NormalizeDomain lower-cases and converts to the ASCII (punycode) form, so
// "Exämple.ORG" and "xn--exmple-cua.org" are the same domain.
func NormalizeDomain(name string) (string, error) {
	name = trimRootDot(strings.TrimSpace(name))
	if name == "" {
		return "", errors.New("empty domain name")
	}
	// Every RCPT looks its domain up, and idna's mapping costs ~1 % of the
	// node's CPU for names that are almost always plain ASCII already.
	ascii, ok := lowerLDH(name)
	if !ok {
		var err error
		ascii, err = idna.Lookup.ToASCII(name)
		if err != nil {
			return "", fmt.Errorf("invalid domain name %q: %w", name, err)
		}
	}
	if !strings.Contains(ascii, ".") {
		return "", fmt.Errorf("invalid domain name %q: not fully qualified", name)
	}
	// IDNA's lookup profile lets empty labels through ("a..b", "."): no
	// mail can be addressed to such a name, so a config domain spelled so
	// is a typo to report, not a domain to serve.
	if ascii[0] == '.' || ascii[len(ascii)-1] == '.' || strings.Contains(ascii, "..") {
		return "", fmt.Errorf("invalid domain name %q: empty label", name)
	}
	return strings.ToLower(ascii), nil
}

// lowerLDH is idna.Lookup.ToASCII for the names it only lower-cases:
// non-empty labels of ASCII letters, digits and inner hyphens. It reports
// false for anything else, which idna must judge: a label with "--" at
// positions 3-4 (punycode "xn--" among them), one that starts or ends
// with '-', an empty label, any other byte.
func lowerLDH(name string) (string, bool) {
	upper := false
	start := 0
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			label := name[start:i]
			if label == "" || label[0] == '-' || label[len(label)-1] == '-' ||
				len(label) >= 4 && label[2] == '-' && label[3] == '-' {
				return "", false
			}
			start = i + 1
			continue
		}
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case 'A' <= c && c <= 'Z':
			upper = true
		default:
			return "", false
		}
	}
	if upper {
		return strings.ToLower(name), true
	}
	return name, true
}

// StaticDomain is a domain from the node's YAML config (`domains:`).
type StaticDomain struct {
	Name       string   `yaml:"name"`
	Route      string   `yaml:"route"`
	Recipients []string `yaml:"recipients"`
	TLS        string   `yaml:"tls"`
	// Routes send some recipients to other servers (see RouteRule).
	Routes []RouteRule `yaml:"routes"`
	Policy `yaml:",inline"`
}

// Build validates s and turns it into a Domain; errors name the key.
func (s StaticDomain) Build() (*Domain, error) {
	d, fe := newDomain(domainSpec{Source: "config", Name: s.Name, Route: s.Route, TLS: s.TLS, Routes: s.Routes, Recipients: s.Recipients, Policy: s.Policy})
	// newDomain names a bad subject tag as a stored row's, under policy;
	// the file has the key at the domain's level, where Validate("")
	// reports it.
	delete(fe, "policy.subject_tag")
	maps.Copy(fe, s.Policy.Validate(""))
	checkInput(fe, d.Name, s.Route, s.Routes)
	if len(fe) > 0 {
		return nil, fe.first()
	}
	return d, nil
}

// checkInput adds to fe what newDomain lets pass but input from the
// config file or the API must not (rows already stored are loaded as they
// are, so one cannot fail a whole reload):
//   - a name no MX record can name (idna.Lookup takes over-long labels and
//     names and an all-numeric top label), none of whose mail ever arrives;
//   - a route the relay cannot dial: it parses routes with
//     netguard.ParseTarget, stricter than ValidateRoute, so "mail host:25",
//     "mx.example:+25" or "10.1:25" was stored and every message for the
//     domain was then answered 451 4.4.1 for ever.
func checkInput(fe FieldErrors, name, route string, routes []RouteRule) {
	if _, bad := fe["name"]; !bad {
		if err := checkDNSName(name); err != nil {
			fe["name"] = err.Error()
		}
	}
	dialable := func(key, route string) {
		if _, bad := fe[key]; bad {
			return
		}
		if _, err := netguard.ParseTarget(route); err != nil {
			fe[key] = err.Error()
		}
	}
	dialable("route", route)
	for i, r := range routes {
		dialable(fmt.Sprintf("routes[%d].route", i), r.Route)
	}
}

// domainSpec is a domain as each source gives it: the config file, the
// store (a row loaded for a snapshot, or API input being validated) and
// the snapshot file.
type domainSpec struct {
	// ID, CustomerID and Source are the Domain's (zero for config domains
	// and API input).
	ID, CustomerID   int64
	Source           string
	Name, Route, TLS string
	Routes           []RouteRule
	// Recipients are local parts, or addresses at Name, to check; Known
	// are the store's or the snapshot file's, checked when they were input.
	Recipients []string
	Known      Recipients
	// Policy is the domain's own; Inherited is what it overrides (its
	// customer's over its reseller's), empty where Policy is already the
	// effective one.
	Policy, Inherited Policy
}

// newDomain is the one place a domain is built, so every source yields the
// same Domain: it checks the name, route, TLS mode, route rules and
// recipients, and computes what the hot path reads (effective policy,
// parsed lists) once, here, rather than per message. The policy itself is
// checked where it is input (Policy.Validate): a stored policy merged with
// its parents need not pass alone. Keys name the fields as the config file
// and the API do. The Domain is never nil but complete only without errors.
func newDomain(s domainSpec) (*Domain, FieldErrors) {
	fe := FieldErrors{}
	name, err := NormalizeDomain(s.Name)
	if err != nil {
		fe["name"] = err.Error()
		name = s.Name
	}
	if err := ValidateRoute(s.Route); err != nil {
		fe["route"] = err.Error()
	}
	mode, err := ParseTLSMode(s.TLS)
	if err != nil {
		fe["tls"] = err.Error()
	}
	routes, rfe := newRouteTable(name, mode, s.Routes)
	maps.Copy(fe, rfe)
	d := &Domain{Name: name, ID: s.ID, CustomerID: s.CustomerID, Source: s.Source,
		Route: Route{Addr: s.Route, TLS: mode}, Routes: routes, Policy: s.Policy.Over(s.Inherited)}
	d.Lists = d.Policy.lists()
	// Unlike the scores, which a merge may legitimately reorder, a
	// subject tag is valid or not on its own, and it goes into a header:
	// one with a line break (a row edited by hand: the API refuses it)
	// made the rewrite of every tagged message fail, and the header went
	// out as the sender wrote it, its forged X-Spam-Status with it.
	if tag := d.Policy.SubjectTag; tag != nil && hasControl(*tag) {
		fe["policy.subject_tag"] = "must not contain control characters (it goes into a header)"
	}
	d.Recipients = s.Known
	if len(s.Recipients) > 0 {
		locals := make([]string, 0, len(s.Recipients))
		for i, r := range s.Recipients {
			local, dom, hasAt := strings.Cut(strings.TrimSpace(r), "@")
			local = mailaddr.FoldLocal(local)
			if local == "" || (hasAt && !atDomain(dom, name)) {
				fe[fmt.Sprintf("recipients[%d]", i)] = fmt.Sprintf("%q is not a local part or an address at %s", r, name)
				continue
			}
			locals = append(locals, local)
		}
		d.Recipients = PackRecipients(locals)
	}
	return d, fe
}

// ValidateRoute checks a host:port route.
func ValidateRoute(route string) error {
	host, port, err := net.SplitHostPort(route)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", route, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", route)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q has no valid port", route)
	}
	return nil
}
