package smtpd_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// storeLoader is a tenant store that is down until up is set.
type storeLoader struct{ up bool }

func (l *storeLoader) data() tenant.Data {
	return tenant.Data{
		Version:   1,
		Customers: []tenant.Customer{{ID: 1}},
		Domains: []tenant.DomainRecord{
			{ID: 2, CustomerID: 1, Name: "provisioned.example", Route: "127.0.0.1:1", TLS: "none"},
			// A row the API would refuse (restored from an old backup,
			// edited by hand): provisioned, but it cannot be served.
			{ID: 3, CustomerID: 1, Name: "damaged.example", Route: "no port", TLS: "none"},
		},
	}
}

func (l *storeLoader) Load(context.Context) (tenant.Data, error) {
	if !l.up {
		return tenant.Data{}, errors.New("connection refused")
	}
	return l.data(), nil
}

func (l *storeLoader) LoadSince(ctx context.Context, _ uint64) (tenant.Delta, error) {
	_, err := l.Load(ctx)
	return tenant.Delta{}, errors.Join(err, tenant.ErrChangesGone)
}

// TestUnknownDomainWhileTenantsUnloaded: a node started while the tenant
// store is down and without a snapshot file knows only its config file's
// domains. A domain it does not find may be provisioned, so RCPT must
// defer (4xx), not bounce it for good with 550; once the store answers,
// an unknown domain is refused as before, and a provisioned one whose
// stored record cannot be served is deferred (it was refused as unknown:
// its mail bounced while the record waited for repair).
func TestUnknownDomainWhileTenantsUnloaded(t *testing.T) {
	cfg := testConfig(t)
	deps := configDeps(t, cfg, nil)
	loader := &storeLoader{}
	syncer, err := tenant.NewSyncer(context.Background(), tenant.SyncConfig{ReloadInterval: time.Second, StaleAfter: 1}, tenant.SyncOptions{
		Loader: loader, DataDir: t.TempDir(), Health: health.New(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	deps.Directory = syncer.Directory()
	n := startWith(t, cfg, deps)

	for _, tc := range []struct {
		name      string
		storeUp   bool
		rcpt      string
		code      int
		enhPrefix string
	}{
		{"store down: provisioned domain", false, "bob@provisioned.example", 451, "4.3.0"},
		{"store down: any other domain", false, "victim@open-relay.test", 451, "4.3.0"},
		{"store up: unknown domain", true, "victim@open-relay.test", 550, "5.7.1"},
		{"store up: provisioned domain whose record cannot be served", true, "bob@damaged.example", 451, "4.3.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.storeUp && !loader.up {
				loader.up = true
				if err := syncer.Reload(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<x@sender.test>")
			if msg := c.cmd(tc.code, "RCPT TO:<%s>", tc.rcpt); !strings.HasPrefix(msg, tc.enhPrefix) {
				t.Errorf("RCPT TO:<%s>: reply %q, want %d %s", tc.rcpt, msg, tc.code, tc.enhPrefix)
			}
		})
	}
}
