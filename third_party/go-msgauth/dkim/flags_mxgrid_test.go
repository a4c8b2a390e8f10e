package dkim

import (
	"bytes"
	"strings"
	"testing"
)

// TestKeyFlags: the key record's t= flags (RFC 6376 3.6.1) count. t=y
// marks the verification as testing, whatever its outcome; t=s refuses an
// i= in a subdomain of d=. i= and d= compare without case.
func TestKeyFlags(t *testing.T) {
	for _, tc := range []struct {
		name, selector, identifier string
		testing, permFail          bool
	}{
		{"no flags", "brisbane", "", false, false},
		{"no flags, i= in another case", "brisbane", "joe@Mail.EXAMPLE.org", false, false},
		{"testing", "testing", "", true, false},
		{"strict, i= at d=", "strict", "joe@example.org", false, false},
		{"strict, i= at d= in another case", "strict", "@Example.ORG", false, false},
		{"strict, i= in a subdomain", "strict", "joe@mail.example.org", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Sign(&b, strings.NewReader(mailString), &SignOptions{
				Domain: "example.org", Selector: tc.selector, Identifier: tc.identifier, Signer: testPrivateKey,
			}); err != nil {
				t.Fatal(err)
			}
			verifs, err := Verify(&b)
			if err != nil || len(verifs) != 1 {
				t.Fatalf("Verify: %d verifications, %v", len(verifs), err)
			}
			v := verifs[0]
			if v.Testing != tc.testing {
				t.Errorf("Testing = %v, want %v", v.Testing, tc.testing)
			}
			if got := v.Err != nil && IsPermFail(v.Err); got != tc.permFail || !tc.permFail && v.Err != nil {
				t.Errorf("Err = %v, want a permanent failure: %v", v.Err, tc.permFail)
			}
		})
	}
}
