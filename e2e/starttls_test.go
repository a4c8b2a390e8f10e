package e2e

import (
	"crypto/tls"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/internal/testenv"
)

// TestRenewedCertificateServedWithoutRestart: a running node presents the
// certificate written over smtp.tls_cert and smtp.tls_key, and exports
// when the one it presents expires. Loaded once, a renewed certificate
// reached senders only after a restart, and the old one expired on nodes
// that ran past it.
func TestRenewedCertificateServedWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	smtptest.WriteCertFiles(t, smtptest.SelfSignedUntil(t, "old.mx.test", time.Now().Add(24*time.Hour)), certPath, keyPath)
	n, _ := nodetest.StartWithSink(t, func(c *config.Config) { c.SMTP.TLSCert, c.SMTP.TLSKey = certPath, keyPath })

	presented := func() *tls.ConnectionState {
		t.Helper()
		c, err := smtp.DialStartTLS(n.SMTPAddr(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The client's EHLO after STARTTLS, which go-smtp defers to the
		// next command, completes the handshake.
		if err := c.Noop(); err != nil {
			t.Fatal(err)
		}
		state, ok := c.TLSConnectionState()
		if !ok {
			t.Fatal("no TLS after STARTTLS")
		}
		return &state
	}
	expiry := func() float64 {
		t.Helper()
		v, found, err := testenv.MetricSum(http.DefaultClient, "http://"+n.ManagementAddr()+"/metrics", "mxgrid_smtp_tls_certificate_expiry_timestamp_seconds ")
		if err != nil || !found {
			t.Fatalf("certificate expiry metric: found %v, %v", found, err)
		}
		return v
	}
	old := presented().PeerCertificates[0]
	if old.Subject.CommonName != "old.mx.test" || expiry() != float64(old.NotAfter.Unix()) {
		t.Fatalf("presents %s expiring %v, metric says %v", old.Subject.CommonName, old.NotAfter, expiry())
	}

	renewed := smtptest.SelfSignedUntil(t, "new.mx.test", time.Now().Add(90*24*time.Hour))
	smtptest.WriteCertFiles(t, renewed, certPath, keyPath)
	deadline := time.Now().Add(20 * time.Second) // the files are looked at every 5 s
	for {
		got := presented().PeerCertificates[0]
		if got.Subject.CommonName == "new.mx.test" {
			if want := float64(got.NotAfter.Unix()); expiry() != want {
				t.Errorf("expiry metric %v, the certificate presented expires at %v", expiry(), want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still presenting %s 20 s after the files were replaced", got.Subject.CommonName)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
