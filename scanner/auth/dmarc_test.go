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

// TestManyDMARCStringsCostLittle: lenientRecord parses each tag of a
// record it repairs on its own, which the one DMARC record of an answer
// is worth (RFC 7489 6.3), but it repaired every "v=" string: 300 strings
// of another version (a v= tag other than DMARC1 last, which is the one
// read), which RFC 7489 6.6.3 discards, or of DMARC1, more than one of
// which is no DMARC at all, cost 16 ms of CPU and 7-8 MB of garbage per
// lookup, up to twenty lookups a message (ten From domains and their
// organizational domain), in DNS the sender runs.
func TestManyDMARCStringsCostLittle(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, nil)
	for range 300 {
		w.srv.AddTXT("_dmarc.other.many.example", "v=DMARC2;"+strings.Repeat("b=1;", 30))
		w.srv.AddTXT("_dmarc.dmarc1.many.example", "v=DMARC1;"+strings.Repeat("b=1;", 30))
		// v=DMARC1 first, but the last v= tag is the one read.
		w.srv.AddTXT("_dmarc.last.many.example", "v=DMARC1;"+strings.Repeat("b=1;", 29)+"v=2")
	}
	w.srv.AddTXT("_dmarc.last.many.example", "v=DMARC1; p=reject; adkim=relaxed")
	w.srv.AddTXT("_dmarc.other.many.example", "v=DMARC1; p=reject; adkim=relaxed")
	for _, tt := range []struct {
		domain string
		want   error // nil for the DMARC1 record's p=reject
	}{
		{"other.many.example", nil},
		{"last.many.example", nil},
		{"dmarc1.many.example", errMultipleRecords},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rec, err := c.lookupRecord(t.Context(), tt.domain)
		runtime.ReadMemStats(&after)
		switch {
		case tt.want == nil && (err != nil || rec.Policy != dmarc.PolicyReject):
			t.Errorf("%s: %+v, %v; want its p=reject", tt.domain, rec, err)
		case tt.want != nil && err != tt.want:
			t.Errorf("%s: %+v, %v; want %v", tt.domain, rec, err, tt.want)
		}
		if garbage := after.TotalAlloc - before.TotalAlloc; garbage > 4<<20 {
			t.Errorf("%s: one lookup allocated %d MB", tt.domain, garbage>>20)
		}
	}
}

func TestReadDomain(t *testing.T) {
	for _, tt := range []struct{ in, name, rest string }{
		{"example.org>", "example.org", ">"},
		{"example.org", "example.org", ""},
		{"example. org>", "example.org", ">"},
		{"example .org>", "example.org", ">"},
		{"example.(x)org (y)>", "example.org", ">"},
		{"a.b (x) . c. d e", "a.b.c.d", "e"},
		{"example.org.>", "example.org.", ">"},
		{"example.org.  , b@c.d", "example.org.", ", b@c.d"},
		{">", "", ">"},
	} {
		name, rest := readDomain(tt.in)
		if name != tt.name || rest != tt.rest {
			t.Errorf("readDomain(%q) = %q, %q; want %q, %q", tt.in, name, rest, tt.name, tt.rest)
		}
	}
}

// lenientRecord reads a record's tag names and keywords in any case: a
// record and its copy in upper case (all but the version) give the same
// policy and alignment, and a record in lower case the library parses is
// left as it is.
func FuzzLenientRecordReadsAnyCase(f *testing.F) {
	for _, v := range []string{
		"v=DMARC1; p=reject", "v=DMARC1; p=Reject; sp=None; adkim=S; aspf=r", "v=DMARC1; P=quarantine; pct=50",
		"v=DMARC1; p=none; fo=D:S; rf=AFRF; rua=mailto:A@b.example", "v=DMARC1; p=rejected", "v=DMARC1;;p=reject;",
		"v=DMARC1; p = reject ; adkim = s", "v=dmarc1; p=reject", "v=DMARC1; p=reject; x", "v=DMARC1; p=reject=1",
	} {
		f.Add(v)
	}
	upper := func(s string) string {
		return strings.Map(func(r rune) rune {
			if 'a' <= r && r <= 'z' {
				return r - 'a' + 'A'
			}
			return r
		}, s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		got := lenientRecord(txt)
		if _, err := dmarc.Parse(txt); err == nil && !hasUpperASCII(strings.TrimPrefix(txt, "v=DMARC1")) && got != txt {
			t.Fatalf("lenientRecord(%q) = %q, want it unchanged", txt, got)
		}
		rest, ok := strings.CutPrefix(txt, "v=DMARC1")
		if !ok {
			return
		}
		shouted := "v=DMARC1" + upper(rest)
		a, errA := dmarc.Parse(got)
		b, errB := dmarc.Parse(lenientRecord(shouted))
		if (errA == nil) != (errB == nil) {
			t.Fatalf("%q: %v; %q: %v", txt, errA, shouted, errB)
		}
		if errA == nil && (a.Policy != b.Policy || a.SubdomainPolicy != b.SubdomainPolicy ||
			a.DKIMAlignment != b.DKIMAlignment || a.SPFAlignment != b.SPFAlignment) {
			t.Fatalf("%q: %+v; %q: %+v", txt, a, shouted, b)
		}
	})
}

// canonicalVersion rewrites only a version tag that reads v=DMARC1 once
// its white space is gone (and its name's case), and keeps the rest.
func FuzzCanonicalVersion(f *testing.F) {
	for _, v := range []string{"v=DMARC1; p=reject", " v=DMARC1; p=reject", "V = DMARC1;p=none", "\tv\t=\tDMARC1", "v=dmarc1", "vv=DMARC1", "v=DMARC10", "x=1; v=DMARC1", ""} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		got := canonicalVersion(txt)
		if got == txt {
			return
		}
		rest, ok := strings.CutPrefix(got, "v=DMARC1")
		if !ok || !strings.HasSuffix(txt, rest) {
			t.Fatalf("canonicalVersion(%q) = %q", txt, got)
		}
		head := strings.NewReplacer(" ", "", "\t", "").Replace(strings.TrimSuffix(txt, rest))
		if head != "v=DMARC1" && head != "V=DMARC1" {
			t.Fatalf("canonicalVersion(%q) = %q: rewrote %q", txt, got, head)
		}
	})
}
