package smtpd

import (
	"testing"

	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestRelayRoute: every tenant TLS mode is the relay's of the same name,
// so the conversion neither loses nor changes a route. (Modes are parsed
// only in tenant, from config, API and snapshot file.)
func TestRelayRoute(t *testing.T) {
	for _, tc := range []struct {
		in   tenant.TLSMode
		want relay.TLSMode
	}{
		{tenant.TLSNone, relay.TLSNone},
		{tenant.TLSOpportunistic, relay.TLSOpportunistic},
		{tenant.TLSRequired, relay.TLSRequired},
	} {
		for _, trusted := range []bool{false, true} {
			in := tenant.Route{Addr: "mx.test:25", TLS: tc.in, Trusted: trusted}
			want := relay.Route{Addr: "mx.test:25", TLS: tc.want, Trusted: trusted}
			if got := relayRoute(in); got != want {
				t.Errorf("relayRoute(%+v) = %+v, want %+v", in, got, want)
			}
		}
	}
}
