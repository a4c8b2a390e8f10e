package smtpd_test

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/dnsresolver"
	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/auth"
)

// authStage is the real sender checks for a node configured as cfg,
// asking the DNS server dnsCfg names.
func authStage(t *testing.T, cfg *config.Config, dnsCfg dnsresolver.Config) scanner.Stage {
	t.Helper()
	authCfg := auth.DefaultConfig()
	authCfg.AuthservID = cfg.AuthServID()
	check, err := auth.New(authCfg, dnsresolver.New(dnsCfg, prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return check.Stage()
}

// TestAuthResultsStaySevenBitAndPrivate: with the real sender checks and a
// resolver that refuses every query, a client saying EHLO with a UTF-8
// name sends a 7-bit message to a customer's server without 8BITMIME. Our
// Authentication-Results header held the name raw (the message became
// 8-bit and was refused 554 5.6.3) and the DNS error's text, which names
// the resolver's address and the node's UDP ports, for every recipient to
// read.
func TestAuthResultsStaySevenBitAndPrivate(t *testing.T) {
	dnsCfg := dnsresolver.DefaultConfig()
	dnsCfg.Server, dnsCfg.Timeout, dnsCfg.CacheSize = "127.0.0.1:1", time.Second, 0
	cfg := testConfig(t)
	sink := startRawSink(t)
	sink.withhold8BitMIME()
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
	n := startConfigured(t, cfg, []scanner.Stage{authStage(t, &cfg, dnsCfg)})

	c := dial(t, n.SMTPAddr())
	c.cmd(250, "EHLO caf\xc3\xa9.sender.test")
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(250, "From: alice@sender.test\r\nSubject: seven bits\r\n\r\nplain\r\n")

	got := sink.messages()
	if len(got) != 1 {
		t.Fatalf("customer server got %d messages", len(got))
	}
	header, _, _ := bytes.Cut(got[0], []byte("\r\n\r\n"))
	var ar string
	for _, line := range strings.Split(strings.ReplaceAll(string(header), "\r\n\t", " "), "\r\n") {
		if strings.HasPrefix(line, "Authentication-Results:") {
			ar = line
		}
	}
	if !strings.Contains(ar, "smtp.helo=xn--caf-dma.sender.test") || strings.Contains(ar, "127.0.0.1") || strings.Contains(ar, "udp") {
		t.Errorf("Authentication-Results %q: want the HELO as its A-label and no resolver address or socket", ar)
	}
	for _, b := range header {
		if b >= 0x80 {
			t.Fatalf("relayed header is 8-bit: %q", header)
		}
	}
}

// TestAllowedSenderMustBeAuthenticated: a sender on the domain's allow
// list is excused from the spam verdict only when the real sender checks
// vouch for it. A spammer who guessed the allowed partner and wrote its
// address in MAIL FROM, from an address its SPF record does not list, is
// judged as anyone else, and the verdict says why the list did not apply.
func TestAllowedSenderMustBeAuthenticated(t *testing.T) {
	dns := dnstest.Start(t)
	dns.AddTXT("partner.test", "v=spf1 ip4:127.0.0.1 -all")
	dns.AddTXT("spoofed.test", "v=spf1 ip4:192.0.2.1 -all")
	dnsCfg := dnsresolver.DefaultConfig()
	dnsCfg.Server, dnsCfg.Timeout = dns.Addr, time.Second
	cfg := testConfig(t)
	sink := smtptest.StartSink(t)
	d := smtptest.Domain("example.org", sink.Addr)
	d.SenderAllow = []string{"partner.test", "spoofed.test", "nospf.test"}
	cfg.Domains = append(cfg.Domains, d)
	n := startConfigured(t, cfg, []scanner.Stage{authStage(t, &cfg, dnsCfg), {Check: scoreCheck{score: 30}}})

	c := dial(t, n.SMTPAddr())
	for _, tt := range []struct {
		from  string
		reply int
	}{
		{"news@partner.test", 250}, // SPF pass: the allow list applies
		{"ceo@spoofed.test", 550},  // SPF fail: a forged allowed sender
		{"friend@nospf.test", 550}, // nothing vouches for it
		{"news@partner.test", 250}, // and the session goes on
	} {
		c.cmd(250, "MAIL FROM:<%s>", tt.from)
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.data(tt.reply, "From: "+tt.from+"\r\nSubject: allowed?\r\n\r\nbody\r\n")
	}
	got := sink.Messages()
	if len(got) != 2 || got[0].From != "news@partner.test" || got[1].From != "news@partner.test" {
		t.Fatalf("customer server got %+v, want the authenticated partner's two messages only", got)
	}
	if !strings.Contains(string(got[0].Data), "spf=pass") {
		t.Errorf("delivered message lacks spf=pass:\n%s", got[0].Data)
	}
}

// TestIDNSenderAuthResultsStaySevenBit: a sender at a UTF-8 domain with an
// ASCII local part goes to a customer's server without SMTPUTF8 as its
// A-labels; with the real sender checks, our Authentication-Results named
// it raw (smtp.mailfrom="info@bücher.example"), which made our own header
// field 8-bit, and the message was refused 550 5.6.7 at the end of DATA
// for what we wrote. The sender is named as the A-labels SPF checked.
func TestIDNSenderAuthResultsStaySevenBit(t *testing.T) {
	dnsCfg := dnsresolver.DefaultConfig()
	dnsCfg.Server, dnsCfg.Timeout, dnsCfg.CacheSize = "127.0.0.1:1", time.Second, 0
	cfg := testConfig(t)
	sink := startRawSink(t)
	sink.withholdSMTPUTF8()
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
	n := startConfigured(t, cfg, []scanner.Stage{authStage(t, &cfg, dnsCfg)})

	c := dial(t, n.SMTPAddr())
	c.cmd(250, "EHLO mx.sender.test")
	c.cmd(250, "MAIL FROM:<info@bücher.example> SMTPUTF8")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.data(250, "From: info@xn--bcher-kva.example\r\nSubject: seven bits\r\n\r\nplain\r\n")

	got := sink.messages()
	if len(got) != 1 {
		t.Fatalf("customer server got %d messages", len(got))
	}
	header, _, _ := bytes.Cut(got[0], []byte("\r\n\r\n"))
	if !strings.Contains(strings.ReplaceAll(string(header), "\r\n\t", " "), "smtp.mailfrom=info@xn--bcher-kva.example") {
		t.Errorf("header %q: want smtp.mailfrom in A-labels", header)
	}
	for _, b := range header {
		if b >= 0x80 {
			t.Fatalf("relayed header is 8-bit: %q", header)
		}
	}
}
