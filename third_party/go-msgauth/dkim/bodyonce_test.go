package dkim

import (
	"bytes"
	"io"
	"strings"
	"sync/atomic"
	"testing"
)

// countingCanonicalizer counts the bodies canonicalized through it.
type countingCanonicalizer struct {
	canonicalizer
	bodies *atomic.Int32
}

func (c countingCanonicalizer) CanonicalizeBody(w io.Writer) io.WriteCloser {
	c.bodies.Add(1)
	return c.canonicalizer.CanonicalizeBody(w)
}

// TestBodyIsHashedOncePerCanonicalization: with SHA-256 the only hash and
// l= refused, signatures of one body canonicalization share one body hash.
// Hashed per signature, max_signatures (5) signatures from a sender's own
// key made it read a 24 MB body five times, over a second of CPU.
func TestBodyIsHashedOncePerCanonicalization(t *testing.T) {
	raw := []byte(mailString)
	for _, can := range []Canonicalization{CanonicalizationRelaxed, CanonicalizationRelaxed, CanonicalizationRelaxed, CanonicalizationSimple, CanonicalizationSimple} {
		var b bytes.Buffer
		if err := Sign(&b, bytes.NewReader(raw), &SignOptions{Domain: "example.org", Selector: "brisbane", Signer: testPrivateKey, BodyCanonicalization: can}); err != nil {
			t.Fatal(err)
		}
		raw = b.Bytes()
	}
	var bodies atomic.Int32
	for _, can := range []Canonicalization{CanonicalizationRelaxed, CanonicalizationSimple} {
		can, orig := can, canonicalizers[can]
		canonicalizers[can] = countingCanonicalizer{orig, &bodies}
		defer func() { canonicalizers[can] = orig }()
	}
	verifs, err := Verify(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(verifs) != 5 {
		t.Fatalf("%d verifications, want 5", len(verifs))
	}
	for i, v := range verifs {
		if v.Err != nil {
			t.Errorf("signature %d: %v", i, v.Err)
		}
	}
	if n := bodies.Load(); n != 2 {
		t.Errorf("the body was canonicalized %d times for 5 signatures of two canonicalizations, want 2", n)
	}

	// A body that does not match fails each signature, whichever
	// canonicalization it names.
	verifs, err = Verify(strings.NewReader(string(raw) + "more\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range verifs {
		if !isFail(v.Err) {
			t.Errorf("signature %d of a changed body: %v, want a failure", i, v.Err)
		}
	}
}
