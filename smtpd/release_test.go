package smtpd_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/smtpd"
	"github.com/mxgrid/mxgrid/tenant"
)

// directory is a tenant snapshot of one domain, or of none.
type directory map[string]*tenant.Domain

func (d directory) Lookup(name string) (*tenant.Domain, bool) {
	dom, ok := d[name]
	return dom, ok
}

// TestReleaseOnlyWhileTheNameIsTheSameDomain: a released message goes to
// its domain's current server only while the name is still the domain (by
// id) that held it. A name deleted, or re-created by another tenant, gets
// nothing: no connection to its server, whose address the error does not
// name either.
func TestReleaseOnlyWhileTheNameIsTheSameDomain(t *testing.T) {
	for _, tc := range []struct {
		name      string
		nowID     int64 // the id a.example has now; 0: not served
		delivered bool
	}{
		{"same domain", 7, true},
		{"name re-created by another domain", 8, false},
		{"deleted", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := smtptest.StartSink(t)
			dir := directory{}
			if tc.nowID != 0 {
				dir["a.example"] = &tenant.Domain{Name: "a.example", ID: tc.nowID, Route: tenant.Route{Addr: sink.Addr, TLS: tenant.TLSNone}}
			}
			rel := relay.New(relay.DefaultConfig(), "mx.mxgrid.test", smtptest.Guard(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
			r := smtpd.Releaser{Directory: dir, Relay: smtpd.Relay{Relay: rel}}
			_, err := r.Deliver(context.Background(), quarantine.HeldDomain{ID: 7, Name: "a.example"}, "s@x.example",
				[]string{"bob@a.example"}, []byte("Subject: x\r\n\r\nx\r\n"))
			if tc.delivered {
				if err != nil || len(sink.Messages()) != 1 {
					t.Fatalf("release: %v, %d delivered; want 1", err, len(sink.Messages()))
				}
				return
			}
			if err == nil || sink.Connections() != 0 {
				t.Fatalf("release: %v, %d connections to the name's server; want an error and none", err, sink.Connections())
			}
		})
	}
}
