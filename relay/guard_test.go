package relay

import (
	"context"
	"errors"
	"github.com/mxgrid/mxgrid/mailaddr"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/netguard"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// rawDownstream accepts connections and plays a scripted greeting and EHLO
// reply, counting connections.
func rawDownstream(t *testing.T, greeting, ehlo string) (addr string, conns *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	conns = new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, greeting)
				buf := make([]byte, 512)
				if _, err := c.Read(buf); err != nil {
					return
				}
				io.WriteString(c, ehlo)
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return l.Addr().String(), conns
}

func guardedRelay(g *netguard.Guard) *Relay {
	return New(DefaultConfig(), "mx1.mxgrid.test", g, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
}

func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func wantReply(t *testing.T, err error, code int, enh [3]int) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code || e.Enhanced != enh {
		t.Fatalf("got %v, want %d %d.%d.%d", err, code, enh[0], enh[1], enh[2])
	}
}

// TestTenantRouteChecked: a tenant route into loopback is refused at
// connect without a connection (451 4.4.4, counted by class); the same
// address as a static (trusted) route is delivered to.
func TestTenantRouteChecked(t *testing.T) {
	addr, conns := rawDownstream(t, "220 customer.test ESMTP\r\n", "250 customer.test\r\n")
	r := guardedRelay(netguard.New(nil, nil))
	_, err := r.Begin(context.Background(), Route{Addr: addr, TLS: TLSOpportunistic}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
	wantReply(t, err, 451, [3]int{4, 4, 4})
	if n := conns.Load(); n != 0 {
		t.Fatalf("refused route got %d connections", n)
	}
	if got := value(t, r.refused.WithLabelValues("loopback")); got != 1 {
		t.Errorf("refused_dials{class=loopback} = %v, want 1", got)
	}

	_, daddr := startDownstream(t, false)
	if err := send(t, r, Route{Addr: daddr, TLS: TLSNone, Trusted: true}); err != nil {
		t.Fatalf("trusted route: %v", err)
	}
}

// TestLoopByAddress: a route to our own listen address is a loop found
// before dialling, even for a trusted route.
func TestLoopByAddress(t *testing.T) {
	addr, conns := rawDownstream(t, "220 customer.test ESMTP\r\n", "250 customer.test\r\n")
	g := loopbackGuard()
	g.SetSelf(netip.MustParseAddrPort(addr))
	r := guardedRelay(g)
	for _, trusted := range []bool{false, true} {
		_, err := r.Begin(context.Background(), Route{Addr: addr, TLS: TLSOpportunistic, Trusted: trusted}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
		wantReply(t, err, 554, [3]int{5, 4, 6})
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("loop route got %d connections", n)
	}
	if got := value(t, r.loops.WithLabelValues("address")); got != 2 {
		t.Errorf("loops{detected_by=address} = %v, want 2", got)
	}
}

// TestLoopByGreeting: a downstream that greets, or answers EHLO, with our
// host name is this node behind another address (NAT, a proxy), and with
// a member's host name that member: 554 5.4.6 after one connection, no
// TLS retry, no MAIL.
func TestLoopByGreeting(t *testing.T) {
	for _, tc := range []struct {
		name, greeting, ehlo, by string
	}{
		{"greeting", "220 MX1.mxgrid.test. ESMTP mxgrid\r\n", "250 other.test\r\n", "greeting"},
		{"ehlo", "220 proxy.test ESMTP\r\n", "250-mx1.mxgrid.test Hello\r\n250 STARTTLS\r\n", "ehlo"},
		{"member's greeting", "220 mx2.mxgrid.test ESMTP mxgrid\r\n", "250 mx2.mxgrid.test\r\n", "greeting"},
		{"member's ehlo", "220 proxy.test ESMTP\r\n", "250-MX2.mxgrid.test. Hello\r\n250 STARTTLS\r\n", "ehlo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, conns := rawDownstream(t, tc.greeting, tc.ehlo)
			g := loopbackGuard()
			g.SetMemberHostnames(func() []string { return []string{"mx1.mxgrid.test", "mx2.mxgrid.test"} })
			r := guardedRelay(g)
			for _, mode := range []TLSMode{TLSNone, TLSOpportunistic, TLSRequired} {
				_, err := r.Begin(context.Background(), Route{Addr: addr, TLS: mode}, mailaddr.Address{Local: "a", Domain: "sender.test"}, MailOptions{})
				wantReply(t, err, 554, [3]int{5, 4, 6})
			}
			if n := conns.Load(); n != 3 {
				t.Errorf("%d connections for 3 attempts, want 3", n)
			}
			if got := value(t, r.loops.WithLabelValues(tc.by)); got != 3 {
				t.Errorf("loops{detected_by=%s} = %v, want 3", tc.by, got)
			}
		})
	}
}
