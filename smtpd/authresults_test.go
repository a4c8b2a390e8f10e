package smtpd_test

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/dnsresolver"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/auth"
)

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
	authCfg := auth.DefaultConfig()
	authCfg.AuthservID = cfg.AuthServID()
	check, err := auth.New(authCfg, dnsresolver.New(dnsCfg, prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	sink := startRawSink(t)
	sink.withhold8BitMIME()
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", sink.Addr))
	n := startConfigured(t, cfg, []scanner.Stage{check.Stage()})

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
