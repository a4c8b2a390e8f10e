package auth

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
)

// maxRSABits bounds the RSA keys DKIM and ARC verify: RFC 8301 §3.2 asks
// verifiers to handle 1024 to 4096 bits. The key comes from the sender's
// own DNS, and RSA's cost grows with its size and ignores the scan's
// deadline: a 256k-bit key cost 2.8 s of CPU per message, a 380k-bit ARC
// key 6.2 s, on every connection that sent one.
const maxRSABits = 4096

var errKeyTooLarge = errors.New("RSA key over 4096 bits")

// checkRSAKeySize fails for a DER public key (SubjectPublicKeyInfo, or
// PKCS #1 as some DKIM records hold) that is an RSA key over maxRSABits.
// Parsing costs no RSA operation; anything else is left to the verifier.
func checkRSAKeySize(der []byte) error {
	var k *rsa.PublicKey
	if pk, err := x509.ParsePKIXPublicKey(der); err == nil {
		k, _ = pk.(*rsa.PublicKey)
	} else if pk, err := x509.ParsePKCS1PublicKey(der); err == nil {
		k = pk
	}
	if k != nil && k.N.BitLen() > maxRSABits {
		return errKeyTooLarge
	}
	return nil
}

// boundedKeyLookup wraps a DKIM key lookup: a record whose p= is an RSA key
// over maxRSABits is answered with an error, which go-msgauth reports as a
// permanent failure ("no key for signature") before verifying anything.
func boundedKeyLookup(lookup func(string) ([]string, error)) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		txts, err := lookup(name)
		if err != nil {
			return txts, err
		}
		p := parseTags(strings.Join(txts, ""))["p"]
		if der, derr := base64.StdEncoding.DecodeString(p); derr == nil {
			if err := checkRSAKeySize(der); err != nil {
				return nil, err
			}
		}
		return txts, nil
	}
}
