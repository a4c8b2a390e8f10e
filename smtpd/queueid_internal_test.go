package smtpd

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// TestQueueIDsStartWithTheTime: an id is 13 characters of the alphabet the
// /why page accepts, its first 32 bits are the time in 2^22 ns units (so
// the message log's index on it grows at one end), and the random half
// keeps ids made in the same instant apart.
func TestQueueIDsStartWithTheTime(t *testing.T) {
	const alphabet = "0123456789BCDFGHJKLMNPQRSTVWXYZA"
	seen := map[string]bool{}
	for range 1000 {
		before := uint32(time.Now().UnixNano() >> 22)
		id := newQueueID()
		after := uint32(time.Now().UnixNano() >> 22)
		if len(id) != 13 || strings.Trim(id, alphabet) != "" {
			t.Fatalf("queue id %q: want 13 characters of %s", id, alphabet)
		}
		b, err := queueIDEncoding.DecodeString(id)
		if err != nil || len(b) != 8 {
			t.Fatalf("queue id %q does not decode to 8 bytes: %v", id, err)
		}
		if at := binary.BigEndian.Uint32(b[:4]); at-before > after-before {
			t.Fatalf("queue id %q carries time %d, made between %d and %d", id, at, before, after)
		}
		if seen[id] {
			t.Fatalf("queue id %q made twice", id)
		}
		seen[id] = true
	}
}
