package mailaddr

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, local, domain, str string
	}{
		{"alice@example.org", "alice", "example.org", "alice@example.org"},
		{"a.b+tag@Example.ORG", "a.b+tag", "Example.ORG", "a.b+tag@Example.ORG"},
		{`"a b"@example.org`, "a b", "example.org", `"a b"@example.org`},
		{`"victim@evil.test> ORCPT=rfc822;x"@example.com`, "victim@evil.test> ORCPT=rfc822;x", "example.com", `"victim@evil.test> ORCPT=rfc822;x"@example.com`},
		{`"q\"uo\\te"@x.test`, `q"uo\te`, "x.test", `"q\"uo\\te"@x.test`},
		{`"plain"@x.test`, "plain", "x.test", "plain@x.test"},
		{"user@[192.0.2.1]", "user", "[192.0.2.1]", "user@[192.0.2.1]"},
		{"user@[IPv6:2001:db8::1]", "user", "[IPv6:2001:db8::1]", "user@[IPv6:2001:db8::1]"},
		// ABNF strings are case-insensitive (RFC 5234 §2.3): Postfix takes
		// this literal; it is written back in RFC 5321's spelling.
		{"user@[ipv6:2001:db8::1]", "user", "[IPv6:2001:db8::1]", "user@[IPv6:2001:db8::1]"},
		{"jürgen@bücher.example", "jürgen", "bücher.example", "jürgen@bücher.example"},
		{"علی\u200cرضا@example.ir", "علی\u200cرضا", "example.ir", "علی\u200cرضا@example.ir"},
		// The root's dot is dropped, as Postfix and Sendmail drop it.
		{"alice@Example.org.", "alice", "Example.org", "alice@Example.org"},
	} {
		a, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if a.Local != tc.local || a.Domain != tc.domain || a.String() != tc.str {
			t.Errorf("Parse(%q) = %q @ %q (%s), want %q @ %q (%s)", tc.in, a.Local, a.Domain, a, tc.local, tc.domain, tc.str)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"@", ErrSyntax},
		{"", ErrSyntax},
		{"a@", ErrSyntax},
		{"@b.test", ErrSyntax},
		{`""@b.test`, ErrSyntax},
		{"a b@c.test", ErrSyntax},
		{"a..b@c.test", ErrSyntax},
		{".a@c.test", ErrSyntax},
		{"a@b@c.test", ErrSyntax},
		{"a@-b.test", ErrSyntax},
		{"a@b..test", ErrSyntax},
		{"a@b.test..", ErrSyntax},
		{"a@.", ErrSyntax},
		{"a@[192.0.2.1].", ErrSyntax},
		{"a@b.test>", ErrSyntax},
		{"a@b.test ORCPT=x", ErrSyntax},
		{"a@[300.1.1.1]", ErrSyntax},
		{"a@[IPv6:1.2.3.4]", ErrSyntax},
		{"a@[tag:content]", ErrSyntax},
		{`"unterminated@b.test`, ErrSyntax},
		{`"a"x@b.test`, ErrSyntax},
		{"a@b\uff0etest", ErrSyntax},
		{"a@" + strings.Repeat("b", 64) + ".test", ErrSyntax},
		{strings.Repeat("a", MaxLength) + "@b.test", ErrSyntax},
		{"a\x00@b.test", ErrControl},
		{"\"a\rb\"@b.test", ErrControl},
		{"\"a\nb\"@b.test", ErrControl},
		{"a@b.test\r", ErrControl},
		{"a\x0bb@c.test", ErrControl},
		{"a\x7f@c.test", ErrControl},
		{"a\u0085@c.test", ErrControl},
		{"a\u2028b@c.test", ErrControl},
		{"\"a\u2029\"@c.test", ErrControl},
		{"admin\u202egnp.exe@c.test", ErrControl},
		{"a\u2067b\u2069@c.test", ErrControl},
		{"a@c\u202e.test", ErrControl},
		{"a\xff@c.test", ErrInvalidUTF8},
		{"j\xfcrgen@c.test", ErrInvalidUTF8},
		{"a@b\xe4cker.test", ErrInvalidUTF8},
	} {
		_, err := Parse(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("Parse(%q) = %v, want %v", tc.in, err, tc.want)
		}
		// Invalid UTF-8 is refused as a control is, but named apart: a
		// control is not it.
		if got, want := errors.Is(err, ErrInvalidUTF8), tc.want == ErrInvalidUTF8; got != want {
			t.Errorf("Parse(%q) = %v: errors.Is ErrInvalidUTF8 %v, want %v", tc.in, err, got, want)
		}
		if tc.want == ErrInvalidUTF8 && !errors.Is(err, ErrControl) {
			t.Errorf("Parse(%q) = %v, want an ErrControl too", tc.in, err)
		}
	}
}

// TestParseDecoded covers the form go-smtp hands its backend: quotes and
// backslashes already removed.
func TestParseDecoded(t *testing.T) {
	for _, tc := range []struct{ in, str string }{
		{"victim@evil.test> ORCPT=rfc822;x@example.com", `"victim@evil.test> ORCPT=rfc822;x"@example.com`},
		{"a> AUTH=admin@example.com X@evil.test", `"a> AUTH=admin@example.com X"@evil.test`},
		{"victim%evil.test@example.com", "victim%evil.test@example.com"},
		{`q"uo\te@x.test`, `"q\"uo\\te"@x.test`},
		{"", ""},
	} {
		a, err := ParseDecoded(tc.in)
		if err != nil || a.String() != tc.str {
			t.Errorf("ParseDecoded(%q) = %s, %v; want %s", tc.in, a, err, tc.str)
		}
	}
	for _, in := range []string{"@", "a@", "@b.test", "a\x00b@c.test", "a\rb@c.test", "nodomain"} {
		if _, err := ParseDecoded(in); err == nil {
			t.Errorf("ParseDecoded(%q) accepted", in)
		}
	}
}

func TestReversePath(t *testing.T) {
	for _, in := range []string{"", "<>"} {
		a, err := ParseReversePath(in)
		if err != nil || !a.IsNull() || a.String() != "" {
			t.Errorf("ParseReversePath(%q) = %+v, %v", in, a, err)
		}
	}
	if a, err := ParseReversePath("a@b.test"); err != nil || a.IsNull() {
		t.Errorf("ParseReversePath(a@b.test) = %+v, %v", a, err)
	}
}

func TestSourceRouted(t *testing.T) {
	for in, want := range map[string]bool{
		"victim%evil.test@example.com":   true,
		"evil.test!victim@example.com":   true,
		`"victim@evil.test"@example.com`: true,
		"alice@example.com":              false,
	} {
		a, err := Parse(in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if a.SourceRouted() != want {
			t.Errorf("%q: SourceRouted = %v, want %v", in, !want, want)
		}
	}
}

func TestASCII(t *testing.T) {
	for in, want := range map[string]bool{"a@b.test": true, "jürgen@b.test": false, "a@bücher.example": false} {
		a, err := Parse(in)
		if err != nil || a.ASCII() != want {
			t.Errorf("%q: ASCII = %v (%v), want %v", in, a.ASCII(), err, want)
		}
	}
}

// String runs for every address written downstream, logged and tracked,
// several times a message: a dot-string costs the one string it returns.
func TestStringAllocatesOnlyItsResult(t *testing.T) {
	a := Address{Local: "first.last", Domain: "example.org"}
	if n := testing.AllocsPerRun(100, func() { _ = a.String() }); n > 1 {
		t.Errorf("String allocated %.0f times, want 1", n)
	}
}

// ParseDecoded runs for the sender and every recipient: a valid dot-string
// address costs nothing beyond checking it.
func TestParseDecodedAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseDecoded("first.last@example.org") }); n > 0 {
		t.Errorf("ParseDecoded allocated %.0f times, want 0", n)
	}
}

func TestFoldLocal(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Kate", "kate"},
		{"JÓZEF", "józef"},
		{"\u212Aate", "\u212Aate"},
		{"\u0130nfo", "\u0130nfo"},
		{"ÅSA", "åsa"},
		{"po\u017Ftmaster", "po\u017Ftmaster"},
	} {
		if got := FoldLocal(tc.in); got != tc.want {
			t.Errorf("FoldLocal(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIsPostmaster(t *testing.T) {
	for _, tc := range []struct {
		local string
		want  bool
	}{
		{"postmaster", true},
		{"PostMaster", true},
		{"po\u017Ftma\u017Fter", false},
		{"po\u017Ftmaster", false},
		{"postmaster2", false},
		{"\u212Aostmaster", false},
	} {
		if got := IsPostmaster(tc.local); got != tc.want {
			t.Errorf("IsPostmaster(%q) = %v, want %v", tc.local, got, tc.want)
		}
	}
}

// TestWithALabel: a sender's domain in another script is shown with its
// A-label, as browsers show look-alike names; an ASCII address as it is.
func TestWithALabel(t *testing.T) {
	for _, tt := range []struct{ addr, want string }{
		{"service@apple.example", "service@apple.example"},
		{"", ""},
		{"\"a@b\"@c.example", "\"a@b\"@c.example"},
		{"service@\u0430\u0440\u0440\u04cf\u0435.example", "service@\u0430\u0440\u0440\u04cf\u0435.example (xn--80ak6aa92e.example)"},
		{"info@bücher.example", "info@bücher.example (xn--bcher-kva.example)"},
		{"jörg@example.org", "jörg@example.org"},
		// A name IDNA refuses has no A-label: it is spelled out.
		{"a@\u00ad\u200d.example", `a@` + "\u00ad\u200d" + `.example (\u00ad\u200d.example)`},
	} {
		if got := WithALabel(tt.addr); got != tt.want {
			t.Errorf("WithALabel(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestALabels: what a server without SMTPUTF8 may be given. Only a domain
// converts (RFC 5890 A-labels, as Postfix's SMTP client sends it); a
// local part that is not ASCII, or a domain IDNA2008 refuses, still needs
// SMTPUTF8.
func TestALabels(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" for ErrNeedsUTF8
	}{
		{"info@bücher.example", "info@xn--bcher-kva.example"},
		// Case folds as the directory and SPF read the name; the local
		// part is the customer's server's to read, kept as it came.
		{"INFO@BÜCHER.example", "INFO@xn--bcher-kva.example"},
		{"bob@例え.example", "bob@xn--r8jz45g.example"},
		// IDNA2008, not the transitional mapping: ß stays ß (another
		// name than strasse.example).
		{"a@straße.example", "a@xn--strae-oqa.example"},
		{`"a b"@bücher.example`, `"a b"@xn--bcher-kva.example`},
		// ASCII goes as it is, case and literals included.
		{"alice@Example.ORG", "alice@Example.ORG"},
		{"a@[192.0.2.1]", "a@[192.0.2.1]"},
		{"jürgen@bücher.example", ""},
		{"jürgen@example.org", ""},
		// No valid A-label: a label that starts with a combining mark, a
		// right-to-left label with a left-to-right letter, a bad
		// punycode label beside a U-label, a label over 63 octets once
		// converted.
		{"a@\u0301bücher.example", ""},
		{"a@שלוםa.example", ""},
		{"a@xn--zz.bücher.example", ""},
		{"a@日本語中国漢字文化圏東西南北春夏秋冬雪月花.example", ""}, // 63 octets; its A-label has 69
	} {
		a, err := Parse(tc.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.in, err)
		}
		got, err := a.ALabels()
		if tc.want == "" {
			if !errors.Is(err, ErrNeedsUTF8) {
				t.Errorf("%q.ALabels() = %q, %v; want ErrNeedsUTF8", tc.in, got, err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("%q.ALabels() = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestWithALabels: in a From or To field, every address whose domain is
// not ASCII is followed by its A-label; the rest is left as written.
func TestWithALabels(t *testing.T) {
	const lookalike = "\u0430\u0440\u0440\u04cf\u0435.example"
	for _, tt := range []struct{ field, want string }{
		{"", ""},
		{"PayPal <service@paypal.example>", "PayPal <service@paypal.example>"},
		{"PayPal <service@" + lookalike + ">", "PayPal <service@" + lookalike + "> (xn--80ak6aa92e.example)"},
		{"service@" + lookalike + ", b@c.example", "service@" + lookalike + " (xn--80ak6aa92e.example), b@c.example"},
		{"\"x@y\" <a@bücher.example>", "\"x@y\" <a@bücher.example> (xn--bcher-kva.example)"},
		// A display name that looks like an address is not one, but
		// its letters deceive the same: it is labelled too.
		{"service@" + lookalike + " <x@evil.example>", "service@" + lookalike + " (xn--80ak6aa92e.example) <x@evil.example>"},
		{"jörg@example.org", "jörg@example.org"},
		{"a@", "a@"},
		// A name IDNA refuses has no A-label: it is spelled out.
		{"<a@\u00ad\u200d.example>", `<a@` + "\u00ad\u200d" + `.example> (\u00ad\u200d.example)`},
	} {
		if got := WithALabels(tt.field); got != tt.want {
			t.Errorf("WithALabels(%q) = %q, want %q", tt.field, got, tt.want)
		}
	}
}

// FuzzWithALabels: whatever a header field holds, WithALabels only adds:
// an ASCII field comes back as it is, and any field's bytes stay, in
// order, in what it returns.
func FuzzWithALabels(f *testing.F) {
	f.Add("PayPal <service@\u0430\u0440\u0440\u04cf\u0435.example>, b@c.example")
	f.Add("a@@b\u00e9>")
	f.Add("\xb50")
	f.Fuzz(func(t *testing.T, field string) {
		got := WithALabels(field)
		if IsASCII(field) && got != field {
			t.Fatalf("ASCII %q came back as %q", field, got)
		}
		rest := got
		for i := range len(field) {
			k := strings.IndexByte(rest, field[i])
			if k < 0 {
				t.Fatalf("%q: %q lost byte %d", field, got, i)
			}
			rest = rest[k+1:]
		}
	})
}
