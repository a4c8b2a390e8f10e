package smtpd

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/metrictest"
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
	w, err := loadCert(certPath, keyPath, slog.New(slog.NewTextHandler(&logs, nil)), certState(nil, nil, certPath, keyPath))
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
		// A pair that does not load is reported at the second look that
		// finds it, once.
		{"still garbage", func() {}, false, "b.test"},
		{"garbage for a third look", func() {}, false, "b.test"},
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

// TestCertificateNotInForceIsReported: a pair on disk the running poller
// cannot load is counted and named in /readyz as degraded while the node
// presents the previous certificate, and the condition goes once a good
// pair is loaded. Before, it showed only in the log, and the expiry gauge
// looked fine until the old certificate came near its end.
func TestCertificateNotInForceIsReported(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, certPath, keyPath string)
		want   string // in the /readyz reason
	}{
		{"certificate renewed, key not", func(t *testing.T, certPath, keyPath string) {
			smtptest.WriteCertFiles(t, smtptest.SelfSigned(t, "b.test"), certPath, filepath.Join(t.TempDir(), "key.pem"))
		}, "private key does not match public key"},
		{"certificate cut short", func(t *testing.T, certPath, keyPath string) {
			b, err := os.ReadFile(certPath)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(certPath, b[:len(b)/2], 0o600); err != nil {
				t.Fatal(err)
			}
		}, "failed to find any PEM data in certificate input"},
		{"key removed", func(t *testing.T, certPath, keyPath string) { os.Remove(keyPath) }, "smtp.tls_key: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPath, keyPath, w, reg, h := watchedPair(t)
			w.interval = time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { w.run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			loadedAt := metrictest.Gauge(t, reg, "mxgrid_smtp_tls_certificate_loaded_timestamp_seconds", "")

			tt.break_(t, certPath, keyPath)
			cond := waitHealth(t, h, healthCertificate, func(c *health.Condition) bool { return c != nil })
			t.Logf("/readyz: %s", cond.Reason)
			if cond.Level != "degraded" || !strings.HasPrefix(cond.Reason, "STARTTLS certificate not loaded: ") || !strings.Contains(cond.Reason, keyPath) ||
				!strings.Contains(cond.Reason, tt.want) || !strings.Contains(cond.Reason, "still in force") {
				t.Fatalf("/readyz condition %+v; want degraded, naming the certificate, %s and %q", cond, keyPath, tt.want)
			}
			if n := metrictest.Counter(t, reg, "mxgrid_smtp_tls_certificate_loads_total", "error"); n != 1 {
				t.Errorf("loads_total{result=error} = %v, want 1", n)
			}
			if cn := w.cur.Load().Leaf.Subject.CommonName; cn != "a.test" {
				t.Fatalf("presents %s, want the pair in force", cn)
			}

			smtptest.WriteCertFiles(t, smtptest.SelfSigned(t, "c.test"), certPath, keyPath)
			// A write within the file system clock's tick of the last
			// must still be seen.
			later := time.Now().Add(time.Minute)
			for _, p := range []string{certPath, keyPath} {
				if err := os.Chtimes(p, later, later); err != nil {
					t.Fatal(err)
				}
			}
			waitHealth(t, h, healthCertificate, func(c *health.Condition) bool { return c == nil })
			if cn := w.cur.Load().Leaf.Subject.CommonName; cn != "c.test" {
				t.Fatalf("condition cleared while presenting %s", cn)
			}
			if got := metrictest.Gauge(t, reg, "mxgrid_smtp_tls_certificate_loaded_timestamp_seconds", ""); got <= loadedAt {
				t.Errorf("loaded timestamp %v not past the first load's %v", got, loadedAt)
			}
		})
	}
}

// waitHealth polls h's condition of component (nil when none) until ok.
func waitHealth(t *testing.T, h *health.Registry, component string, ok func(*health.Condition) bool) *health.Condition {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var cond *health.Condition
		_, conds := h.Report()
		for i := range conds {
			if conds[i].Component == component {
				cond = &conds[i]
			}
		}
		if ok(cond) {
			return cond
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s condition still %+v after 5 s", component, cond)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCertificateRenewalCaughtBetweenItsWritesIsNoFailure: a renewal
// written over the two files, as README tells, has a moment where one is
// new and the other old; a look in that moment reads a pair that does not
// load. That is a healthy renewal, not a failed one: before, it was
// counted in loads_total{result="error"} and /readyz said degraded until
// the next look, so an alert on the counter fired on renewals that went
// well. A pair is reported once the same one is seen again.
func TestCertificateRenewalCaughtBetweenItsWritesIsNoFailure(t *testing.T) {
	tests := []struct {
		name  string
		first string // "cert" or "key": the file the renewal writes first
	}{
		{"certificate first", "cert"},
		{"key first", "key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPath, keyPath, w, reg, h := watchedPair(t)
			// The renewed pair, written aside, then copied over one
			// file at a time with a look between.
			newDir := t.TempDir()
			newCert, newKey := filepath.Join(newDir, "cert.pem"), filepath.Join(newDir, "key.pem")
			smtptest.WriteCertFiles(t, smtptest.SelfSigned(t, "b.test"), newCert, newKey)
			order := [][2]string{{newCert, certPath}, {newKey, keyPath}}
			if tt.first == "key" {
				order[0], order[1] = order[1], order[0]
			}
			later := time.Now().Add(time.Minute)
			for i, c := range order {
				b, err := os.ReadFile(c[0])
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(c[1], b, 0o600); err != nil {
					t.Fatal(err)
				}
				// Its own mtime, whatever the file system clock's tick.
				if err := os.Chtimes(c[1], later, later); err != nil {
					t.Fatal(err)
				}
				loaded := w.reload()
				if want := i == 1; loaded != want {
					t.Fatalf("look after write %d: reload() = %v, want %v", i+1, loaded, want)
				}
				if _, conds := h.Report(); len(conds) != 0 {
					t.Errorf("look after write %d: /readyz conditions %+v, want none", i+1, conds)
				}
				if n := metrictest.Counter(t, reg, "mxgrid_smtp_tls_certificate_loads_total", "error"); n != 0 {
					t.Errorf("look after write %d: loads_total{result=error} = %v, want 0", i+1, n)
				}
			}
			if cn := w.cur.Load().Leaf.Subject.CommonName; cn != "b.test" {
				t.Fatalf("presents %s after the renewal, want b.test", cn)
			}
		})
	}
}

// watchedPair writes a good certificate pair to a test directory and loads
// it, with its reload state on a registry and health of the test's own.
func watchedPair(t *testing.T) (certPath, keyPath string, w *certWatcher, reg *prometheus.Registry, h *health.Registry) {
	t.Helper()
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	smtptest.WriteCertFiles(t, smtptest.SelfSigned(t, "a.test"), certPath, keyPath)
	reg, h = prometheus.NewRegistry(), health.New()
	w, err := loadCert(certPath, keyPath, slog.New(slog.DiscardHandler), certState(reg, h, certPath, keyPath))
	if err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath, w, reg, h
}
