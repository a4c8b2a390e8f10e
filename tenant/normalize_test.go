package tenant

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/idna"
)

// normalizeByIDNA is NormalizeDomain without the lowerLDH fast path: the
// reference the fast path must agree with.
func normalizeByIDNA(name string) (string, error) {
	name = trimRootDot(strings.TrimSpace(name))
	if name == "" {
		return "", fmt.Errorf("empty domain name")
	}
	ascii, err := idna.Lookup.ToASCII(name)
	if err != nil {
		return "", fmt.Errorf("invalid domain name %q: %w", name, err)
	}
	if !strings.Contains(ascii, ".") {
		return "", fmt.Errorf("invalid domain name %q: not fully qualified", name)
	}
	if slices.Contains(strings.Split(ascii, "."), "") {
		return "", fmt.Errorf("invalid domain name %q: empty label", name)
	}
	return strings.ToLower(ascii), nil
}

var normalizeSeeds = []string{
	"example.org", "Example.ORG", "mail-1.example.org", "EXämple.org",
	"xn--exmple-cua.org", "XN--EXMPLE-CUA.ORG", "xn--a.org", "ab--c.org",
	"abc--d.org", "-a.org", "a-.org", "a..b", ".a.b", "a.b.", "a.b..", ".",
	"a", "a_b.org", "a b.org", " a.org ", "1.2.3.4", "a.-", "a.b-", "a.--",
	"xn--.org", "xn--ls8h.la", "ﬀ.org", "a\u00adb.org", "\u00ad.org",
	strings.Repeat("a", 64) + ".org", "a.b\uff0e", "a.b\u3002", "a.b\uff61",
	"a.b\u3002.", "a.b.\u3002", "\u3002",
}

func checkNormalize(t *testing.T, name string) {
	t.Helper()
	if fast, ok := lowerLDH(name); ok {
		ref, err := idna.Lookup.ToASCII(name)
		if err != nil || ref != fast {
			t.Errorf("lowerLDH(%q) = %q, idna = %q, %v", name, fast, ref, err)
		}
	}
	got, gotErr := NormalizeDomain(name)
	want, wantErr := normalizeByIDNA(name)
	if got != want || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Errorf("NormalizeDomain(%q) = %q, %v; by idna %q, %v", name, got, gotErr, want, wantErr)
	}
}

func TestNormalizeDomainMatchesIDNA(t *testing.T) {
	for _, name := range normalizeSeeds {
		checkNormalize(t, name)
	}
}

func FuzzNormalizeDomain(f *testing.F) {
	for _, name := range normalizeSeeds {
		f.Add(name)
	}
	f.Fuzz(checkNormalize)
}

// A trailing dot is the root's in each spelling IDNA maps to ".", as the
// ASCII one is, and only one is dropped.
func TestNormalizeDomainTrailingDots(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"example.org.", "example.org"},
		{"example.org\uff0e", "example.org"},
		{"B\u00fccher.example\u3002", "xn--bcher-kva.example"},
		{"example.org\uff61", "example.org"},
		{"example\u3002org\u3002", "example.org"},
		{"example.org\u3002.", ""},
		{"example.org..", ""},
		{"\uff0e", ""},
	} {
		got, err := NormalizeDomain(tt.name)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func BenchmarkNormalizeDomain(b *testing.B) {
	for b.Loop() {
		if _, err := NormalizeDomain("Mail.Example.org"); err != nil {
			b.Fatal(err)
		}
	}
}
