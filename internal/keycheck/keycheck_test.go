package keycheck

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestKeyProblem(t *testing.T) {
	decode := func(s string) []byte {
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	tests := []struct {
		name string
		key  []byte
		weak bool
	}{
		{"random", decode("7hD0kqjrD2tmCUmXO4AdJC/I0g9reiS9X1/fUDQGy4Y="), false},
		{"all A", decode(strings.Repeat("A", 43) + "="), true},
		{"one byte repeated", bytes.Repeat([]byte{0x9c}, 16), true},
		{"pattern repeated", bytes.Repeat([]byte{1, 200, 3, 250, 5, 160, 7, 8}, 4), true},
		{"hex digits", []byte("0123456789abcdef0123456789abcdef"), true},
		{"passphrase", []byte("correct horse battery staple!!!!"), true},
		{"published", decode(published[0]), true},
		{"empty", nil, true},
		{"512 random bytes", randomBytes(512), false},
		{"4096 random bytes", randomBytes(4096), false},
		{"512 bytes of 64 different", sixBits(randomBytes(512)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := KeyProblem(tt.key)
			if (err != nil) != tt.weak {
				t.Errorf("KeyProblem = %v, want weak=%v", err, tt.weak)
			}
		})
	}
}

func TestTextProblem(t *testing.T) {
	tests := []struct {
		name string
		text string
		weak bool
	}{
		{"base64 of 32 random bytes", "7hD0kqjrD2tmCUmXO4AdJC/I0g9reiS9X1/fUDQGy4Y=", false},
		{"hex of 16 random bytes", "9f2c41d07be35a8e6c10f4b92d7a3e58", false},
		{"hex of 32 random bytes", "3b7e0c9a12f45d6e8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5", false},
		{"a sentence without spaces", "ourclusteroperatortokenpleasekeepitsafe", false},
		{"one character", strings.Repeat("a", 40), true},
		{"two characters", strings.Repeat("ab", 20), true},
		{"a word repeated", strings.Repeat("password", 5), true},
		{"a pattern repeated, cut short", strings.Repeat("s3cr3t!x", 5)[:37], true},
		{"seven characters in a long run", "aabbccddeeffgg" + strings.Repeat("abcdefg", 4) + "gfedcba", true},
		{"published gossip key", published[0], true},
		{"empty", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := TextProblem(tt.text)
			if (err != nil) != tt.weak {
				t.Errorf("TextProblem = %v, want weak=%v", err, tt.weak)
			}
		})
	}
}

// randomBytes are n bytes of a fixed seed's stream, as random to KeyProblem
// as crypto/rand's and the same on every run.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{'m', 'x'}).Read(b)
	return b
}

func sixBits(b []byte) []byte {
	for i := range b {
		b[i] &= 0x3f
	}
	return b
}

// FuzzKeyProblem: a key that passes has at least half distinct bytes (128
// for a longer one than 256), no
// repeating period and is not all printable; KeyProblem never panics.
func FuzzKeyProblem(f *testing.F) {
	f.Add([]byte("AAAAAAAAAAAAAAAA"))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 255})
	f.Fuzz(func(t *testing.T, k []byte) {
		if KeyProblem(k) != nil {
			return
		}
		distinct := map[byte]bool{}
		printable := true
		for _, c := range k {
			distinct[c] = true
			printable = printable && c >= 0x20 && c <= 0x7e
		}
		if len(distinct) < min(len(k)/2, 128) || printable {
			t.Fatalf("weak key %x passed", k)
		}
		if p := period(k); p > 0 {
			t.Fatalf("key %x repeating every %d bytes passed", k, p)
		}
	})
}

// FuzzTextProblem: text that passes has at least minTextDistinct different
// characters and no repeating period.
func FuzzTextProblem(f *testing.F) {
	f.Add("passwordpasswordpassword")
	f.Add("9f2c41d07be35a8e6c10f4b92d7a3e58")
	f.Fuzz(func(t *testing.T, s string) {
		if TextProblem(s) != nil {
			return
		}
		distinct := map[byte]bool{}
		for _, c := range []byte(s) {
			distinct[c] = true
		}
		if len(distinct) < minTextDistinct {
			t.Fatalf("%q of %d different characters passed", s, len(distinct))
		}
		if p := period([]byte(s)); p > 0 {
			t.Fatalf("%q repeating every %d passed", s, p)
		}
	})
}

// period is the shortest period of at most half of k's length, or 0.
func period(k []byte) int {
	for p := 1; p <= len(k)/2; p++ {
		if bytes.Equal(k[p:], k[:len(k)-p]) {
			return p
		}
	}
	return 0
}
