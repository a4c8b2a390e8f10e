package dkim

import (
	"strings"
	"testing"
)

// TestKeyDataWithFoldingWhiteSpace: RFC 6376 3.6.1 allows FWS between
// the base64 characters of p=; upstream removed only spaces, and a key
// published with a tab was a permanent failure, its domain's mail
// failing DMARC.
func TestKeyDataWithFoldingWhiteSpace(t *testing.T) {
	p := strings.TrimPrefix(dnsPublicKey, "v=DKIM1; p=")
	for _, sep := range []string{" ", "\t", "\r\n\t", " \t "} {
		rec := "v=DKIM1; p=" + p[:20] + sep + p[20:40] + sep + p[40:]
		if _, err := parsePublicKey(rec); err != nil {
			t.Errorf("p= split by %q: %v", sep, err)
		}
	}
}

// FuzzKeyDataIgnoresFoldingWhiteSpace: FWS anywhere in p= changes
// nothing of what the key record is.
func FuzzKeyDataIgnoresFoldingWhiteSpace(f *testing.F) {
	f.Add(strings.TrimPrefix(dnsPublicKey, "v=DKIM1; p="), uint(7), "\t")
	f.Add(strings.TrimPrefix(dnsEd25519PublicKey, "v=DKIM1; k=ed25519; p="), uint(3), "\r\n ")
	f.Add("", uint(0), " ")
	f.Fuzz(func(t *testing.T, p string, at uint, fws string) {
		if strings.Trim(fws, " \t\r\n") != "" || strings.ContainsRune(p, ';') {
			return
		}
		i := int(at % uint(len(p)+1))
		a, errA := parsePublicKey("v=DKIM1; p=" + p)
		b, errB := parsePublicKey("v=DKIM1; p=" + p[:i] + fws + p[i:])
		if (errA == nil) != (errB == nil) {
			t.Fatalf("p=%q: %v; with %q at %d: %v", p, errA, fws, i, errB)
		}
		if errA == nil && a.KeyAlgo != b.KeyAlgo {
			t.Fatalf("p=%q: %v; with %q at %d: %v", p, a.KeyAlgo, fws, i, b.KeyAlgo)
		}
	})
}
