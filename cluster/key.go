package cluster

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// NewKey returns a fresh random 32-byte gossip key, base64-encoded as
// cluster.secret_key wants it (`mxgrid keygen`).
func NewKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("gossip key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}

// publishedKeys were once committed to the repository or printed in its
// docs: anyone can read them, so they protect nothing.
var publishedKeys = []string{
	"wFO+Ih3ttZ+Gjy1i346B073bJ6CPdKsA68DZrXMYluM=", // deploy/config/gossip.key before it was generated at first start
}

// errWeakKey marks a key refused for what it is, not for its format.
var errWeakKey = errors.New("weak key")

// KeyProblem says why a decoded key is not fit to guard gossip beyond
// loopback, or to sign digest links (notify.link_keys), or nil. It catches what people type instead of generating:
// published keys, runs of one byte ("AAAA…"), repeated patterns, and keys
// that are all printable text (a passphrase, hex, "0123…"), which 32 random
// bytes are with odds of about 1 in 10^14.
func KeyProblem(k []byte) error {
	for _, p := range publishedKeys {
		if raw, _ := base64.StdEncoding.DecodeString(p); bytes.Equal(raw, k) {
			return fmt.Errorf("%w: this key is published in mxgrid's repository; generate one with `mxgrid keygen`", errWeakKey)
		}
	}
	if len(k) == 0 {
		return fmt.Errorf("%w: empty", errWeakKey)
	}
	distinct := map[byte]bool{}
	printable := true
	for _, c := range k {
		distinct[c] = true
		if c < 0x20 || c > 0x7e {
			printable = false
		}
	}
	if len(distinct) < len(k)/2 {
		return fmt.Errorf("%w: only %d different bytes in %d; generate one with `mxgrid keygen`", errWeakKey, len(distinct), len(k))
	}
	for period := 1; period <= len(k)/2; period++ {
		if bytes.Equal(k[period:], k[:len(k)-period]) {
			return fmt.Errorf("%w: repeats every %d bytes; generate one with `mxgrid keygen`", errWeakKey, period)
		}
	}
	if printable {
		return fmt.Errorf("%w: it is printable text, not random bytes; generate one with `mxgrid keygen`", errWeakKey)
	}
	return nil
}
