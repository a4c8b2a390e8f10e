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
