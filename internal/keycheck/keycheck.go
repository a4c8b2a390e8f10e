// Package keycheck refuses secrets that people type instead of generate:
// a key that signs release links or guards gossip, a token with operator
// rights. Length alone lets "AAAA…" or a phrase through.
package keycheck

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
)

// published were once committed to the repository or printed in its docs:
// anyone can read them, so they protect nothing.
var published = []string{
	"wFO+Ih3ttZ+Gjy1i346B073bJ6CPdKsA68DZrXMYluM=", // deploy/config/gossip.key before it was generated at first start
}

// ErrWeak marks a secret refused for what it is, not for its format.
var ErrWeak = errors.New("weak key")

// KeyProblem says why decoded key bytes are not fit to guard gossip beyond
// loopback or to sign digest links (notify.link_keys), or nil. It catches
// published keys, runs of one byte ("AAAA…"), keys of few different bytes
// (under half, or 128), repeated patterns, and keys
// that are all printable text (a passphrase, hex, "0123…"), which 32 random
// bytes are with odds of about 1 in 10^14.
func KeyProblem(k []byte) error {
	for _, p := range published {
		if raw, _ := base64.StdEncoding.DecodeString(p); bytes.Equal(raw, k) {
			return fmt.Errorf("%w: this key is published in mxgrid's repository; generate one with `mxgrid keygen`", ErrWeak)
		}
	}
	if len(k) == 0 {
		return fmt.Errorf("%w: empty", ErrWeak)
	}
	if err := patternProblem(k, min(len(k)/2, maxKeyDistinct), "bytes"); err != nil {
		return fmt.Errorf("%w; generate one with `mxgrid keygen`", err)
	}
	if !bytes.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return fmt.Errorf("%w: it is printable text, not random bytes; generate one with `mxgrid keygen`", ErrWeak)
	}
	return nil
}

// maxKeyDistinct caps the half of a key's bytes that must differ: n random
// bytes hold about 256(1-e^(-n/256)) different values, fewer than n/2 from
// about 400 on (a 512-byte key, 224), so longer generated keys were all
// refused. 128 is about seven standard deviations under a random key's count at
// 256 bytes, where the cap starts to matter.
const maxKeyDistinct = 128

// minTextDistinct is the fewest different characters a text secret of 32
// or more may hold: 32 random hex digits hold fewer than 8 with odds of
// about 1 in 30 million, any wider alphabet less often still.
const minTextDistinct = 8

// TextProblem says why a secret kept as text (an operator token, the
// panel's session key) is one typed rather than generated, or nil: a run
// of one character, a short repeated pattern ("passwordpassword…"), a
// published key. It cannot judge a phrase; its length was checked before.
func TextProblem(s string) error {
	for _, p := range published {
		if s == p {
			return fmt.Errorf("%w: this key is published in mxgrid's repository", ErrWeak)
		}
	}
	if s == "" {
		return fmt.Errorf("%w: empty", ErrWeak)
	}
	return patternProblem([]byte(s), minTextDistinct, "characters")
}

func patternProblem(k []byte, minDistinct int, unit string) error {
	var distinct [256]bool
	n := 0
	for _, c := range k {
		if !distinct[c] {
			distinct[c] = true
			n++
		}
	}
	if n < minDistinct {
		return fmt.Errorf("%w: only %d different %s in %d", ErrWeak, n, unit, len(k))
	}
	for period := 1; period <= len(k)/2; period++ {
		if bytes.Equal(k[period:], k[:len(k)-period]) {
			return fmt.Errorf("%w: repeats every %d %s", ErrWeak, period, unit)
		}
	}
	return nil
}
