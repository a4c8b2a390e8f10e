package notify

import (
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/quarantine"
)

// TestComposeBrandStaysADisplayName: the reseller's name is the From
// field's display name whatever it holds; before, an ASCII name went in
// unquoted, so `Support <ceo@bank.example>, x` made the digest come from
// ceo@bank.example through the operator's smarthost.
func TestComposeBrandStaysADisplayName(t *testing.T) {
	d := &Digests{cfg: Config{From: "digest@mx.example", LinkTTL: time.Hour}, keys: [][]byte{[]byte("k")},
		baseURL: "https://mx.example", hostname: "mx.example", now: time.Now}
	items := []quarantine.Item{{ID: 1, Time: time.Now(), Sender: "s@x.example", Subject: "hi"}}
	for _, brand := range []string{`Support <ceo@bank.example>, x`, `a"b, <c@d.example>`, `Grüße; group:`, "plain", ""} {
		msg, err := mail.ReadMessage(strings.NewReader(string(d.compose("rcpt@a.example", brand, items))))
		if err != nil {
			t.Fatalf("%q: %v", brand, err)
		}
		from, err := mail.ParseAddressList(msg.Header.Get("From"))
		if err != nil || len(from) != 1 || from[0].Address != "digest@mx.example" {
			t.Errorf("brand %q: From %q parses as %v (%v), want digest@mx.example alone", brand, msg.Header.Get("From"), from, err)
		}
	}
}

// TestComposeHostileSubjectStaysOneLine: a held message's subject and
// sender are the sender's text; one that holds a Unicode line separator
// or a bidirectional override cannot start a line of its own (a fake
// "Release:" link under a mail client that breaks lines there) nor run
// the digest's own text backwards.
func TestComposeHostileSubjectStaysOneLine(t *testing.T) {
	d := &Digests{cfg: Config{From: "digest@mx.example", LinkTTL: time.Hour}, keys: [][]byte{[]byte("k")},
		baseURL: "https://mx.example", hostname: "mx.example", now: time.Now}
	items := []quarantine.Item{{ID: 1, Time: time.Now(), Sender: "s@x.example\u202e",
		Subject: "Invoice\u2028  Release: https://evil.example/q/release/x\u2029\u2066"}}
	msg := string(d.compose("rcpt@a.example", "R", items))
	for _, r := range []rune{0x2028, 0x2029, 0x202e, 0x2066} {
		if strings.ContainsRune(msg, r) {
			t.Errorf("the digest holds U+%04X:\n%q", r, msg)
		}
	}
}
