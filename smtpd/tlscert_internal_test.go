package smtpd

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/smtptest"
)

// TestCertificateReloadedWhenReplaced: a renewal written as two files
// (certificate first, then key, as certbot's deploy and most scripts do)
// is served once both are there, the certificate in force is kept while
// the pair does not load or a file is missing, and an unchanged pair is
// not read again.
func TestCertificateReloadedWhenReplaced(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	// Each write gets its own modification time: a coarse file system
	// clock gives two writes in a row the same one.
	mtime := time.Now().Add(-time.Hour)
	touch := func(paths ...string) {
		mtime = mtime.Add(time.Second)
		for _, p := range paths {
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	write := func(name string) {
		smtptest.WriteCertFiles(t, smtptest.SelfSigned(t, name), certPath, keyPath)
		touch(certPath, keyPath)
	}
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	// writeCertOnly replaces the certificate and leaves the old key.
	writeCertOnly := func(name string) {
		smtptest.WriteCertFiles(t, smtptest.SelfSigned(t, name), certPath, filepath.Join(other, "key.pem"))
		touch(certPath)
	}
	var logs bytes.Buffer
	write("a.test")
	w, err := loadCert(certPath, keyPath, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		change func()
		want   bool
		serves string
	}{
		{"unchanged", func() {}, false, "a.test"},
		{"certificate renewed, key not yet", func() { writeCertOnly("b.test") }, false, "a.test"},
		{"still the same half pair", func() {}, false, "a.test"},
		{"key written too", func() {
			smtptest.WriteCertFiles(t, smtptest.SelfSigned(t, "b.test"), certPath, keyPath)
			touch(certPath, keyPath)
		}, true, "b.test"},
		{"key removed", func() { os.Remove(keyPath) }, false, "b.test"},
		{"garbage in both", func() {
			os.WriteFile(certPath, []byte("not a certificate"), 0o600)
			os.WriteFile(keyPath, []byte("not a key"), 0o600)
			touch(certPath, keyPath)
		}, false, "b.test"},
		{"a whole new pair", func() { write("c.test") }, true, "c.test"},
	}
	for _, st := range steps {
		st.change()
		if got := w.reload(); got != st.want {
			t.Errorf("%s: reload() = %v, want %v", st.name, got, st.want)
		}
		cert, err := w.certificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := cert.Leaf.Subject.CommonName; got != st.serves {
			t.Errorf("%s: serves %s, want %s", st.name, got, st.serves)
		}
		if !w.notAfter().Equal(cert.Leaf.NotAfter) {
			t.Errorf("%s: notAfter %v, the certificate served expires %v", st.name, w.notAfter(), cert.Leaf.NotAfter)
		}
	}
	for _, want := range []string{"do not load, keeping the previous certificate", "unreadable, keeping the loaded certificate", "TLS certificate reloaded"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if n := strings.Count(logs.String(), "do not load"); n != 2 {
		t.Errorf("%d failed loads logged, want 2 (one per change, not one per look):\n%s", n, logs.String())
	}
}
