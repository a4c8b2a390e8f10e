package scanner

import (
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
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
		addrs, err := mail.ParseAddressList(list)
		if err != nil || len(addrs) == 0 {
			return
		}
		for first := range AddressListElements(list) {
			a, err := mail.ParseAddress(first)
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
