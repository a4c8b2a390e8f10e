package demo

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/nodetest"
)

// TestDeliverFromLoopback: a sample message with no external Received hop
// is replayed as coming from loopback, to a node that, like the demo's,
// requires a PROXY header from loopback. It was sent without one, and the
// node closed the connection: the demo printed "EOF" for it.
func TestDeliverFromLoopback(t *testing.T) {
	n, _ := nodetest.StartWithSink(t, func(c *config.Config) {
		c.Domains[0].Name = Domain
		c.SMTP.TrustedProxies = []string{"127.0.0.0/8"}
	})
	msg := []byte("From: a@sender.mxgrid.demo\r\nTo: postmaster@" + Domain + "\r\nSubject: lunch\r\n\r\nShall we meet at noon?\r\n")
	for _, src := range []netip.Addr{{}, netip.MustParseAddr("192.0.2.7")} {
		if got := deliver(context.Background(), n.SMTPAddr(), src, msg); !strings.HasPrefix(got, "250 ") {
			t.Errorf("from %v: %q, want 250", src, got)
		}
	}
}
