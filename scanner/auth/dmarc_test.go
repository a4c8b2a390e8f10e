package auth

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dmarc"

	"github.com/mxgrid/mxgrid/scanner"
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

// TestFromDomainsOfALongList: DMARC reads a From address by address, up
// to the eleventh domain, and gives net/mail's parser a bounded part of
// it; every domain up to the bound is still judged, so that "ceo@bank,
// <junk>" is judged as the bank. A 975 KB list of 75,000 addresses, parsed
// whole, cost 9-14 MB.
func TestFromDomainsOfALongList(t *testing.T) {
	var distinct strings.Builder
	distinct.WriteString("ceo@example.org")
	for i := 0; distinct.Len() < 900_000; i++ {
		fmt.Fprintf(&distinct, ", a@d%d.ex", i)
	}
	// Past the bound, the first ten are returned to be judged all the same.
	firstTen := []string{"example.org"}
	for i := range maxAuthorDomains - 1 {
		firstTen = append(firstTen, fmt.Sprintf("d%d.ex", i))
	}
	tests := []struct {
		name, from string
		want       []string
		wantErr    string
	}{
		{"plain addresses of one domain", strings.TrimSuffix(strings.Repeat("a@x.example, ", 75_000), ", "), []string{"x.example"}, ""},
		{"named addresses of one domain", "ceo@example.org, " + strings.TrimSuffix(strings.Repeat(`"A" <a@x.example>, `, 50_000), ", "), []string{"example.org", "x.example"}, ""},
		{"a bank, then junk", "ceo@example.org, " + strings.Repeat("a@x.example <, ", 60_000), []string{"example.org", "x.example"}, ""},
		{"a bank, then junk naming it", "a@x.example, " + strings.Repeat(`<, "b" ceo@example.org`, 40_000), []string{"x.example", "example.org"}, ""},
		{"a bank, then many domains", distinct.String(), firstTen, "more than 10 domains"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := scanner.Parse([]byte("From: " + tt.from + "\r\nSubject: x\r\n\r\nx\r\n"))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got, err := fromDomains(msg)
			runtime.ReadMemStats(&after)
			if !slices.Equal(got, tt.want) || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("fromDomains = %q, %v; want %q, %q", got, err, tt.want, tt.wantErr)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
				t.Errorf("a %d KB From allocated %d KB, want under 256 KB", len(tt.from)>>10, alloc>>10)
			}
		})
	}
}
