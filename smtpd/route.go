package smtpd

import (
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/tenant"
)

// relayRoute is the one place a tenant's route becomes the relay's: tenant
// keeps its own type so the store and admin side do not link the SMTP
// client, and the modes share their names (TestRelayRoute keeps them so).
func relayRoute(r tenant.Route) relay.Route {
	return relay.Route{Addr: r.Addr, TLS: relay.TLSMode(r.TLS), Trusted: r.Trusted}
}
