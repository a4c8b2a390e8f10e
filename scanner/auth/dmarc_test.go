package auth

import (
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dmarc"
)

// simpleFromDomain, which spares most mail the address parser, may answer
// only where mail.ParseAddressList finds exactly one address with that
// domain.
func FuzzSimpleFromDomainMatchesParser(f *testing.F) {
	for _, v := range []string{
		"alice@example.org", " <alice@Example.ORG> ", "Alice Smith <alice@example.org>", "\"Alice\" <alice@example.org>",
		"=?x-unknown?q?Alice?= <alice@example.org>", "A.B. <a.b@example.org>", ".. <a@b>", "a..b@example.org",
		"alice@example.org.", "alice @example.org", "alice@ example.org", "a@b, c@d", "a <b <c@d>", "<a@b> (comment)",
		"a@[192.0.2.1]", "Gr\u00fc\u00df <a@b.example>", "\ta\tb\t<a@b>\t", "x:y@z", "a@b>",
	} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		domain, ok := simpleFromDomain(v)
		if !ok {
			return
		}
		addrs, err := mail.ParseAddressList(v)
		if err != nil || len(addrs) != 1 {
			t.Fatalf("simpleFromDomain(%q) = %q, the parser %d addresses, err %v", v, domain, len(addrs), err)
		}
		if _, d, _ := strings.Cut(addrs[0].Address, "@"); d != domain {
			t.Fatalf("simpleFromDomain(%q) = %q, the parser %q", v, domain, addrs[0].Address)
		}
	})
}

func TestSimpleFromDomain(t *testing.T) {
	tests := []struct {
		v, want string // want "" for a value left to the parser
	}{
		{"alice@example.org", "example.org"},
		{" <alice@Example.ORG> ", "Example.ORG"},
		{"Alice Smith <alice@example.org>", "example.org"},
		{"A.B.\t<a.b@example.org>", "example.org"},
		{"\"Alice\" <alice@example.org>", ""},
		{"=?utf-8?q?Alice?= <alice@example.org>", ""},
		{"a..b@example.org", ""},
		{"alice@example.org.", ""},
		{"a@b, c@d", ""},
		{"alice@example.org (Alice)", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, ok := simpleFromDomain(tt.v)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("simpleFromDomain(%q) = %q, %v, want %q", tt.v, got, ok, tt.want)
		}
	}
}

func TestPassReason(t *testing.T) {
	for _, p := range []dmarc.Policy{dmarc.PolicyNone, dmarc.PolicyQuarantine, dmarc.PolicyReject, "", "other"} {
		if got, want := passReason(p), "p="+string(p); got != want {
			t.Errorf("passReason(%q) = %q, want %q", p, got, want)
		}
	}
}
