package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/dnsresolver"
	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
	"github.com/mxgrid/mxgrid/scanner"
)

// world is a loopback DNS server with the records of a few test domains,
// and the keys that sign for them.
type world struct {
	srv     *dnstest.Server
	res     *dnsresolver.Cached
	edKey   ed25519.PrivateKey
	rsaKey  *rsa.PrivateKey
	discard *slog.Logger
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func newWorld(t testing.TB) *world {
	t.Helper()
	srv := dnstest.Start(t)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaOnce.Do(func() { rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048) })
	w := &world{srv: srv, edKey: ed, rsaKey: rsaKey, discard: slog.New(slog.NewTextHandler(io.Discard, nil))}

	srv.AddTXT("example.org", "v=spf1 ip4:192.0.2.10 a:mail.example.org -all")
	srv.AddA("mail.example.org", "198.51.100.25")
	srv.AddTXT("mail.example.org", "v=spf1 a -all")
	srv.AddTXT("soft.example", "v=spf1 ip4:192.0.2.99 ~all")
	srv.AddTXT("neutral.example", "v=spf1 ?all")
	srv.AddTXT("broken-spf.example", "v=spf1 foo:bar -all")
	srv.ServFail("servfail.example")
	srv.Silent("slow.example")
	srv.AddTXT("_dmarc.slow.example", "v=DMARC1; p=reject")

	pub := base64.StdEncoding.EncodeToString(ed.Public().(ed25519.PublicKey))
	srv.AddTXT("ed._domainkey.example.org", "v=DKIM1; k=ed25519; p="+pub)
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	srv.AddTXT("rsa._domainkey.example.org", "v=DKIM1; k=rsa; p="+base64.StdEncoding.EncodeToString(der))
	srv.AddTXT("ed._domainkey.other.example", "v=DKIM1; k=ed25519; p="+pub)
	srv.AddTXT("ed._domainkey.strict.example", "v=DKIM1; k=ed25519; p="+pub)
	srv.AddTXT("ed._domainkey.xn--bnk-qla.example", "v=DKIM1; k=ed25519; p="+pub) // bänk.example
	srv.ServFail("tmp._domainkey.example.org")
	// A domain testing DKIM (t=y): its signatures count as none.
	srv.AddTXT("ed._domainkey.testing.example", "v=DKIM1; t=y; k=ed25519; p="+pub)
	srv.AddTXT("testing.example", "v=spf1 ip4:192.0.2.10 -all")
	srv.AddTXT("_dmarc.testing.example", "v=DMARC1; p=reject")
	bigDER, _ := x509.MarshalPKIXPublicKey(fakeRSAKey(8192))
	srv.AddTXT("big._domainkey.example.org", "v=DKIM1; k=rsa; p="+base64.StdEncoding.EncodeToString(bigDER))

	srv.AddTXT("_dmarc.example.org", "v=DMARC1; p=reject; sp=quarantine; adkim=r; aspf=r")
	srv.AddTXT("_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s")
	srv.AddTXT("strict.example", "v=spf1 ip4:192.0.2.10 -all")
	srv.AddTXT("_dmarc.soft.example", "v=DMARC1; p=none")
	srv.AddTXT("_dmarc.xn--bnk-qla.example", "v=DMARC1; p=reject")
	srv.AddTXT("xn--bnk-qla.example", "v=spf1 ip4:192.0.2.10 -all")
	srv.ServFail("spftmp.example")
	srv.AddTXT("_dmarc.spftmp.example", "v=DMARC1; p=reject")
	srv.ServFail("_dmarc.dmarcfail.example")
	// REFUSED, as a resolver answers a client over its rate limit: no
	// answer, to try again later, as SERVFAIL (RFC 7208 4.4).
	srv.Refuse("spfrefused.example")
	srv.AddTXT("_dmarc.spfrefused.example", "v=DMARC1; p=reject")
	srv.Refuse("refused._domainkey.example.org")
	srv.AddTXT("dmarcrefused.example", "v=spf1 ip4:192.0.2.10 -all")
	srv.Refuse("_dmarc.dmarcrefused.example")
	// Two DMARC records (and a non-DMARC string, which does not count): no
	// DMARC, neither the first record nor the organizational domain's.
	srv.AddTXT("_dmarc.twice.example", "v=DMARC1; p=reject")
	srv.AddTXT("_dmarc.twice.example", "v=DMARC1; p=none")
	srv.AddTXT("_dmarc.twice.example", "google-site-verification=abc")
	srv.AddTXT("_dmarc.once.example", "v=DMARC1; p=reject")
	srv.AddTXT("_dmarc.once.example", "google-site-verification=abc")
	srv.AddTXT("_dmarc.twice.example.org", "v=DMARC1; p=none")
	srv.AddTXT("_dmarc.twice.example.org", "v=DMARC1; p=quarantine")
	srv.AddTXT("dmarcfail.example", "v=spf1 ip4:192.0.2.10 -all")
	// Errors in tags beside p=, as owners write them.
	srv.AddTXT("_dmarc.sloppy.example", "v=DMARC1; p=reject; adkim=relaxed; pct=100%; rf=afrf:iodef; fo=1;0; rua=mailto:d@sloppy.example")
	srv.AddTXT("_dmarc.nopolicy.example", "v=DMARC1; p=rejected; adkim=relaxed")
	srv.AddTXT("_dmarc.shouting.example", "v=DMARC1; P=Reject; ADKIM=S")
	srv.AddTXT("_dmarc.spaced.example", " V = DMARC1 ; p=reject")
	srv.AddTXT("_dmarc.upsub.example", "v=DMARC1; p=none; SP=reject")
	srv.AddTXT("_dmarc.manytags.example", "v=DMARC1; p=reject; adkim=relaxed"+strings.Repeat("; x=1", maxLenientTags))

	cfg := dnsresolver.DefaultConfig()
	cfg.Server = srv.Addr
	cfg.Timeout = time.Second
	w.res = dnsresolver.New(cfg, prometheus.NewRegistry())
	return w
}

func (w *world) check(t testing.TB, mod func(*Config)) *Check {
	t.Helper()
	cfg := DefaultConfig()
	cfg.SPF, cfg.DKIM, cfg.DMARC = true, true, true
	cfg.ARC = false // arc_test.go covers it; these tables list SPF, DKIM and DMARC results
	cfg.AuthservID = "mx.mxgrid.test"
	cfg.Timeout = 2 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, w.res, w.discard, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testMessage(from string) []byte {
	return []byte("From: Alice <" + from + ">\r\nTo: bob@example.net\r\nSubject: hello\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <1@example.org>\r\n\r\nHello Bob.\r\n")
}

func (w *world) sign(t testing.TB, raw []byte, domain, selector string) []byte {
	t.Helper()
	var signer crypto.Signer = w.edKey
	if selector == "rsa" || selector == "big" {
		signer = w.rsaKey
	}
	var out bytes.Buffer
	if err := dkim.Sign(&out, bytes.NewReader(raw), &dkim.SignOptions{Domain: domain, Selector: selector, Signer: signer}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestCheck(t *testing.T) {
	w := newWorld(t)
	good := netip.MustParseAddr("192.0.2.10")
	bad := netip.MustParseAddr("203.0.113.1")
	tests := []struct {
		name        string
		env         scanner.Envelope
		raw         func(t testing.TB) []byte
		mod         func(*Config)
		wantAR      []string // exact resinfo strings
		wantSymbols []string
		wantReject  bool
	}{
		{
			name: "SPF pass, DKIM pass (ed25519), DMARC pass",
			env:  scanner.Envelope{ClientIP: good, HELO: "mail.example.org", MailFrom: "alice@example.org"},
			raw:  func(t testing.TB) []byte { return w.sign(t, testMessage("alice@example.org"), "example.org", "ed") },
			wantAR: []string{
				"spf=pass smtp.mailfrom=alice@example.org",
				"spf=fail smtp.helo=mail.example.org",
				"dkim=pass header.d=example.org header.i=@example.org",
				"dmarc=pass (p=reject) header.from=example.org",
			},
			wantSymbols: []string{"SPF_PASS", "SPF_HELO_FAIL", "DKIM_PASS", "DMARC_PASS"},
		},
		{
			name:        "SPF pass through a: mechanism, RSA-2048 signature (key over TCP)",
			env:         scanner.Envelope{ClientIP: netip.MustParseAddr("198.51.100.25"), HELO: "mail.example.org", MailFrom: "alice@example.org"},
			raw:         func(t testing.TB) []byte { return w.sign(t, testMessage("alice@example.org"), "example.org", "rsa") },
			wantSymbols: []string{"SPF_PASS", "SPF_HELO_PASS", "DKIM_PASS", "DMARC_PASS"},
		},
		{
			name: "SPF fail, unsigned, p=reject enforced",
			env:  scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "alice@example.org", DMARCEnforce: true},
			raw:  func(testing.TB) []byte { return testMessage("alice@example.org") },
			wantAR: []string{
				"spf=fail smtp.mailfrom=alice@example.org",
				"dkim=none",
				"dmarc=fail (p=reject dis=reject) header.from=example.org",
			},
			wantSymbols: []string{"SPF_FAIL", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name:        "p=reject failure without enforcement only weighs",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "alice@example.org"},
			raw:         func(testing.TB) []byte { return testMessage("alice@example.org") },
			wantSymbols: []string{"SPF_FAIL", "DKIM_NONE", "DMARC_FAIL_REJECT"},
		},
		{
			name:        "enforcement for every domain from config",
			mod:         func(c *Config) { c.DMARCEnforce = true },
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "alice@example.org"},
			raw:         func(testing.TB) []byte { return testMessage("alice@example.org") },
			wantSymbols: []string{"SPF_FAIL", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name: "subdomain without a record gets the organization's sp=",
			env:  scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "news@news.example.org", DMARCEnforce: true},
			raw:  func(testing.TB) []byte { return testMessage("news@news.example.org") },
			wantAR: []string{
				"spf=none reason=\"no DNS record found\" smtp.mailfrom=news@news.example.org",
				"dkim=none",
				"dmarc=fail (p=quarantine dis=quarantine) header.from=news.example.org",
			},
			wantSymbols: []string{"SPF_NONE", "DKIM_NONE", "DMARC_FAIL_QUARANTINE"},
		},
		{
			name:        "relaxed DKIM alignment: d=example.org signs for news.example.org",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "news@news.example.org"},
			raw:         func(t testing.TB) []byte { return w.sign(t, testMessage("news@news.example.org"), "example.org", "ed") },
			wantSymbols: []string{"SPF_NONE", "DKIM_PASS", "DMARC_PASS"},
		},
		{
			name: "strict alignment: a parent-domain signature does not align",
			env:  scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@strict.example"},
			raw: func(t testing.TB) []byte {
				return w.sign(t, testMessage("a@sub.strict.example"), "strict.example", "ed")
			},
			wantSymbols: []string{"SPF_FAIL", "DKIM_PASS", "DMARC_FAIL_REJECT"},
		},
		{
			name:        "unaligned DKIM pass and SPF fail: DMARC fails",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "alice@example.org"},
			raw:         func(t testing.TB) []byte { return w.sign(t, testMessage("alice@example.org"), "other.example", "ed") },
			wantSymbols: []string{"SPF_FAIL", "DKIM_PASS", "DMARC_FAIL_REJECT"},
		},
		{
			// RFC 6376 3.6.1: mail signed with a testing key is treated as
			// unsigned, so its pass authenticates nothing for DMARC.
			name: "testing key (t=y), valid signature, SPF fail: DMARC fails",
			env:  scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "alice@testing.example", DMARCEnforce: true},
			raw: func(t testing.TB) []byte {
				return w.sign(t, testMessage("alice@testing.example"), "testing.example", "ed")
			},
			wantAR: []string{
				"spf=fail smtp.mailfrom=alice@testing.example",
				"dkim=pass reason=\"key in testing mode\" header.d=testing.example header.i=@testing.example",
				"dmarc=fail (p=reject dis=reject) header.from=testing.example",
			},
			wantSymbols: []string{"SPF_FAIL", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			// "even should the signature fail to verify": a domain trying
			// DKIM out is not penalised for a broken signature.
			name: "testing key (t=y), broken signature, SPF pass: no DKIM_FAIL",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "alice@testing.example"},
			raw: func(t testing.TB) []byte {
				return append(w.sign(t, testMessage("alice@testing.example"), "testing.example", "ed"), "Changed.\r\n"...)
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_PASS"},
		},
		{
			// No aligned pass, but the aligned signature's key could not be
			// fetched: it may pass on a retry, so p=reject must not refuse.
			name:        "aligned DKIM temperror, SPF fail: DMARC temperror, no reject",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "alice@example.org", DMARCEnforce: true},
			raw:         func(t testing.TB) []byte { return w.sign(t, testMessage("alice@example.org"), "example.org", "tmp") },
			wantSymbols: []string{"SPF_FAIL", "DKIM_TEMPERROR", "DMARC_TEMPERROR"},
		},
		{
			name:        "aligned SPF temperror, unsigned: DMARC temperror, no reject",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "alice@spftmp.example", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("alice@spftmp.example") },
			wantSymbols: []string{"SPF_TEMPERROR", "DKIM_NONE", "DMARC_TEMPERROR"},
		},
		{
			name:        "aligned SPF lookup REFUSED, unsigned: DMARC temperror, no reject",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "alice@spfrefused.example", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("alice@spfrefused.example") },
			wantSymbols: []string{"SPF_TEMPERROR", "DKIM_NONE", "DMARC_TEMPERROR"},
		},
		{
			name: "aligned DKIM key lookup REFUSED, SPF fail: DMARC temperror, no reject",
			env:  scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "alice@example.org", DMARCEnforce: true},
			raw: func(t testing.TB) []byte {
				return w.sign(t, testMessage("alice@example.org"), "example.org", "refused")
			},
			wantSymbols: []string{"SPF_FAIL", "DKIM_TEMPERROR", "DMARC_TEMPERROR"},
		},
		{
			name:        "DMARC record lookup REFUSED: temperror",
			env:         scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "x@dmarcrefused.example"},
			raw:         func(testing.TB) []byte { return testMessage("x@dmarcrefused.example") },
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_TEMPERROR"},
		},
		{
			name:        "unaligned DKIM temperror does not stop a DMARC fail",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "alice@example.org", DMARCEnforce: true},
			raw:         func(t testing.TB) []byte { return w.sign(t, testMessage("alice@strict.example"), "example.org", "tmp") },
			wantSymbols: []string{"SPF_FAIL", "DKIM_TEMPERROR", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			// The sender's DNS serves an 8192-bit key: refused before any
			// RSA operation, as a permanent error, not a costly fail.
			name:        "RSA key over 4096 bits: DKIM permerror",
			env:         scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "alice@example.org"},
			raw:         func(t testing.TB) []byte { return w.sign(t, testMessage("alice@example.org"), "example.org", "big") },
			wantSymbols: []string{"SPF_PASS", "DKIM_PERMERROR", "DMARC_PASS"},
		},
		{
			name: "tampered body: DKIM fail",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "alice@example.org"},
			raw: func(t testing.TB) []byte {
				return bytes.Replace(w.sign(t, testMessage("alice@example.org"), "example.org", "ed"), []byte("Hello Bob."), []byte("Hello Eve."), 1)
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_FAIL", "DMARC_PASS"},
		},
		{
			name:        "DKIM key lookup SERVFAIL: temperror",
			env:         scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "alice@example.org"},
			raw:         func(t testing.TB) []byte { return resign(t, w, "tmp") },
			wantSymbols: []string{"SPF_PASS", "DKIM_TEMPERROR", "DMARC_PASS"},
		},
		{
			name:        "SPF softfail, DMARC p=none",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@soft.example"},
			raw:         func(testing.TB) []byte { return testMessage("x@soft.example") },
			wantSymbols: []string{"SPF_SOFTFAIL", "DKIM_NONE", "DMARC_FAIL_NONE"},
		},
		{
			name:        "SPF neutral",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@neutral.example"},
			raw:         func(testing.TB) []byte { return testMessage("x@neutral.example") },
			wantSymbols: []string{"SPF_NEUTRAL", "DKIM_NONE", "DMARC_NONE"},
		},
		{
			name:        "SPF permerror",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@broken-spf.example"},
			raw:         func(testing.TB) []byte { return testMessage("x@broken-spf.example") },
			wantSymbols: []string{"SPF_PERMERROR", "DKIM_NONE", "DMARC_NONE"},
		},
		{
			name:        "SPF temperror (SERVFAIL)",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@servfail.example"},
			raw:         func(testing.TB) []byte { return testMessage("x@servfail.example") },
			wantSymbols: []string{"SPF_TEMPERROR", "DKIM_NONE", "DMARC_NONE"},
		},
		{
			name:        "DMARC temperror",
			env:         scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "x@dmarcfail.example"},
			raw:         func(testing.TB) []byte { return testMessage("x@dmarcfail.example") },
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_TEMPERROR"},
		},
		{
			name:        "two DMARC records: none, not the first one's p=reject",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@twice.example", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("x@twice.example") },
			wantAR:      []string{"spf=none reason=\"no DNS record found\" smtp.mailfrom=x@twice.example", "dkim=none", "dmarc=none (more than one DMARC record) header.from=twice.example"},
			wantSymbols: []string{"SPF_NONE", "DKIM_NONE", "DMARC_NONE"},
		},
		{
			name:        "one DMARC record among other TXT strings applies",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@once.example", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("x@once.example") },
			wantSymbols: []string{"SPF_NONE", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name:        "two DMARC records at a subdomain: none, neither its first one's nor the organization's sp=",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@twice.example.org", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("x@twice.example.org") },
			wantSymbols: []string{"SPF_NONE", "DKIM_NONE", "DMARC_NONE"},
		},
		{
			name:        "no record at a subdomain, two at its organization: none",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@sub.twice.example", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("x@sub.twice.example") },
			wantSymbols: []string{"SPF_NONE", "DKIM_NONE", "DMARC_NONE"},
		},
		// RFC 7489 6.3: syntax errors in the other tags are discarded in
		// favour of their defaults. The library refused the whole record:
		// mail spoofing such a p=reject domain was dmarc=permerror, let
		// through.
		{
			name:        "a p=reject record with errors in other tags applies",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@sloppy.example", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("ceo@sloppy.example") },
			wantAR:      []string{"spf=none reason=\"no DNS record found\" smtp.mailfrom=x@sloppy.example", "dkim=none", "dmarc=fail (p=reject dis=reject) header.from=sloppy.example"},
			wantSymbols: []string{"SPF_NONE", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name:        "a record's tags and keywords count in any case",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@shouting.example", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("ceo@shouting.example") },
			wantAR:      []string{"spf=none reason=\"no DNS record found\" smtp.mailfrom=x@shouting.example", "dkim=none", "dmarc=fail (p=reject dis=reject) header.from=shouting.example"},
			wantSymbols: []string{"SPF_NONE", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name:        "an upper-case tag of a record the library parses counts",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@upsub.example", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("ceo@mail.upsub.example") },
			wantSymbols: []string{"SPF_NONE", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name:        "a record with white space around its version tag applies",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@spaced.example", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("ceo@spaced.example") },
			wantSymbols: []string{"SPF_NONE", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name:        "a record whose p= is not a policy stays broken",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@nopolicy.example", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("ceo@nopolicy.example") },
			wantSymbols: []string{"SPF_NONE", "DKIM_NONE", "DMARC_PERMERROR"},
		},
		{
			name:        "a record of more tags than are read one by one stays broken",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@manytags.example", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("ceo@manytags.example") },
			wantSymbols: []string{"SPF_NONE", "DKIM_NONE", "DMARC_PERMERROR"},
		},
		{
			name: "null MAIL FROM is checked as postmaster@HELO",
			env:  scanner.Envelope{ClientIP: netip.MustParseAddr("198.51.100.25"), HELO: "mail.example.org"},
			raw:  func(testing.TB) []byte { return testMessage("mailer-daemon@mail.example.org") },
			wantAR: []string{
				"spf=pass smtp.mailfrom=postmaster@mail.example.org",
				"spf=pass smtp.helo=mail.example.org",
				"dkim=none",
				"dmarc=pass (p=reject) header.from=mail.example.org",
			},
			wantSymbols: []string{"SPF_PASS", "SPF_HELO_PASS", "DKIM_NONE", "DMARC_PASS"},
		},
		{
			// RFC 7489 6.6.1: each author domain is evaluated and the
			// strictest failing policy applies; other.example has no
			// policy, example.org's is not met by the sender's own SPF.
			name: "From with the sender's domain and a spoofed p=reject one: DMARC fails",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "x@strict.example", DMARCEnforce: true},
			raw: func(testing.TB) []byte {
				return []byte("From: ceo@example.org, x@strict.example\r\nSubject: x\r\n\r\nx\r\n")
			},
			wantAR: []string{
				"spf=pass smtp.mailfrom=x@strict.example",
				"dkim=none",
				"dmarc=fail (p=reject dis=reject) header.from=example.org",
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name: "unparsable From naming a p=reject domain: DMARC fails",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "x@strict.example", DMARCEnforce: true},
			raw: func(testing.TB) []byte {
				return []byte("From: CEO <ceo@example.org\r\nSubject: x\r\n\r\nx\r\n")
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name: "unparsable From with the sender's address after a p=reject one: DMARC fails",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "x@strict.example", DMARCEnforce: true},
			raw: func(testing.TB) []byte {
				return []byte("From: ceo@example.org <x@strict.example>\r\nSubject: x\r\n\r\nx\r\n")
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			// RFC 5322 allows comments and white space around a
			// domain's atoms (obs-domain); net/mail does not, and
			// the domain read past it was none: dmarc=permerror.
			name: "From with comments and blanks in a p=reject domain: DMARC fails",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "x@strict.example", DMARCEnforce: true},
			raw: func(testing.TB) []byte {
				return []byte("From: CEO <ceo@(a (nested) comment)example.org>, ceo@ example . (x) org\r\nSubject: x\r\n\r\nx\r\n")
			},
			wantAR: []string{
				"spf=pass smtp.mailfrom=x@strict.example",
				"dkim=none",
				"dmarc=fail (p=reject dis=reject) header.from=example.org",
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			// Read as RFC 5322 reads it, the domain is another; as
			// written, or in the comment, it is the spoofed one, which
			// a mail reader may show.
			name: "From naming a p=reject domain before a blank or in a comment: DMARC fails",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "x@strict.example", DMARCEnforce: true},
			raw: func(testing.TB) []byte {
				return []byte("From: <ceo@example.org .other.example>\r\nFrom: x@(ceo@example.org)other.example\r\nSubject: x\r\n\r\nx\r\n")
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name: "From with white space after a p=reject domain's dot: DMARC fails",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "x@strict.example", DMARCEnforce: true},
			raw: func(testing.TB) []byte {
				return []byte("From: CEO <ceo@example. org>\r\nSubject: x\r\n\r\nx\r\n")
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name: "unparsable From without a domain: permerror",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "x@strict.example"},
			raw: func(testing.TB) []byte {
				return []byte("From: CEO <ceo>>\r\nSubject: x\r\n\r\nx\r\n")
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_PERMERROR"},
		},
		{
			name: "a second From field with a spoofed p=reject domain: DMARC fails",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "x@strict.example", DMARCEnforce: true},
			raw: func(testing.TB) []byte {
				return []byte("From: x@strict.example\r\nFrom: CEO <ceo@example.org>\r\nSubject: x\r\n\r\nx\r\n")
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name: "two From addresses in different domains, both aligned: DMARC passes",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "alice@example.org"},
			raw: func(t testing.TB) []byte {
				return w.sign(t, []byte("From: a@example.org, b@strict.example\r\nSubject: x\r\n\r\nx\r\n"), "strict.example", "ed")
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_PASS", "DMARC_PASS"},
		},
		{
			name: "two From addresses, one domain without a policy: the other's result",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "alice@example.org"},
			raw: func(testing.TB) []byte {
				return []byte("From: a@example.org, b@other.example\r\nSubject: x\r\n\r\nx\r\n")
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_NONE"},
		},
		{
			name: "From naming more domains than are evaluated: permerror",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "alice@example.org"},
			raw: func(testing.TB) []byte {
				var from []string
				for i := range maxAuthorDomains + 1 {
					from = append(from, fmt.Sprintf("a@d%d.example", i))
				}
				return []byte("From: " + strings.Join(from, ", ") + "\r\nSubject: x\r\n\r\nx\r\n")
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_PERMERROR"},
		},
		{
			// Its first domains are judged all the same: a permerror
			// let "ceo@bank.example" followed by ten other domains
			// escape the bank's p=reject.
			name: "a spoofed p=reject domain before more domains than are evaluated: DMARC fails",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "x@strict.example", DMARCEnforce: true},
			raw: func(testing.TB) []byte {
				from := []string{"ceo@example.org"}
				for i := range maxAuthorDomains + 5 {
					from = append(from, fmt.Sprintf("a@d%d.example", i))
				}
				return []byte("From: " + strings.Join(from, ", ") + "\r\nSubject: x\r\n\r\nx\r\n")
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			// A mail reader shows the IDN; its policy is at the A-label
			// name. Looked up in UTF-8, it was DMARC none.
			name: "From with an internationalized p=reject domain in UTF-8: DMARC fails",
			env:  scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "x@strict.example", DMARCEnforce: true},
			raw:  func(testing.TB) []byte { return testMessage("ceo@bänk.example") },
			wantAR: []string{
				"spf=pass smtp.mailfrom=x@strict.example",
				"dkim=none",
				"dmarc=fail (p=reject dis=reject) header.from=xn--bnk-qla.example",
			},
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name:        "From with a p=reject domain in full-width letters: DMARC fails",
			env:         scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "x@strict.example", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("ceo@ｅｘａｍｐｌｅ.org") },
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_FAIL_REJECT"},
			wantReject:  true,
		},
		{
			name: "From with an IDN in UTF-8, signed by its A-label name: DMARC passes",
			env:  scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "x@strict.example", DMARCEnforce: true},
			raw: func(t testing.TB) []byte {
				return w.sign(t, testMessage("ceo@BÄNK.example"), "xn--bnk-qla.example", "ed")
			},
			wantSymbols: []string{"SPF_FAIL", "DKIM_PASS", "DMARC_PASS"},
		},
		{
			// RFC 8616 4. Looked up in UTF-8 it was SPF none, and the
			// pass below never aligned with the A-label From. The
			// result names the sender as checked, in A-labels: raw, our
			// own header field was 8-bit, and the 7-bit message of a
			// sender whose envelope goes as A-labels to a server without
			// SMTPUTF8 was refused for it.
			name:        "SMTPUTF8 MAIL FROM: SPF is checked at the A-label, and fails",
			env:         scanner.Envelope{ClientIP: bad, HELO: "[203.0.113.1]", MailFrom: "ceo@bänk.example"},
			raw:         func(testing.TB) []byte { return testMessage("x@strict.example") },
			wantAR:      []string{`spf=fail smtp.mailfrom=ceo@xn--bnk-qla.example`, "dkim=none", "dmarc=fail (p=reject dis=reject) header.from=strict.example"},
			wantSymbols: []string{"SPF_FAIL", "DKIM_NONE", "DMARC_FAIL_REJECT"},
		},
		{
			name:        "SMTPUTF8 MAIL FROM that passes SPF aligns with its A-label From",
			env:         scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "ceo@BÄNK.example", DMARCEnforce: true},
			raw:         func(testing.TB) []byte { return testMessage("ceo@bänk.example") },
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_PASS"},
		},
		{
			// The library splits at the first '@': it checked the domain
			// `servfail.example"@example.org`.
			name:        "a quoted local part holding an '@': SPF checks the domain after the last one",
			env:         scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: `"x@servfail.example"@example.org`},
			raw:         func(testing.TB) []byte { return testMessage("alice@example.org") },
			wantSymbols: []string{"SPF_PASS", "DKIM_NONE", "DMARC_PASS"},
		},
		{
			name:        "methods switched off",
			mod:         func(c *Config) { c.DMARC, c.DKIM = false, false },
			env:         scanner.Envelope{ClientIP: good, HELO: "[192.0.2.10]", MailFrom: "alice@example.org"},
			raw:         func(testing.TB) []byte { return testMessage("alice@example.org") },
			wantAR:      []string{"spf=pass smtp.mailfrom=alice@example.org"},
			wantSymbols: []string{"SPF_PASS"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := w.check(t, tt.mod)
			res, err := c.Check(context.Background(), &tt.env, scanner.Parse(tt.raw(t)))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			var names []string
			for _, s := range res.Symbols {
				names = append(names, s.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.wantSymbols, ",") {
				t.Errorf("symbols = %v\nwant      %v\nresults: %q", names, tt.wantSymbols, res.AuthResults)
			}
			if tt.wantAR != nil && strings.Join(res.AuthResults, "\n") != strings.Join(tt.wantAR, "\n") {
				t.Errorf("AuthResults =\n%s\nwant\n%s", strings.Join(res.AuthResults, "\n"), strings.Join(tt.wantAR, "\n"))
			}
			if (res.Reject != "") != tt.wantReject {
				t.Errorf("Reject = %q, want rejection: %v", res.Reject, tt.wantReject)
			}
		})
	}
}

// resign signs with the "tmp" selector, whose key lookup fails temporarily.
func resign(t testing.TB, w *world, selector string) []byte {
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(testMessage("alice@example.org")), &dkim.SignOptions{Domain: "example.org", Selector: selector, Signer: w.edKey})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestDNSTimeoutKeepsTheDeadline: a DNS server that never answers costs
// temperror results, not the message's deadline. The pipeline's stage
// deadline is the check's timeout plus its margin; a check still running
// then would be reported incomplete.
// TestSenderAuthenticated: a sender allow list trusts the envelope sender
// only when SPF passed for its domain or its organisation signed the
// message; anyone can write the MAIL FROM of an allowed partner.
func TestSenderAuthenticated(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, nil)
	good, bad := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("203.0.113.1")
	signed := func(domain string) func(testing.TB) []byte {
		return func(t testing.TB) []byte { return w.sign(t, testMessage("alice@example.org"), domain, "ed") }
	}
	unsigned := func(testing.TB) []byte { return testMessage("alice@example.org") }
	tests := []struct {
		name string
		env  scanner.Envelope
		raw  func(testing.TB) []byte
		want bool
	}{
		{"SPF pass", scanner.Envelope{ClientIP: good, HELO: "mail.example.org", MailFrom: "alice@example.org"}, unsigned, true},
		{"SPF fail, unsigned: a forged sender", scanner.Envelope{ClientIP: bad, HELO: "x.test", MailFrom: "alice@example.org"}, unsigned, false},
		{"SPF neutral", scanner.Envelope{ClientIP: bad, HELO: "x.test", MailFrom: "alice@neutral.example"}, unsigned, false},
		{"SPF softfail", scanner.Envelope{ClientIP: bad, HELO: "x.test", MailFrom: "alice@soft.example"}, unsigned, false},
		{"no SPF record", scanner.Envelope{ClientIP: bad, HELO: "x.test", MailFrom: "alice@nospf.example"}, unsigned, false},
		{"SPF fail, signed by the sender's domain", scanner.Envelope{ClientIP: bad, HELO: "x.test", MailFrom: "alice@example.org"}, signed("example.org"), true},
		{"bounce subdomain signed by its organisation", scanner.Envelope{ClientIP: bad, HELO: "x.test", MailFrom: "bounce@mail.example.org"}, signed("example.org"), true},
		{"signed by another domain", scanner.Envelope{ClientIP: bad, HELO: "x.test", MailFrom: "alice@example.org"}, signed("other.example"), false},
		{"SMTPUTF8 sender signed by its A-label name", scanner.Envelope{ClientIP: bad, HELO: "x.test", MailFrom: "ceo@bänk.example"}, func(t testing.TB) []byte {
			return w.sign(t, testMessage("ceo@bänk.example"), "xn--bnk-qla.example", "ed")
		}, true},
		{"null sender whose HELO passes SPF", scanner.Envelope{ClientIP: netip.MustParseAddr("198.51.100.25"), HELO: "mail.example.org"}, unsigned, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Check(context.Background(), &tt.env, scanner.Parse(tt.raw(t)))
			if err != nil {
				t.Fatal(err)
			}
			if res.SenderAuthenticated != tt.want {
				t.Errorf("SenderAuthenticated = %v, want %v (%v)", res.SenderAuthenticated, tt.want, res.AuthResults)
			}
		})
	}
}

// TestCachedAnswersGiveTheSameResults: a check whose answers are all
// cached runs its methods inline (tryCached) and must find what the first,
// which waited for the server, found.
func TestCachedAnswersGiveTheSameResults(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, nil)
	envs := []scanner.Envelope{
		{ClientIP: netip.MustParseAddr("192.0.2.10"), HELO: "mail.example.org", MailFrom: "alice@example.org"},
		{ClientIP: netip.MustParseAddr("203.0.113.1"), HELO: "mail.example.org", MailFrom: "alice@example.org"},
		{ClientIP: netip.MustParseAddr("203.0.113.1"), HELO: "x.soft.example", MailFrom: "bob@soft.example"},
	}
	raws := [][]byte{testMessage("alice@example.org"), w.sign(t, testMessage("alice@example.org"), "example.org", "ed"),
		w.sign(t, testMessage("news@news.example.org"), "other.example", "ed")}
	for i, env := range envs {
		for j, raw := range raws {
			first, err := c.Check(context.Background(), &env, scanner.Parse(raw))
			if err != nil {
				t.Fatal(err)
			}
			again, err := c.Check(context.Background(), &env, scanner.Parse(raw))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(first.AuthResults, again.AuthResults) || scanner.SymbolNames(first.Symbols) != scanner.SymbolNames(again.Symbols) ||
				first.SenderAuthenticated != again.SenderAuthenticated {
				t.Errorf("envelope %d, message %d: cached %v %s, first %v %s", i, j, again.AuthResults, scanner.SymbolNames(again.Symbols),
					first.AuthResults, scanner.SymbolNames(first.Symbols))
			}
		}
	}
}

func TestDNSTimeoutKeepsTheDeadline(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, func(c *Config) { c.Timeout = 300 * time.Millisecond })
	p := scanner.NewPipeline([]scanner.Stage{c.Stage()}, 0, w.discard, prometheus.NewRegistry())
	env := &scanner.Envelope{ClientIP: netip.MustParseAddr("203.0.113.1"), HELO: "[203.0.113.1]", MailFrom: "x@slow.example"}
	v := p.Scan(context.Background(), env, scanner.Parse(testMessage("x@slow.example")), scanner.Policy{})
	if len(v.Incomplete) != 0 {
		t.Fatalf("check did not finish within its stage deadline: %v", v.Incomplete)
	}
	if got := strings.Join(v.AuthResults, "; "); !strings.Contains(got, "spf=temperror") {
		t.Errorf("AuthResults = %q, want spf=temperror", got)
	}
}

// TestSlowSenderDNSDoesNotStarveDMARC: a sender whose own name servers
// answer slowly must not spend the check's deadline before the spoofed
// author domain's policy is looked up. Looked up after SPF, or after the
// From's first domain, it was abandoned: DMARC temperror, and p=reject
// escaped.
func TestSlowSenderDNSDoesNotStarveDMARC(t *testing.T) {
	tests := []struct {
		name, mailFrom, from string
		arcSealer            string // seals the message when set
	}{
		{"slow SPF of MAIL FROM", "x@slow.example", "ceo@example.org", ""},
		{"slow policy of the From's first domain", "x@strict.example", "a@slowdmarc.example, ceo@example.org", ""},
		{"slow key of an ARC sealer", "x@strict.example", "ceo@example.org", "slowarc.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A world each: a policy cached by one case would hide the
			// lookup of the next.
			w := newWorld(t)
			w.srv.Silent("_dmarc.slowdmarc.example")
			w.srv.Silent("ed._domainkey.slowarc.example")
			c := w.check(t, func(c *Config) { c.ARC = true })
			env := scanner.Envelope{ClientIP: netip.MustParseAddr("203.0.113.1"), HELO: "[203.0.113.1]", MailFrom: tt.mailFrom, DMARCEnforce: true}
			// Shorter than one lookup's timeout at the silent server.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			raw := "From: " + tt.from + "\r\nSubject: x\r\n\r\nx\r\n"
			if tt.arcSealer != "" {
				raw = w.arcSeal(t, raw, tt.arcSealer, 1, "none")
			}
			res, err := c.Check(ctx, &env, scanner.Parse([]byte(raw)))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(res.AuthResults, "; "); !strings.Contains(got, "dmarc=fail (p=reject dis=reject) header.from=example.org") || res.Reject == "" {
				t.Errorf("AuthResults = %q, Reject = %q; want example.org's p=reject applied", got, res.Reject)
			}
		})
	}
}

// TestSPFClientNamesAreBounded: a ptr term looks up names in the client's
// own DNS. A sender whose reverse zone names hosts that never answer
// spent the deadline there, before the lookups that follow the term in
// the spoofed domain's record: SPF and DMARC temperror, p=reject escaped.
func TestSPFClientNamesAreBounded(t *testing.T) {
	w := newWorld(t)
	ptr := func(ip string, names ...string) {
		for _, n := range names {
			w.srv.Add(t, ip+".113.0.203.in-addr.arpa. 300 IN PTR "+n)
		}
	}
	var slow []string
	for i := range 9 {
		slow = append(slow, fmt.Sprintf("n%d.evil.example.", i))
		w.srv.Silent(slow[i])
	}
	ptr("1", append(slow, "n9.evil.example.")...)
	w.srv.Silent("n9.evil.example.")
	w.srv.AddTXT("ptrbank.example", "v=spf1 ptr include:inc.ptrbank.example -all")
	w.srv.AddTXT("inc.ptrbank.example", "v=spf1 ip4:192.0.2.99 -all")
	w.srv.AddTXT("_dmarc.ptrbank.example", "v=DMARC1; p=reject")
	ptr("2", "host.ptrok.example.")
	w.srv.AddA("host.ptrok.example", "203.0.113.2")
	w.srv.AddTXT("ptrok.example", "v=spf1 ptr -all")
	// The last PTR name is one the record names too: its own lookup there
	// has its full time.
	ptr("3", append(slow, "mail.ptra.example.")...)
	w.srv.AddA("mail.ptra.example", "203.0.113.3")
	w.srv.AddTXT("ptra.example", "v=spf1 ptr:nomatch.example a:mail.ptra.example -all")
	c := w.check(t, nil)
	tests := []struct {
		name, ip, mailFrom string
		want               []string
	}{
		{"slow PTR names before an include", "203.0.113.1", "ceo@ptrbank.example",
			[]string{"spf=fail smtp.mailfrom=ceo@ptrbank.example", "dmarc=fail (p=reject dis=reject) header.from=ptrbank.example"}},
		{"a PTR name that validates", "203.0.113.2", "a@ptrok.example", []string{"spf=pass smtp.mailfrom=a@ptrok.example"}},
		{"slow PTR names, then one the record names", "203.0.113.3", "a@ptra.example", []string{"spf=pass smtp.mailfrom=a@ptra.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := scanner.Envelope{ClientIP: netip.MustParseAddr(tt.ip), HELO: "[" + tt.ip + "]", MailFrom: tt.mailFrom}
			// The pipeline's deadline: twice a lookup's timeout at the
			// silent server, a tenth of what the ten names would take.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, from, _ := strings.Cut(tt.mailFrom, "@")
			res, err := c.Check(ctx, &env, scanner.Parse(testMessage("x@"+from)))
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(res.AuthResults, "; ")
			for _, want := range tt.want {
				if !strings.Contains(got, want) {
					t.Errorf("AuthResults = %q, want %q", got, want)
				}
			}
		})
	}
}

func TestStripOurAuthResults(t *testing.T) {
	raw := "Authentication-Results: mx.mxgrid.test; spf=pass smtp.mailfrom=a@example.org\r\n" +
		"Authentication-Results: MX.MXGRID.TEST 1; dkim=pass header.d=example.org\r\n" +
		"Authentication-Results: (forged (nested)) mx.mxgrid.test;\r\n dmarc=pass header.from=example.org\r\n" +
		"Authentication-Results: \"mx.mxgrid.test\"; dkim=pass header.d=bank.example\r\n" +
		"Authentication-Results: (c) \"MX.mxgrid\\.test\" 1; dmarc=pass header.from=bank.example\r\n" +
		"Authentication-Results: mx.mxgrid.test.; spf=pass smtp.mailfrom=bank.example\r\n" +
		"Authentication-Results: mx.mxgrid.test\x00; dkim=pass header.d=bank.example\r\n" +
		"Authentication-Results: mx.mx\x7fgrid.test; dkim=pass header.d=bank.example\r\n" +
		"Authentication-Results: mx.mxgrid.test.evil; none\r\n" +
		"Authentication-Results: \"mx.mxgrid.test.evil\"; none\r\n" +
		"Authentication-Results: upstream.example; spf=fail smtp.mailfrom=a@example.org\r\n" +
		"Subject: hi\r\n\r\n"
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	ours := func(id string) bool { return strings.EqualFold(id, "mx.mxgrid.test") }
	if n := StripOurAuthResults(&h, ours); n != 8 {
		t.Errorf("removed %d fields, want 8", n)
	}
	got := h.Values(HeaderField)
	want := []string{"mx.mxgrid.test.evil; none", `"mx.mxgrid.test.evil"; none`, "upstream.example; spf=fail smtp.mailfrom=a@example.org"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("kept %q, want %q", got, want)
	}
}

func TestPvalue(t *testing.T) {
	tests := map[string]string{
		"alice@example.org":     "alice@example.org",
		"@example.org":          "@example.org",
		"example.org":           "example.org",
		`"odd local"@x.example`: `"\"odd local\"@x.example"`,
		"a b":                   `"a b"`,
	}
	for in, want := range tests {
		if got := pvalue(in); got != want {
			t.Errorf("pvalue(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"id with space", func(c *Config) { c.AuthservID = "mx example" }, "authserv_id:"},
		{"all on", func(c *Config) { c.SPF, c.DKIM, c.DMARC = true, true, true }, ""},
		{"dmarc without spf", func(c *Config) { c.SPF = false }, "dmarc: needs spf and dkim"},
		{"no signatures", func(c *Config) { c.MaxSignatures = 0 }, "max_signatures:"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout:"},
		{"unknown weight", func(c *Config) { c.Weights = map[string]float64{"SPF_MAYBE": 1} }, `weights: unknown symbol "SPF_MAYBE"`},
		{"known weight", func(c *Config) { c.Weights = map[string]float64{"SPF_FAIL": 3} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.SPF, cfg.DKIM, cfg.DMARC = true, true, true
	cfg.ARC = false // arc_test.go covers it; these tables list SPF, DKIM and DMARC results
	cfg.AuthservID = "mx.mxgrid.test"
	c, err := New(cfg, w.res, w.discard, reg)
	if err != nil {
		t.Fatal(err)
	}
	env := &scanner.Envelope{ClientIP: netip.MustParseAddr("192.0.2.10"), HELO: "mail.example.org", MailFrom: "alice@example.org"}
	// Twice: the second counts on the counters the first made.
	for range 2 {
		if _, err := c.Check(context.Background(), env, scanner.Parse(testMessage("alice@example.org"))); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			got[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"mxgrid_auth_results_total{dkim,none}":     2,
		"mxgrid_auth_results_total{dmarc,pass}":    2,
		"mxgrid_auth_results_total{spf,pass}":      2,
		"mxgrid_auth_results_total{spf_helo,fail}": 2,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("metrics = %v, want %v", got, want)
	}
}

func TestUnsignedHeader(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want bool
	}{
		{"plain", string(testMessage("alice@example.org")), true},
		{"bare LF", "From: a@example.org\nTo: b@example.org\n\nbody\n", true},
		{"no header", "\r\nbody", true},
		{"signed", "DKIM-Signature: v=1; d=example.org\r\nFrom: a@example.org\r\n\r\n", false},
		{"signed, other case, space before the colon", "From: a@example.org\r\ndkim-SIGNATURE \t: x\r\n\r\n", false},
		{"Kelvin sign folds to k", "D\u212aIM-Signature: v=1\r\n\r\n", false},
		{"first line starts with a space", " DKIM-Signature: v=1\r\n\r\n", false},
		{"continuation names no field", "From: a@example.org\r\n DKIM-Signature: v=1\r\n\r\n", true},
		{"name on two lines", "DKIM-Signature\r\n : v=1\r\n\r\n", false},
		{"header ends at EOF", "From: a@example.org\r\nTo: b@example.org", false},
		{"header ends at EOF after CRLF", "From: a@example.org\r\n", false},
		{"CR alone is no blank line", "From: a@example.org\r\n\r", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unsignedHeader([]byte(tt.raw)); got != tt.want {
				t.Errorf("unsignedHeader(%q) = %v, want %v", tt.raw, got, tt.want)
			}
		})
	}
}

// Check answers dkim=none without checkDKIM (VerifyWithOptions) for a
// message unsignedInMemory reports; checkDKIM must answer the same.
func FuzzUnsignedInMemoryMatchesVerify(f *testing.F) {
	f.Add(testMessage("alice@example.org"))
	f.Add([]byte("From: a@example.org\r\nTo: b@example.org"))
	f.Add([]byte("From: a@example.org\r\n\r"))
	f.Add([]byte("From: a@example.org\n\nbody"))
	f.Add([]byte("D\u212aIM-Signature: v=1; a=ed25519-sha256; d=example.org; s=ed; h=from; bh=x; b=y\r\nFrom: a@example.org\r\n\r\nbody\r\n"))
	f.Add([]byte("From: a@example.org\r\n dkim-signature: v=1\r\n\r\n"))
	f.Add([]byte("X: " + strings.Repeat("a", 4093) + "\r\r\n\r\nbody"))
	c := &Check{res: noDNS{}, cfg: DefaultConfig()}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ctx := context.Background()
		// Past a few buffers of bufio's 4 KiB a header tells nothing new,
		// and VerifyWithOptions reads one folded into many lines in
		// quadratic time, which stalls the fuzzer.
		msg := &scanner.Message{Raw: raw}
		if len(raw) > 16<<10 || !unsignedInMemory(msg) {
			return
		}
		if got := c.checkDKIM(ctx, msg); !reflect.DeepEqual(got, noDKIM()) {
			t.Fatalf("checkDKIM %+v for a message unsignedInMemory reports", got)
		}
	})
}

// TestHugeFoldedHeaderIsNotVerified: a signed message whose header is one
// field folded into tens of thousands of lines gets DKIM_PERMERROR at once
// instead of go-msgauth's quadratic read of it.
func TestHugeFoldedHeaderIsNotVerified(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, nil)
	folded := "X-Padding: x" + strings.Repeat("\r\n x", 40000) + "\r\n"
	raw := append([]byte(folded), w.sign(t, testMessage("alice@example.org"), "example.org", "ed")...)
	env := &scanner.Envelope{ClientIP: netip.MustParseAddr("192.0.2.10"), HELO: "mail.example.org", MailFrom: "alice@example.org"}
	start := time.Now()
	res, err := c.Check(context.Background(), env, scanner.Parse(raw))
	if err != nil {
		t.Fatal(err)
	}
	var dkimSym string
	for _, s := range res.Symbols {
		if strings.HasPrefix(s.Name, "DKIM_") {
			dkimSym = s.Name
		}
	}
	if dkimSym != "DKIM_PERMERROR" {
		t.Errorf("DKIM symbol %q, want DKIM_PERMERROR (symbols %v)", dkimSym, res.Symbols)
	}
	if !strings.Contains(strings.Join(res.AuthResults, "; "), "too large to verify") {
		t.Errorf("AuthResults %q do not say why", res.AuthResults)
	}
	t.Logf("checked in %v", time.Since(start))
}

// TestDKIMSignedFieldListIsBounded: a signature whose h= lists more than
// maxSignedNames fields is a permerror before go-msgauth, which searches
// the header once per name, reads it; oversigned real mail still passes.
func TestDKIMSignedFieldListIsBounded(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, nil)
	body := "Hello Bob.\r\n"
	bh := sha256.Sum256([]byte(body))
	// A signature the sender's DNS has a key for, with a matching body
	// hash: go-msgauth reads h= before it finds b= does not verify.
	unverifiable := func(names int) []byte {
		return []byte("DKIM-Signature: v=1; a=ed25519-sha256; d=example.org; s=ed; h=from" + strings.Repeat(":z", names-1) +
			"; bh=" + base64.StdEncoding.EncodeToString(bh[:]) + "; b=AAAA\r\n" +
			strings.Repeat("X:y\r\n", 990) + "From: alice@example.org\r\n\r\n" + body)
	}
	oversigned := []string{"from", "to", "subject", "date", "message-id"}
	for range 7 {
		oversigned = append(oversigned, oversigned[:5]...)
	}
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"h= of 28,000 names over 990 fields", unverifiable(28_000), "permerror"},
		{"h= of maxSignedNames names", unverifiable(maxSignedNames), "fail"},
		{"h= of maxSignedNames+1 names", unverifiable(maxSignedNames + 1), "permerror"},
		{"oversigned, 40 names", func() []byte {
			var out bytes.Buffer
			err := dkim.Sign(&out, bytes.NewReader(testMessage("alice@example.org")),
				&dkim.SignOptions{Domain: "example.org", Selector: "ed", Signer: w.edKey, HeaderKeys: oversigned})
			if err != nil {
				t.Fatal(err)
			}
			return out.Bytes()
		}(), "pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := scanner.Parse(tt.raw)
			if msg.BodyOffset > maxDKIMHeader {
				t.Fatalf("header of %d bytes: past maxDKIMHeader, the test tests nothing", msg.BodyOffset)
			}
			got := c.checkDKIM(context.Background(), msg)
			if len(got) != 1 || got[0].result != tt.want {
				t.Fatalf("checkDKIM %+v, want one %s", got, tt.want)
			}
		})
	}
}

func TestMostSignedNames(t *testing.T) {
	tests := []struct {
		name  string
		head  string
		limit int
		want  int
	}{
		{"unsigned", "From: a@example.org\r\n\r\n", 5, 0},
		{"one signature", "DKIM-Signature: v=1; h=from:to:subject; b=x\r\n\r\n", 5, 3},
		{"no h=", "DKIM-Signature: v=1; b=x\r\n\r\n", 5, 1},
		{"h= folded", "DKIM-Signature: v=1; h=from:\r\n to:\r\n\tsubject; b=x\r\n\r\n", 5, 3},
		{"the most of two", "DKIM-Signature: h=a:b\r\ndkim-signature : h=a:b:c:d\r\n\r\n", 5, 4},
		{"past the signatures verified", "DKIM-Signature: h=a:b\r\nDKIM-Signature: h=a:b:c:d\r\n\r\n", 1, 2},
		{"name on two lines", "DKIM-Signature\r\n : h=a:b:c\r\n\r\n", 5, 3},
		{"first line starts with a space", " DKIM-Signature: h=a:b:c\r\n\r\n", 5, 3},
		{"bare LF", "DKIM-Signature: h=a:b:c\nFrom: a@example.org\n\n", 5, 3},
		{"not a signature", "X-DKIM-Signature: h=a:b:c\r\n DKIM-Signature: h=a:b:c\r\n\r\n", 5, 0},
		{"header ends at EOF", "DKIM-Signature: h=a:b:c", 5, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mostSignedNames([]byte(tt.head), tt.limit); got != tt.want {
				t.Errorf("mostSignedNames(%q, %d) = %d, want %d", tt.head, tt.limit, got, tt.want)
			}
		})
	}
}

// go-msgauth never verifies a signature listing more names than
// mostSignedNames counts.
func FuzzMostSignedNamesCoversVerify(f *testing.F) {
	f.Add([]byte("DKIM-Signature: v=1; a=ed25519-sha256; d=example.org; s=ed; h=from:to; bh=x; b=y\r\nFrom: a@example.org\r\n\r\nbody\r\n"))
	f.Add([]byte("DKIM-Signature\r\n : v=1; a=ed25519-sha256; d=x; s=y; h=from:\r\n a:b; bh=x; b=y\r\n\r\n"))
	f.Add([]byte(" dkim-signature: v=1; a=ed25519-sha256; d=x; s=y; h=from:a:b; bh=x; b=y\n\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 16<<10 {
			return // see FuzzUnsignedInMemoryMatchesVerify
		}
		verifs, _ := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
			LookupTXT:        func(string) ([]string, error) { return nil, fmt.Errorf("no DNS in this test") },
			MaxVerifications: 5,
		})
		most := mostSignedNames(raw, 5)
		for _, v := range verifs {
			if len(v.HeaderKeys) > most {
				t.Fatalf("go-msgauth read h= of %d names, mostSignedNames counts %d", len(v.HeaderKeys), most)
			}
		}
	})
}

// TestSPFBothMatchesEachIdentityAlone compares checkSPFBoth, which checks
// a sender at its HELO domain once where it can, with check_host run for
// each identity on its own.
func TestSPFBothMatchesEachIdentityAlone(t *testing.T) {
	w := newWorld(t)
	w.srv.AddTXT("local.example", "v=spf1 exists:%{l}.allow.local.example -all")
	w.srv.AddA("alice.allow.local.example", "127.0.0.2")
	w.srv.AddTXT("inc.example", "v=spf1 include:local.example ~all")
	w.srv.AddTXT("whole.example", "v=spf1 exists:%{s}.allow.local.example -all")
	w.srv.AddTXT("domain.example", "v=spf1 exists:%{d}.allow.local.example -all")
	w.srv.AddA("domain.example.allow.local.example", "127.0.0.2")
	c := w.check(t, nil)
	good := netip.MustParseAddr("192.0.2.10")
	for _, env := range []scanner.Envelope{
		{ClientIP: good, HELO: "example.org", MailFrom: "alice@example.org"},
		{ClientIP: netip.MustParseAddr("203.0.113.1"), HELO: "example.org", MailFrom: "alice@example.org"},
		{ClientIP: good, HELO: "mail.example.org", MailFrom: ""},
		{ClientIP: good, HELO: "local.example", MailFrom: "alice@local.example"},
		{ClientIP: good, HELO: "inc.example", MailFrom: "alice@inc.example"},
		{ClientIP: good, HELO: "whole.example", MailFrom: "alice@whole.example"},
		{ClientIP: good, HELO: "domain.example", MailFrom: "alice@domain.example"},
		{ClientIP: good, HELO: "servfail.example", MailFrom: "alice@servfail.example"},
		{ClientIP: good, HELO: "none.example", MailFrom: "alice@none.example"},
		{HELO: "example.org", MailFrom: "alice@example.org"},
	} {
		ctx := context.Background()
		got := c.checkSPFBoth(ctx, &env)
		want := spfResults{
			mailFrom: c.checkSPF(ctx, &env, env.MailFrom, "smtp.mailfrom", "SPF_"),
			helo:     c.checkSPF(ctx, &env, heloSender(&env), "smtp.helo", "SPF_HELO_"),
		}
		if got != want {
			t.Errorf("%+v: checkSPFBoth = %+v, each alone %+v", env, got, want)
		}
	}
	// Both through Check, where the sender's local part decides.
	env := &scanner.Envelope{ClientIP: good, HELO: "local.example", MailFrom: "alice@local.example"}
	r, err := c.Check(context.Background(), env, scanner.Parse(testMessage("alice@local.example")))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"spf=pass smtp.mailfrom=alice@local.example", "spf=fail smtp.helo=local.example"}; !slices.Equal(r.AuthResults[:2], want) {
		t.Errorf("AuthResults = %q, want %q first", r.AuthResults, want)
	}
}

// FuzzSPFSenderSplitsAtItsDomain: check_host splits the sender it gets at
// the first '@' and checks what follows, which must be the domain recorded
// for the result (alignment, Authentication-Results, sender allow lists).
func FuzzSPFSenderSplitsAtItsDomain(f *testing.F) {
	for _, s := range []string{"alice@example.org", `"x@victim.example"@attacker.example`, "ceo@BÄNK.example.", "@", "a@b@c", "no-at"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sender string) {
		domain := spfDomain(sender)
		if domain == "" {
			return
		}
		if _, checked, _ := strings.Cut(spfSender(sender, domain), "@"); checked != domain {
			t.Fatalf("sender %q: check_host would check %q, the result records %q", sender, checked, domain)
		}
	})
}

// TestDKIMOfLongRunsOfEmptyLines: a body that is mostly empty lines, in a
// run at its end or in its middle, signed five times with either body
// canonicalization, verifies at a few copies of its size. go-msgauth kept
// a run of line ends in a buffer each signature's canonicalizer copied at
// every write: 4 MB of empty lines cost 2.9 s of CPU and 2.9 GB of
// allocations with simple (quadratic, deaf to the scan's deadline), and
// each relaxed signature held the run whole.
func TestDKIMOfLongRunsOfEmptyLines(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, nil)
	env := &scanner.Envelope{ClientIP: netip.MustParseAddr("192.0.2.10"), HELO: "mail.example.org", MailFrom: "alice@example.org"}
	run := bytes.Repeat([]byte("\r\n"), 1<<19)
	for _, can := range []dkim.Canonicalization{dkim.CanonicalizationSimple, dkim.CanonicalizationRelaxed} {
		for _, where := range []string{"end", "middle"} {
			raw := append(testMessage("alice@example.org"), run...)
			if where == "middle" {
				raw = append(raw, "Bye.\r\n"...)
			}
			for range 5 {
				var out bytes.Buffer
				if err := dkim.Sign(&out, bytes.NewReader(raw), &dkim.SignOptions{Domain: "example.org", Selector: "ed", Signer: w.edKey, BodyCanonicalization: can}); err != nil {
					t.Fatal(err)
				}
				raw = out.Bytes()
			}
			msg := scanner.Parse(raw)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res, err := c.Check(context.Background(), env, msg)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(res.Symbols, func(s scanner.Symbol) bool { return s.Name == "DKIM_PASS" }) {
				t.Errorf("%s, run at the %s: symbols %v, want DKIM_PASS", can, where, res.Symbols)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*uint64(len(raw)) {
				t.Errorf("%s, run at the %s: verifying %d bytes allocated %d", can, where, len(raw), alloc)
			}
		}
	}
}

// isDomain answers as it did when every HELO went to net.ParseIP.
func FuzzIsDomainMatchesParseIP(f *testing.F) {
	for _, s := range []string{"mail.example.org", "192.0.2.1", "[192.0.2.1]", "::1", "::ffff:192.0.2.1", "1.2.3", "1..2", "fe80::1%eth0", "localhost", "0x7f.0.0.1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := s != "" && !strings.HasPrefix(s, "[") && strings.Contains(s, ".") && net.ParseIP(s) == nil
		if got := isDomain(s); got != want {
			t.Fatalf("isDomain(%q) = %v, with net.ParseIP %v", s, got, want)
		}
	})
}
