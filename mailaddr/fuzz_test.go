package mailaddr

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/idna"
)

// FuzzParse: every input is an error or an address whose wire form parses
// back to itself and cannot break out of "<...>" on a command line.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"alice@example.org", `"a b"@x.test`, `"a\"b"@x.test`, `"x@evil.test> ORCPT=rfc822;y"@e.test`,
		"a@[192.0.2.1]", "a@[IPv6:::1]", "jürgen@bücher.example", "@", `""@x`, "a\x00@b", "\"a\rb\"@c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func(string) (Address, error){Parse, ParseDecoded} {
			a, err := parse(s)
			if err != nil {
				continue
			}
			w := a.String()
			if a.IsNull() {
				if w != "" {
					t.Fatalf("null address serialised as %q", w)
				}
				continue
			}
			back, err := Parse(w)
			if err != nil || back != a {
				t.Fatalf("%q -> %q -> %+v, %v; want %+v", s, w, back, err, a)
			}
			if strings.ContainsAny(w, "\r\n\x00") {
				t.Fatalf("%q serialised with CR, LF or NUL: %q", s, w)
			}
			if strings.ContainsAny(outsideQuotes(w), "<> ") {
				t.Fatalf("%q serialised with <, > or space outside quotes: %q", s, w)
			}
		}
	})
}

// outsideQuotes drops the quoted-string (with its quoted-pairs) from w.
func outsideQuotes(w string) string {
	if !strings.HasPrefix(w, `"`) {
		return w
	}
	_, n, err := unquote(w)
	if err != nil {
		return w
	}
	return w[n:]
}

// FuzzALabels: an address converted for a server without SMTPUTF8 is
// ASCII, parses back to itself, keeps its local part, and names the
// domain the directory and SPF read (tenant.NormalizeDomain's idna.Lookup)
// in A-labels; nothing that is not ASCII ever comes out of it.
func FuzzALabels(f *testing.F) {
	for _, s := range []string{
		"info@bücher.example", "INFO@BÜCHER.example", "bob@例え.example", "a@straße.example",
		"a@\u0301x.example", "a@שלוםa.example", "a@xn--zz.bücher.example", "a@ｅxample.org",
		"jürgen@bücher.example", `"a b"@ü.example`, "a@[192.0.2.1]", "a@\u212aelvin.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		w, err := a.ALabels()
		if err != nil {
			if !errors.Is(err, ErrNeedsUTF8) {
				t.Fatalf("%q: %v is no ErrNeedsUTF8", s, err)
			}
			if a.ASCII() {
				t.Fatalf("%q: ASCII address refused: %v", s, err)
			}
			return
		}
		if !w.ASCII() || w.Local != a.Local {
			t.Fatalf("%q -> %+v: not ASCII, or the local part changed", s, w)
		}
		if a.ASCII() && w != a {
			t.Fatalf("ASCII %q changed to %+v", s, w)
		}
		back, err := Parse(w.String())
		if err != nil || back != w {
			t.Fatalf("%q -> %q -> %+v, %v", s, w.String(), back, err)
		}
		if !a.ASCII() {
			want, err := idna.Lookup.ToASCII(a.Domain)
			if err != nil || !strings.EqualFold(want, w.Domain) {
				t.Fatalf("%q: A-labels %q, the lookup profile reads %q (%v)", s, w.Domain, want, err)
			}
		}
	})
}
