package smtpd

import (
	"testing"

	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestRelayRoute: every tenant TLS mode is one the relay knows under the
// same name, so the conversion neither loses nor changes a route.
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
			if m, err := relay.ParseTLSMode(string(tc.in)); err != nil || m != tc.want {
				t.Errorf("relay.ParseTLSMode(%q) = %q, %v; want %q", tc.in, m, err, tc.want)
			}
		}
	}
}
