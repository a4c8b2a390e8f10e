package cluster

import (
	"bytes"
	"testing"
)

func TestBroadcastWire(t *testing.T) {
	whole := encodeBroadcast(42, "node-a", "tenants", []byte("v=7"))
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"whole", whole, true},
		{"empty payload", encodeBroadcast(1, "n", "t", nil), true},
		{"empty", nil, false},
		{"another message type", append([]byte{msgBroadcast + 1}, whole[1:]...), false},
		{"id cut", whole[:5], false},
		{"sender cut", whole[:11], false},
		// A length of 2^63 must not become a negative slice bound.
		{"huge length", append(append([]byte{}, whole[:9]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 'x'), false},
		{"unterminated length", append(append([]byte{}, whole[:9]...), 0x80), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, from, topic, payload, err := decodeBroadcast(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("decodeBroadcast: err = %v, want ok %v", err, tt.ok)
			}
			if tt.name == "whole" && (id != 42 || from != "node-a" || topic != "tenants" || string(payload) != "v=7") {
				t.Errorf("decodeBroadcast = %d %q %q %q", id, from, topic, payload)
			}
		})
	}
}

// FuzzDecodeBroadcast: gossip bytes come from the network. Whatever
// decodes has the payload as the message's tail, and its fields survive an
// encoding unchanged (the bytes themselves may differ: a varint may be
// sent longer than needed).
func FuzzDecodeBroadcast(f *testing.F) {
	f.Add(encodeBroadcast(42, "node-a", "tenants", []byte("v=7")))
	f.Add([]byte{msgBroadcast, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, from, topic, payload, err := decodeBroadcast(b)
		if err != nil {
			return
		}
		if !bytes.HasSuffix(b, payload) || len(from)+len(topic)+len(payload) > len(b) {
			t.Fatalf("decoded %x as (%q, %q, %x): more than was sent", b, from, topic, payload)
		}
		id2, from2, topic2, payload2, err := decodeBroadcast(encodeBroadcast(id, from, topic, payload))
		if err != nil || id2 != id || from2 != from || topic2 != topic || !bytes.Equal(payload2, payload) {
			t.Fatalf("(%d, %q, %q, %x) came back as (%d, %q, %q, %x), %v", id, from, topic, payload, id2, from2, topic2, payload2, err)
		}
	})
}
