package tenant

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mxgrid/mxgrid/mailaddr"
)

// TLSMode is how a route's downstream connection uses TLS. The values are
// relay's (smtpd converts with relayRoute): tenant names them itself so the
// store and the admin side do not link the SMTP client.
type TLSMode string

// TLS modes, as in the `tls:` keys of config, API and snapshot file.
const (
	TLSNone          TLSMode = "none"
	TLSOpportunistic TLSMode = "opportunistic"
	TLSRequired      TLSMode = "required"
)

// ParseTLSMode validates a tls setting; empty means opportunistic.
func ParseTLSMode(s string) (TLSMode, error) {
	switch TLSMode(s) {
	case "":
		return TLSOpportunistic, nil
	case TLSNone, TLSOpportunistic, TLSRequired:
		return TLSMode(s), nil
	}
	return "", fmt.Errorf("%q is not none, opportunistic or required", s)
}

// Route is where a recipient's mail goes.
type Route struct {
	Addr string // host:port
	TLS  TLSMode
	// Trusted routes are the operator's (config domains): they may reach
	// any network. Tenant routes are vetted by the relay's route guard.
	Trusted bool
}

// RouteRule sends some of a domain's recipients to another server than the
// domain's route. This is co-existence: one domain whose mailboxes live on
// two systems (a hosted suite and an on-premises server, during a migration
// or for good), with our MX in front of both.
type RouteRule struct {
	// Recipients are patterns over the local part, compared without case:
	// "alice" is exactly that local part, "sales-*" every local part that
	// starts with "sales-". An address at the domain ("alice@example.org")
	// means its local part. A '*' is only allowed last, and a lone "*" is
	// refused: that is the domain's own route.
	Recipients []string `yaml:"recipients" json:"recipients"`
	// Route is host:port of the server that holds these mailboxes.
	Route string `yaml:"route" json:"route"`
	// TLS is none, opportunistic or required; empty follows the domain's
	// tls, also when that changes later.
	TLS string `yaml:"tls" json:"tls,omitempty"`
}

// Bounds on a domain's rules: each rule is a distinct server, so a handful
// is normal; the patterns may list every mailbox of one side.
const (
	maxRouteRules    = 100
	maxRoutePatterns = maxListLen
)

// RouteTable is a domain's rules compiled for lookups on the hot path.
// Precedence: an exact local part first, then the longest matching prefix,
// then the domain's route. Two rules claiming the same pattern are refused
// when the table is built, so the order of rules never matters.
type RouteTable struct {
	// rules are the normalised rules (lower-case local parts, TLS as given),
	// kept for the snapshot file.
	rules  []RouteRule
	exact  map[string]Route
	prefix []prefixRoute // longest prefix first
}

type prefixRoute struct {
	prefix string
	route  Route
}

// RouteFor is where mail for local (the part before @) goes: its rule's
// route, else the domain's.
// Routes of static (config) domains are the operator's and so trusted.
func (d *Domain) RouteFor(local string) Route {
	r := d.Route
	if d.Routes != nil {
		if rr, ok := d.Routes.lookup(mailaddr.FoldLocal(local)); ok {
			r = rr
		}
	}
	r.Trusted = d.Source == "config"
	return r
}

func (t *RouteTable) lookup(local string) (Route, bool) {
	if r, ok := t.exact[local]; ok {
		return r, true
	}
	// Linear: prefix rules are few (one per team or department), and the
	// exact entries, which may be thousands, are in the map.
	for _, p := range t.prefix {
		if strings.HasPrefix(local, p.prefix) {
			return p.route, true
		}
	}
	return Route{}, false
}

// newRouteTable validates and compiles rules for domain, whose TLS mode
// applies to rules without one. Keys in the errors are "routes[i].route",
// "routes[i].recipients[j]" and so on. No rules give a nil table.
func newRouteTable(domain string, domainTLS TLSMode, rules []RouteRule) (*RouteTable, FieldErrors) {
	fe := FieldErrors{}
	if len(rules) == 0 {
		return nil, fe
	}
	if len(rules) > maxRouteRules {
		fe["routes"] = fmt.Sprintf("at most %d rules", maxRouteRules)
		return nil, fe
	}
	t := &RouteTable{rules: make([]RouteRule, len(rules)), exact: make(map[string]Route)}
	// owner records which rule claimed a pattern, to name it in a conflict.
	owner := make(map[string]int)
	total := 0
	for i, rule := range rules {
		key := fmt.Sprintf("routes[%d]", i)
		if err := ValidateRoute(rule.Route); err != nil {
			fe[key+".route"] = err.Error()
		}
		mode := domainTLS
		if rule.TLS != "" {
			m, err := ParseTLSMode(rule.TLS)
			if err != nil {
				fe[key+".tls"] = err.Error()
			}
			mode = m
		}
		route := Route{Addr: rule.Route, TLS: mode}
		if len(rule.Recipients) == 0 {
			fe[key+".recipients"] = "required: the local parts (or prefixes like sales-*) this route serves"
		}
		if total += len(rule.Recipients); total > maxRoutePatterns {
			fe[key+".recipients"] = fmt.Sprintf("at most %d patterns over all rules", maxRoutePatterns)
			return nil, fe
		}
		norm := RouteRule{Route: rule.Route, TLS: rule.TLS, Recipients: make([]string, 0, len(rule.Recipients))}
		for j, pat := range rule.Recipients {
			pkey := fmt.Sprintf("%s.recipients[%d]", key, j)
			local, isPrefix, err := parsePattern(pat, domain)
			if err != nil {
				fe[pkey] = err.Error()
				continue
			}
			// "sales-*" and an exact "sales-" are different patterns.
			id := local
			if isPrefix {
				id += "*"
			}
			if k, dup := owner[id]; dup {
				if k != i {
					fe[pkey] = fmt.Sprintf("%q is already routed by routes[%d]", pat, k)
				}
				continue
			}
			owner[id] = i
			norm.Recipients = append(norm.Recipients, id)
			if isPrefix {
				t.prefix = append(t.prefix, prefixRoute{prefix: local, route: route})
			} else {
				t.exact[local] = route
			}
		}
		t.rules[i] = norm
	}
	if len(fe) > 0 {
		return nil, fe
	}
	sort.SliceStable(t.prefix, func(a, b int) bool { return len(t.prefix[a].prefix) > len(t.prefix[b].prefix) })
	return t, fe
}

// parsePattern turns "Alice", "alice@domain" or "sales-*" into the lower-
// cased local part (or prefix) and whether it is a prefix.
func parsePattern(pat, domain string) (string, bool, error) {
	local, err := NormalizeLocal(pat, domain)
	if err != nil {
		return "", false, err
	}
	stem, isPrefix := strings.CutSuffix(local, "*")
	switch {
	case strings.Contains(stem, "*"):
		return "", false, fmt.Errorf("%q: '*' is only allowed at the end (a prefix)", pat)
	case isPrefix && stem == "":
		return "", false, fmt.Errorf("%q matches every recipient: set the domain's route instead", pat)
	}
	return stem, isPrefix, nil
}

// normalized returns the rules as normalised when the table was built,
// and an empty list (not nil: the API shows "routes": []) without a table.
func (t *RouteTable) normalized() []RouteRule {
	if t == nil {
		return []RouteRule{}
	}
	return t.rules
}
