package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	oldKey, newKey := []byte("old key 0123456789abcdef0123456"), []byte("new key 0123456789abcdef0123456")
	l := Link{Action: ActionRelease, ItemID: 42, Recipient: `"b|o|b"@a.example`, Expires: now.Add(time.Hour)}
	tok := Sign(l, oldKey)
	if got, err := Parse(tok, [][]byte{newKey, oldKey}, now); err != nil || got != l {
		t.Fatalf("rotated keys: %+v %v", got, err)
	}
	if _, err := Parse(tok, [][]byte{newKey}, now); !errors.Is(err, ErrTampered) {
		t.Fatalf("dropped key: %v", err)
	}
	if _, err := Parse(tok, [][]byte{oldKey}, now.Add(time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	optOut := Link{Action: ActionOptOut, ItemID: 7, CustomerID: 3, Recipient: "bob@a.example", Expires: now.Add(time.Hour)}
	for _, ol := range []Link{optOut, {Action: ActionOptOut, Recipient: "bob@static.example", Expires: now.Add(time.Hour)}} {
		if got, err := Parse(Sign(ol, oldKey), [][]byte{oldKey}, now); err != nil || got != ol {
			t.Fatalf("an opt-out naming its domain and customer: %+v %v", got, err)
		}
	}
	// An opt-out signed before they named their domain: v1.
	v1 := "v1|optout|0|" + base64.RawURLEncoding.EncodeToString([]byte("bob@a.example")) + "|" + strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	m := hmac.New(sha256.New, oldKey)
	m.Write([]byte(v1))
	if _, err := Parse(base64.RawURLEncoding.EncodeToString([]byte(v1))+"."+base64.RawURLEncoding.EncodeToString(m.Sum(nil)),
		[][]byte{oldKey}, now); !errors.Is(err, ErrExpired) {
		t.Fatalf("an opt-out of before it named its domain: %v, want ErrExpired", err)
	}
	other := Sign(Link{Action: ActionRelease, ItemID: 43, Recipient: "bob@a.example", Expires: now.Add(time.Hour)}, oldKey)
	// Another item's signature on this payload, a flipped character.
	for _, bad := range []string{tok[:len(tok)/2] + other[len(other)/2:], tok[:10] + "A" + tok[11:], tok + "x", "", "a.b", "....", string(make([]byte, 2000))} {
		if bad == tok {
			continue
		}
		if _, err := Parse(bad, [][]byte{oldKey}, now); !errors.Is(err, ErrTampered) {
			t.Errorf("Parse(%.40q) = %v, want tampered", bad, err)
		}
	}
}

// FuzzParseToken: anything is refused or is a link that signs back to a
// token of the same meaning.
func FuzzParseToken(f *testing.F) {
	key := []byte("fuzz key 0123456789abcdef012345")
	f.Add(Sign(Link{Action: ActionOptOut, ItemID: 7, CustomerID: 3, Recipient: "a@b.example", Expires: time.Unix(2e9, 0)}, key))
	f.Add("djE.abc")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Parse(s, [][]byte{key}, time.Unix(1e9, 0))
		if err != nil {
			return
		}
		if again, err := Parse(Sign(l, key), [][]byte{key}, time.Unix(1e9, 0)); err != nil || again != l {
			t.Fatalf("%q -> %+v -> %+v %v", s, l, again, err)
		}
	})
}
