package rules

import (
	"net/url"
	"strings"

	"github.com/mxgrid/mxgrid/scanner"
)

// unwrapped is where a link really leads when a mail security gateway
// has rewritten it to pass through its own checker first: Microsoft
// Defender's Safe Links (*.safelinks.protection.outlook.com/?url=),
// Proofpoint's URL Defense (urldefense.proofpoint.com/v2/url?u=,
// urldefense.com/v3/__...__), Barracuda's Link Protection
// (linkprotect.cudasvc.com/url?a=) and Google's redirector
// (www.google.com/url?q=, what Gmail does to forwarded links). Mail that
// reaches us through such a tenant, or forwarded from one, has every
// link rewritten: judged as written, every link would lead to the
// gateway, a newsletter's "www.shop.example" text would not match it and
// a phish's page would hide behind Microsoft's host. Anything else, or a
// wrapper whose target does not parse, is returned as it is; the link's
// text and kind are kept.
func unwrapped(u scanner.URL) scanner.URL {
	target := wrappedTarget(u)
	if target == "" {
		return u
	}
	inner := scanner.FindURLs(target, 1)
	if len(inner) == 0 {
		return u
	}
	t := inner[0]
	t.Text, t.Image, t.Plain, t.InFile = u.Text, u.Image, u.Plain, u.InFile
	return t
}

// wrappedTarget is the address a rewritten link carries, or "".
func wrappedTarget(u scanner.URL) string {
	host := u.Host
	if !strings.HasSuffix(host, ".safelinks.protection.outlook.com") && host != "urldefense.proofpoint.com" &&
		host != "urldefense.com" && host != "linkprotect.cudasvc.com" && host != "www.google.com" {
		return ""
	}
	p, err := url.Parse(u.Raw)
	if err != nil {
		return ""
	}
	q := p.Query()
	switch {
	case strings.HasSuffix(host, ".safelinks.protection.outlook.com"):
		return q.Get("url")
	case host == "urldefense.proofpoint.com" && strings.HasPrefix(p.Path, "/v2/url"):
		// v2 writes "-" for "%" and "_" for "/": https-3A__www.example.com_x
		v := strings.ReplaceAll(strings.ReplaceAll(q.Get("u"), "-", "%"), "_", "/")
		s, err := url.PathUnescape(v)
		if err != nil {
			return ""
		}
		return s
	case host == "urldefense.com":
		// v3 keeps the address as written between "/v3/__" and "__;".
		_, rest, ok := strings.Cut(u.Raw, "/v3/__")
		if !ok {
			return ""
		}
		target, _, ok := strings.Cut(rest, "__;")
		if !ok {
			return ""
		}
		return target
	case host == "linkprotect.cudasvc.com" && p.Path == "/url":
		return q.Get("a")
	case host == "www.google.com" && p.Path == "/url":
		if t := q.Get("q"); t != "" {
			return t
		}
		return q.Get("url")
	}
	return ""
}
