package scanner

import (
	"net/mail"
	"runtime"
	"slices"
	"strings"
	"testing"

	gomail "github.com/emersion/go-message/mail"
)

func TestAddressListElements(t *testing.T) {
	tests := []struct {
		name, list string
		want       []string
	}{
		{"one address", "a@x.example", []string{"a@x.example"}},
		{"two", "a@x.example, B <b@y.example>", []string{"a@x.example", " B <b@y.example>"}},
		{"a comma in a quoted name", `"Doe, J" <j@x.example>, k@y.example`, []string{`"Doe, J" <j@x.example>`, " k@y.example"}},
		{"an escaped quote", `"a\", b" <a@x.example>`, []string{`"a\", b" <a@x.example>`}},
		{"a comma in a nested comment", `a@x.example (c (d, e) f, g), b@y.example`, []string{`a@x.example (c (d, e) f, g)`, " b@y.example"}},
		{"a comma in angle brackets and a literal", `<a,b@x.example>, c@[1,2]`, []string{`<a,b@x.example>`, ` c@[1,2]`}},
		{"blank elements skipped", " , a@x.example,,\r\n ,", []string{" a@x.example"}},
		{"groups", `g: a@x.example, "h: i" <b@y.example>; empty:;, c@z.example`, []string{" a@x.example", ` "h: i" <b@y.example>`, " c@z.example"}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := slices.Collect(AddressListElements(tt.list)); !slices.Equal(got, tt.want) {
				t.Errorf("AddressListElements(%q) = %q, want %q", tt.list, got, tt.want)
			}
		})
	}
}

// Where net/mail reads a From as a list of addresses, its first is the
// first element AddressListElements yields, read alone.
func FuzzFirstAddressElementMatchesList(f *testing.F) {
	f.Add(`"Doe, J" <j@x.example>, k@y.example`)
	f.Add(`=?utf-8?q?D=C3=B6e?= <d@x.example> (a, b), c@y.example`)
	f.Add(`a@[1.2.3.4], <"q,q"@x.example>`)
	f.Add(`g: a@x.example, b@y.example;, c@z.example`)
	f.Fuzz(func(t *testing.T, list string) {
		addrs, err := gomail.ParseAddressList(list)
		if err != nil || len(addrs) == 0 {
			return
		}
		for first := range AddressListElements(list) {
			a, err := gomail.ParseAddress(first)
			if err != nil || a.Name != addrs[0].Name || a.Address != addrs[0].Address {
				t.Fatalf("first element %q read as %v (%v), list's first address %v", first, a, err, addrs[0])
			}
			return
		}
		t.Fatalf("no element in %q, list of %d addresses", list, len(addrs))
	})
}

// TestParseFromOfALongList: the first address of a From is all the
// message keeps, and a list of 75,000 costs no more to parse than the
// same bytes in another field. Parsed whole, 975 KB of addresses cost 9 MB
// more.
func TestParseFromOfALongList(t *testing.T) {
	tests := []struct{ name, from, wantAddr string }{
		{"plain addresses", strings.TrimSuffix(strings.Repeat("a@x.example, ", 75_000), ", "), "a@x.example"},
		{"named addresses", strings.TrimSuffix(strings.Repeat(`"A" <a@x.example>, `, 50_000), ", "), "a@x.example"},
		{"one unclosed angle bracket", strings.Repeat("a@x.example <, ", 60_000), ""},
	}
	alloc := func(raw []byte) (*Message, uint64) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m := Parse(raw)
		runtime.ReadMemStats(&after)
		return m, after.TotalAlloc - before.TotalAlloc
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, got := alloc(crlf("From: " + tt.from + "\nSubject: x\n\nbody\n"))
			_, base := alloc(crlf("X-Filler: " + tt.from + "\nSubject: x\n\nbody\n"))
			if m.FromAddr != tt.wantAddr {
				t.Errorf("FromAddr %q, want %q", m.FromAddr, tt.wantAddr)
			}
			if got > base+1<<20 {
				t.Errorf("parsing a %d KB From allocated %d KB, the same in another field %d KB: want under 1 MB more", len(tt.from)>>10, got>>10, base>>10)
			}
		})
	}
}

// SimpleAddress, which spares most mail the address parser, may answer
// only what both parsers answer, and only where a list holds exactly that
// one address.
func FuzzSimpleAddressMatchesParser(f *testing.F) {
	for _, v := range []string{
		"alice@example.org", " <alice@Example.ORG> ", "Alice Smith <alice@example.org>", "\"Alice\" <alice@example.org>",
		"=?x-unknown?q?Alice?= <alice@example.org>", "A.B. <a.b@example.org>", ".. <a@b>", "a..b@example.org",
		"alice@example.org.", "alice @example.org", "alice@ example.org", "a@b, c@d", "a <b <c@d>", "<a@b> (comment)",
		"a@[192.0.2.1]", "Gr\u00fc\u00df <a@b.example>", "\ta\tb\t<a@b>\t", "x:y@z", "a@b>", "A  B <a@b>", "A B\t<a@b>",
	} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		name, addr, ok := SimpleAddress(v)
		if !ok {
			return
		}
		for parser, parse := range map[string]func(string) (*mail.Address, error){
			"net/mail": mail.ParseAddress,
			"go-message": func(v string) (*mail.Address, error) {
				a, err := gomail.ParseAddress(v)
				return (*mail.Address)(a), err
			},
		} {
			a, err := parse(v)
			if err != nil || a.Name != name || a.Address != addr {
				t.Fatalf("SimpleAddress(%q) = %q, %q; %s: %v, %v", v, name, addr, parser, a, err)
			}
		}
		if addrs, err := gomail.ParseAddressList(v); err != nil || len(addrs) != 1 {
			t.Fatalf("SimpleAddress(%q) = %q, the list parser %d addresses, err %v", v, addr, len(addrs), err)
		}
	})
}

func TestSimpleAddress(t *testing.T) {
	tests := []struct {
		v, name, addr string // addr "" for a value left to the parser
	}{
		{"alice@example.org", "", "alice@example.org"},
		{" <alice@Example.ORG> ", "", "alice@Example.ORG"},
		{"Alice Smith <alice@example.org>", "Alice Smith", "alice@example.org"},
		{"A.B.\t<a.b@example.org>", "A.B.", "a.b@example.org"},
		{"Alice  Smith <alice@example.org>", "", ""},
		{"\"Alice\" <alice@example.org>", "", ""},
		{"=?utf-8?q?Alice?= <alice@example.org>", "", ""},
		{"a..b@example.org", "", ""},
		{"alice@example.org.", "", ""},
		{"a@b, c@d", "", ""},
		{"alice@example.org (Alice)", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		name, addr, ok := SimpleAddress(tt.v)
		if ok != (tt.addr != "") || name != tt.name || addr != tt.addr {
			t.Errorf("SimpleAddress(%q) = %q, %q, %v, want %q, %q", tt.v, name, addr, ok, tt.name, tt.addr)
		}
	}
}

// atomsReference is atoms as first written (in package auth), searching
// the excluded characters for each byte.
func atomsReference(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < '!' || c > '~' || strings.IndexByte(`()<>[]:;@\,"`, c) >= 0 {
			return false
		}
	}
	return true
}

func FuzzAtomTableMatchesReference(f *testing.F) {
	for _, s := range []string{"", "alice@example.org", "a b", "x=y", "\x7f", "\xff", `"q"`, "~!#$%&'*+-/=?^_`{|}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := atoms(s), atomsReference(s); got != want {
			t.Fatalf("atoms(%q) = %v, reference %v", s, got, want)
		}
	})
}
