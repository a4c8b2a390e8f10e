package rules

import (
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/scanner"
)

// TestUnwrapped: links a mail security gateway rewrote are judged by where
// they lead; other links, and wrappers without a target, as written.
func TestUnwrapped(t *testing.T) {
	for _, tc := range []struct {
		raw, host string
	}{
		{"https://eur03.safelinks.protection.outlook.com/?url=https%3A%2F%2Fm365-login.pages.dev%2F&data=05%7C02&sdata=x&reserved=0", "m365-login.pages.dev"},
		{"https://urldefense.proofpoint.com/v2/url?u=https-3A__www.example.net_login&d=DwMFaQ&c=x", "www.example.net"},
		{"https://urldefense.com/v3/__https://www.example.net/login__;!!ABC!def$", "www.example.net"},
		{"https://linkprotect.cudasvc.com/url?a=https%3a%2f%2fwww.example.net%2flogin&c=E,1,x", "www.example.net"},
		{"https://www.google.com/url?q=https://www.example.net/login&sa=D&source=editors", "www.example.net"},
		{"https://www.google.com/search?q=https://www.example.net/", "www.google.com"}, // a search, no redirect
		{"https://eur03.safelinks.protection.outlook.com/?data=05", "eur03.safelinks.protection.outlook.com"},
		{"https://www.example.org/url?q=https://www.example.net/", "www.example.org"},
	} {
		us := scanner.FindURLs(tc.raw, 1)
		if len(us) != 1 {
			t.Fatalf("%s: no URL", tc.raw)
		}
		if got := unwrapped(us[0]).Host; got != tc.host {
			t.Errorf("unwrapped(%s).Host = %q, want %q", tc.raw, got, tc.host)
		}
	}
}

// TestRulesSeeThroughSafeLinks: in a Microsoft 365 tenant every link is a
// Safe Links one; the link rules judge the page behind it, and a
// newsletter's own address over it is no disguise.
func TestRulesSeeThroughSafeLinks(t *testing.T) {
	const head = "From: Shop <news@shop.example>\nDate: Tue, 14 Oct 2025 09:12:44 +0000\nMessage-ID: <w.1@shop.example>\nSubject: news\nMIME-Version: 1.0\nContent-Type: text/html\n\n<p>" +
		"Our autumn news for you. "
	wrap := func(target string) string {
		return "https://eur03.safelinks.protection.outlook.com/?url=" + strings.NewReplacer(":", "%3A", "/", "%2F").Replace(target) + "&amp;data=05%7C02&amp;reserved=0"
	}
	own := run(t, nil, msg(head+"<a href=\""+wrap("https://www.shop.example/sale")+"\">www.shop.example</a></p>\n"), nil)
	if _, ok := own[URLTextMismatch]; ok {
		t.Errorf("%s fired on the sender's own site behind Safe Links: %v", URLTextMismatch, own)
	}
	phish := run(t, nil, msg(head+"<a href=\""+wrap("https://m365-login.pages.dev/")+"\">View document</a></p>\n"), nil)
	if _, ok := phish[URLFreeHosting]; !ok {
		t.Errorf("%s missing behind Safe Links: %v", URLFreeHosting, phish)
	}
}
