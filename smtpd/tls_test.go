package smtpd_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/smtptest"
)

func writeCert(t *testing.T) (certPath, keyPath string) {
	t.Helper()
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	smtptest.WriteCertFiles(t, smtptest.SelfSigned(t, "mx.test"), certPath, keyPath)
	return certPath, keyPath
}

func TestSTARTTLS(t *testing.T) {
	certPath, keyPath := writeCert(t)
	n, sink := startNode(t, func(c *config.Config) { c.SMTP.TLSCert, c.SMTP.TLSKey = certPath, keyPath })
	c, err := smtp.DialStartTLS(n.SMTPAddr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("alice@sender.test", []string{"bob@example.org"}, strings.NewReader(testMessage)); err != nil {
		t.Fatal(err)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 || !bytes.Contains(msgs[0].Data[:200], []byte("with ESMTPS")) {
		t.Fatalf("Received header does not record TLS: %+v", msgs)
	}

	plain, _ := startNode(t, nil)
	pc := dial(t, plain.SMTPAddr())
	if ext := pc.cmd(250, "EHLO again.test"); strings.Contains(ext, "STARTTLS") {
		t.Fatal("STARTTLS offered without a certificate")
	}
}

// TestSTARTTLSKeepsUnknownRecipientCount: go-smtp starts a new session
// after STARTTLS; the refused-recipient count is the connection's, so a
// harvester that upgrades halfway does not get smtp.max_unknown_recipients
// twice.
func TestSTARTTLSKeepsUnknownRecipientCount(t *testing.T) {
	certPath, keyPath := writeCert(t)
	n, _ := startNode(t, func(c *config.Config) {
		c.SMTP.TLSCert, c.SMTP.TLSKey = certPath, keyPath
		c.SMTP.MaxUnknownRecipients = 2
	})
	c, err := smtp.Dial(n.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	refused := func(want int, to string) {
		t.Helper()
		var e *smtp.SMTPError
		if err := c.Rcpt(to, nil); !errors.As(err, &e) || e.Code != want {
			t.Fatalf("RCPT %s: %v, want %d", to, err, want)
		}
	}
	if err := c.Mail("mallory@sender.test", nil); err != nil {
		t.Fatal(err)
	}
	refused(550, "guess1@unprovisioned.test")
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("mallory@sender.test", nil); err != nil {
		t.Fatal(err)
	}
	refused(550, "guess2@unprovisioned.test")
	refused(421, "guess3@unprovisioned.test")
}
