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

// TestKeyRecordKeywordsInAnyCase: k=, h=, s= and t= compare without
// case, as OpenDKIM's; upstream refused k=RSA as an unsupported
// algorithm, and read h=SHA256 as naming no hash it knew.
func TestKeyRecordKeywordsInAnyCase(t *testing.T) {
	p := strings.TrimPrefix(dnsPublicKey, "v=DKIM1; p=")
	res, err := parsePublicKey("v=DKIM1; k=RSA; h=SHA256; s=EMAIL; t=Y; p=" + p)
	if err != nil {
		t.Fatal(err)
	}
	if res.KeyAlgo != "rsa" || strings.Join(res.HashAlgos, ",") != "sha256" ||
		strings.Join(res.Services, ",") != "email" || strings.Join(res.Flags, ",") != "y" {
		t.Errorf("got %s, h=%v, s=%v, t=%v", res.KeyAlgo, res.HashAlgos, res.Services, res.Flags)
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
