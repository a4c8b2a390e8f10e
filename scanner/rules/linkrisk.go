package rules

import (
	"encoding/base64"
	"net/url"
	"strings"

	"github.com/mxgrid/mxgrid/scanner"
)

// Rules about where the links lead. Image sources are not links a reader
// follows, so only clickable and plain-text links and forms' actions count.
const (
	URLLookalike    = "URL_LOOKALIKE"
	URLShortener    = "URL_SHORTENER"
	URLFreeHosting  = "URL_FREE_HOSTING"
	URLDataURI      = "URL_DATA_URI"
	URLPercentHeavy = "URL_PERCENT_HEAVY"
	FormForeignPost = "FORM_FOREIGN_ACTION"
	URLAbusedTLD    = "URL_ABUSED_TLD"
	URLRcptFragment = "URL_RCPT_FRAGMENT"
)

var linkWeights = map[string]float64{
	URLLookalike:    2.5,
	URLShortener:    0.5,
	URLFreeHosting:  1.0,
	URLDataURI:      2.5,
	URLPercentHeavy: 1.0,
	FormForeignPost: 0.5,
	URLAbusedTLD:    1.0,
	URLRcptFragment: 2.0,
}

func linkRisk(f *findings, env *scanner.Envelope, m *scanner.Message) {
	if rcpt := recipientAddress(env, m); rcpt != "" {
		for _, u := range m.URLs {
			if !u.Image && fragmentIsAddress(unwrapped(u).Raw, rcpt) {
				f.hit(URLRcptFragment, u.Host)
				break
			}
		}
	}
	fromOrg := ""
	if _, d, ok := strings.Cut(m.FromAddr, "@"); ok {
		fromOrg = f.fromOrg.get(d, orgDomain)
	}
	seen := make(map[string]bool, 8)
	judge := func(u scanner.URL) {
		if u.Image || u.Host == "" || seen[u.Host] {
			return
		}
		seen[u.Host] = true
		if b, why := brands.lookalike(u.Host); b != nil {
			f.hit(URLLookalike, b.name+": "+why)
		}
		switch {
		case shorteners.has(u.Host):
			f.hit(URLShortener, u.Host)
		case freeHosting.has(u.Host) && orgDomain(u.Host) != fromOrg:
			// A site on a free host is the sender's own when the mail
			// comes from it: an app's sign-in mail from
			// noreply@app.firebaseapp.com linking app.firebaseapp.com.
			// Each site there is its own registrable domain (the public
			// suffix list says so), so no other site's mail matches.
			f.hit(URLFreeHosting, u.Host)
		}
		if !u.IP && abusedTLD(u.Host) {
			f.hit(URLAbusedTLD, u.Host)
		}
		if percentHeavy(u.Raw) {
			f.hit(URLPercentHeavy, u.Host)
		}
	}
	for _, u := range m.URLs {
		judge(unwrapped(u))
	}
	// A form's action is where the password typed into it goes, a link
	// as much as an href is.
	for _, action := range m.HTML.FormActions {
		for _, u := range scanner.FindURLs(action, 1) {
			judge(u)
		}
	}
	if m.HTML.DataLinks > 0 {
		f.hit(URLDataURI, "")
	}
	if len(m.HTML.FormActions) == 0 {
		// Most mail has no form: no need to look up the From's org.
		return
	}
	for _, action := range m.HTML.FormActions {
		if foreignAction(action, fromOrg) {
			f.hit(FormForeignPost, action)
			break
		}
	}
}

// percentHeavy: a link whose path and query are mostly %-escapes hides
// where it goes and what it carries from the reader and from filters.
func percentHeavy(raw string) bool {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return false
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[i:]
	} else {
		return false
	}
	escapes := strings.Count(rest, "%")
	return escapes >= 12 && escapes*3*2 > len(rest)
}

// foreignAction: a form that posts to an absolute address off the
// sender's own domain. Mail clients submit forms straight from the
// message, so what is typed goes wherever the action says.
func foreignAction(action, fromOrg string) bool {
	u, err := url.Parse(action)
	switch {
	case err != nil:
		return false
	case strings.EqualFold(u.Scheme, "data"):
		return true
	case u.Host == "":
		return false // relative: nowhere to post from a mail client
	}
	return orgDomain(u.Hostname()) != fromOrg
}

// fragmentIsAddress: the link's fragment is the reader's address, as
// written, percent-escaped or base64-encoded ("#ana@example.com",
// "#YW5hQGV4YW1wbGUuY29t"). Phishing kits read it in the browser to
// fill in the login form, so the page looks like the reader's own
// provider's; the fragment never reaches a server, so no tracking link
// puts it there. Web apps that route in the fragment ("#/invite?email=")
// start it with a path, which is not the address.
func fragmentIsAddress(raw, rcpt string) bool {
	_, frag, ok := strings.Cut(raw, "#")
	if !ok || frag == "" {
		return false
	}
	if s, err := url.PathUnescape(frag); err == nil && strings.HasPrefix(strings.ToLower(s), rcpt) {
		return true
	}
	// Base64 of the address, padded or not, standard or URL-safe: its
	// whole groups of three bytes encode the same whatever follows.
	whole := len(rcpt) / 3 * 3
	for _, enc := range [...]*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		if whole > 0 && strings.HasPrefix(frag, enc.EncodeToString([]byte(rcpt[:whole]))) {
			return true
		}
	}
	return false
}
