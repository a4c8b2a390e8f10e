package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
	"github.com/mxgrid/mxgrid/internal/nodetest"
)

// TestAuthSMTP runs a node whose resolver points at a loopback DNS server: the
// relayed message carries our Authentication-Results, and a domain that
// enforces DMARC refuses a p=reject failure while another only weighs it.
func TestAuthSMTP(t *testing.T) {
	dns := dnstest.Start(t)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	dns.AddTXT("sender.test", "v=spf1 ip4:127.0.0.1 -all")
	dns.AddTXT("_dmarc.sender.test", "v=DMARC1; p=reject")
	dns.AddTXT("sel._domainkey.sender.test", "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
	dns.AddTXT("forger.test", "v=spf1 -all")
	dns.AddTXT("_dmarc.forger.test", "v=DMARC1; p=reject")

	n, sink := nodetest.StartWithSink(t, func(cfg *config.Config) {
		enforce := true
		strict := nodetest.Domain("strict.example", cfg.Domains[0].Route)
		strict.DMARCEnforce = &enforce
		cfg.Domains = append(cfg.Domains, strict)
		cfg.DNS.Server = dns.Addr
		cfg.Auth.SPF, cfg.Auth.DKIM, cfg.Auth.DMARC = true, true, true
	})

	signed := func(from string) string {
		raw := "From: " + from + "\r\nTo: bob@example.org\r\nSubject: hi\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@sender.test>\r\n\r\nHello.\r\n"
		var out bytes.Buffer
		if err := dkim.Sign(&out, strings.NewReader(raw), &dkim.SignOptions{Domain: "sender.test", Selector: "sel", Signer: key}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	tests := []struct {
		name, from, rcpt, msg string
		wantCode              int
		wantAR                []string
	}{
		{
			name: "authenticated", from: "alice@sender.test", rcpt: "bob@example.org", msg: signed("alice@sender.test"), wantCode: 250,
			wantAR: []string{"Authentication-Results: mx.test; spf=pass smtp.mailfrom=alice@sender.test; ",
				"dkim=pass header.d=sender.test", "dmarc=pass (p=reject) header.from=sender.test"},
		},
		{
			name: "DMARC failure at a non-enforcing domain", from: "ceo@forger.test", rcpt: "bob@example.org",
			msg: "From: ceo@forger.test\r\nTo: bob@example.org\r\nSubject: lunch\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n" +
				"Message-ID: <2@forger.test>\r\n\r\nAre we still on for lunch on Thursday? I booked the usual place.\r\n", wantCode: 250,
			wantAR: []string{"spf=fail smtp.mailfrom=ceo@forger.test", "dmarc=fail (p=reject dis=reject) header.from=forger.test"},
		},
		{
			name: "DMARC failure at an enforcing domain", from: "ceo@forger.test", rcpt: "bob@strict.example",
			msg: "From: ceo@forger.test\r\nSubject: wire\r\n\r\npay now\r\n", wantCode: 550,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(sink.Messages())
			code, text := smtpSend(t, n.SMTPAddr(), tt.from, tt.rcpt, tt.msg)
			if code != tt.wantCode {
				t.Fatalf("reply %d %s, want %d", code, text, tt.wantCode)
			}
			msgs := sink.Messages()
			if tt.wantCode != 250 {
				if len(msgs) != before {
					t.Errorf("a refused message reached the downstream server")
				}
				if !strings.Contains(text, "DMARC") {
					t.Errorf("reply %q does not say DMARC", text)
				}
				return
			}
			got := string(msgs[len(msgs)-1].Data)
			for _, ar := range tt.wantAR {
				if !strings.Contains(authUnfold(got), ar) {
					t.Errorf("relayed header lacks %q:\n%s", ar, got)
				}
			}
			if c := strings.Count(got, "Authentication-Results:"); c != 1 {
				t.Errorf("%d Authentication-Results fields, want 1", c)
			}
		})
	}
}

func authUnfold(s string) string { return strings.ReplaceAll(s, "\r\n\t", " ") }
