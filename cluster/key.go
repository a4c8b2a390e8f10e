package cluster

import (
	"crypto/rand"
	"encoding/base64"
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
