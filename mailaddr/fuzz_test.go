package mailaddr

import (
	"strings"
	"testing"
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
