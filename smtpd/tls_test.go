package smtpd_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/config"
)

func writeCert(t *testing.T) (certPath, keyPath string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"mx.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
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
