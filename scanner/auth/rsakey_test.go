package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
)

// fakeRSAKey is a public key of the given size that no private key
// matches: enough for a size check, cheap to make at any size.
func fakeRSAKey(bits int) *rsa.PublicKey {
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	return &rsa.PublicKey{N: n.Add(n, big.NewInt(1)), E: 65537}
}

func TestCheckRSAKeySize(t *testing.T) {
	pkix := func(k any) []byte {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	rsaOnce.Do(func() { rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048) })
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name string
		der  []byte
		want error
	}{
		{"2048-bit key", pkix(&rsaKey.PublicKey), nil},
		{"4096 bits, the largest RFC 8301 asks for", pkix(fakeRSAKey(4096)), nil},
		{"4097 bits", pkix(fakeRSAKey(4097)), errKeyTooLarge},
		{"16384 bits", pkix(fakeRSAKey(16384)), errKeyTooLarge},
		{"16384 bits, PKCS #1", x509.MarshalPKCS1PublicKey(fakeRSAKey(16384)), errKeyTooLarge},
		{"ed25519", pkix(edPub), nil},
		{"not a key", []byte("garbage"), nil},
	} {
		if got := checkRSAKeySize(tc.der); !errors.Is(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
