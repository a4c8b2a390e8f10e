package smtpd

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/internal/reloadstate"
)

// certReloadInterval is how often the certificate's files are looked at
// (two stats; they are read only when one changed).
const certReloadInterval = 5 * time.Second

// certWatcher serves the certificate of smtp.tls_cert and smtp.tls_key and
// reloads it when either file is replaced, so a renewal (certbot's deploy
// hook, a mounted secret's update) takes effect on a running node: loaded
// once, the certificate expired on nodes that ran past its renewal, and
// senders that verify it (MTA-STS, DANE) deferred the customers' mail
// until someone restarted every node. It holds the pair in force. A reload that fails keeps it: a
// renewal is written as two files, and between the two the new
// certificate does not match the old key; the next change (the key's)
// loads the pair. Handshakes in progress keep the certificate they began
// with.
type certWatcher struct {
	certFile, keyFile string
	log               *slog.Logger
	state             *reloadstate.File
	interval          time.Duration

	mu  sync.Mutex // serialises reloads
	cur atomic.Pointer[tls.Certificate]
	// loaded is the stamp of the pair in force; tried that of the pair
	// last read, which did not load when it differs.
	loaded, tried [2]fileStamp
	// pending is why the pair at tried did not load, not reported yet: a
	// renewal written over the two files is caught between its writes by
	// a look now and then, a healthy renewal the next look loads. The
	// same pair seen again is reported.
	pending error
	// unreadable is the stat error last logged, so that a file gone for
	// good is reported once, not every interval.
	unreadable string
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

// healthCertificate is the /readyz component that reports a pair on disk
// that is not the one in force.
const healthCertificate = "smtp_tls_certificate"

// certState is the reloadstate of the pair, its metrics on reg and its
// condition in h (either may be nil).
func certState(reg prometheus.Registerer, h *health.Registry, certFile, keyFile string) *reloadstate.File {
	return reloadstate.New(reg, h, reloadstate.Spec{
		Metric:    "mxgrid_smtp_tls_certificate",
		Help:      "the STARTTLS certificate and key (smtp.tls_cert, smtp.tls_key)",
		Name:      "STARTTLS certificate",
		Paths:     []string{certFile, keyFile},
		Component: healthCertificate,
	})
}

// loadCert reads the pair once and fails if it cannot: a node configured
// for TLS must not start without it. state receives its loads.
func loadCert(certFile, keyFile string, log *slog.Logger, state *reloadstate.File) (*certWatcher, error) {
	w := &certWatcher{certFile: certFile, keyFile: keyFile, log: log, state: state, interval: certReloadInterval}
	st, err := w.stat()
	if err != nil {
		return nil, err
	}
	cert, err := w.read()
	if err != nil {
		return nil, err
	}
	w.cur.Store(cert)
	w.loaded, w.tried = st, st
	w.state.Loaded()
	w.logLoaded("TLS certificate loaded", cert)
	return w, nil
}

// certificate is tls.Config's GetCertificate: the pair in force.
func (w *certWatcher) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return w.cur.Load(), nil
}

// notAfter is when the certificate in force expires.
func (w *certWatcher) notAfter() time.Time { return w.cur.Load().Leaf.NotAfter }

// run looks at the files every interval (certReloadInterval) until ctx ends. Polling
// (rather than inotify) also sees a symbolic link swapped to a new
// target, as certbot's live directory and Kubernetes' secret volumes do,
// and works on network volumes.
func (w *certWatcher) run(ctx context.Context) {
	periodic.Every(ctx, w.interval, nil, func(context.Context) { w.reload() })
}

// reload loads the pair if either file changed since the last load and
// reports whether a new certificate is now in force.
func (w *certWatcher) reload() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, err := w.stat()
	if err != nil {
		if err.Error() != w.unreadable {
			w.unreadable = err.Error()
			w.state.Failed(err)
			w.log.Warn("TLS certificate files unreadable, keeping the loaded certificate", "err", err)
		}
		// Whatever comes back at the paths is read.
		w.tried, w.pending = [2]fileStamp{}, nil
		return false
	}
	w.unreadable = ""
	switch st {
	case w.loaded:
		// Back as they were: the pair in force again.
		w.tried, w.pending = st, nil
		w.state.InForce()
		return false
	case w.tried:
		// The same bad pair: retrying it every interval would only
		// repeat the error; a new write changes the stamp. Seen a
		// second time, it is no renewal caught halfway.
		if err := w.pending; err != nil {
			w.pending = nil
			w.state.Failed(err)
			w.log.Error("TLS certificate files changed but do not load, keeping the previous certificate",
				"err", err, "not_after", w.notAfter())
		}
		return false
	}
	w.tried, w.pending = st, nil
	cert, err := w.read()
	if err != nil {
		// Reported if the next look finds the same pair.
		w.pending = err
		w.log.Debug("TLS certificate files changed but do not load yet, looking again", "err", err)
		return false
	}
	w.cur.Store(cert)
	w.loaded = st
	w.state.Loaded()
	w.logLoaded("TLS certificate reloaded", cert)
	return true
}

func (w *certWatcher) logLoaded(msg string, cert *tls.Certificate) {
	leaf := cert.Leaf
	attrs := []any{"cert", w.certFile, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter}
	if time.Now().After(leaf.NotAfter) {
		w.log.Warn(msg+", and it has expired", attrs...)
		return
	}
	w.log.Info(msg, attrs...)
}

// read parses the pair, each file read as fsperm.ReadSecret does:
// tls.LoadX509KeyPair reads each whole, and /dev/zero ran the node out of
// memory.
func (w *certWatcher) read() (*tls.Certificate, error) {
	certPEM, err := fsperm.ReadSecret(w.certFile)
	if err != nil {
		return nil, fmt.Errorf("smtp.tls_cert: %w", err)
	}
	keyPEM, err := fsperm.ReadSecret(w.keyFile)
	if err != nil {
		return nil, fmt.Errorf("smtp.tls_key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("smtp.tls_cert, smtp.tls_key: %w", err)
	}
	return &cert, nil
}

func (w *certWatcher) stat() ([2]fileStamp, error) {
	var st [2]fileStamp
	for i, p := range [2]struct{ key, path string }{{"smtp.tls_cert", w.certFile}, {"smtp.tls_key", w.keyFile}} {
		fi, err := os.Stat(p.path)
		if err != nil {
			return st, fmt.Errorf("%s: %w", p.key, err)
		}
		st[i] = fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	}
	return st, nil
}
