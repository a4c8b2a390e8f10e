package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want Class
	}{
		{"8.8.8.8", Public},
		{"2a00:1450:4001::1", Public},
		{"127.0.0.1", Loopback},
		{"127.255.0.9", Loopback},
		{"::1", Loopback},
		{"::ffff:127.0.0.1", Loopback},
		{"64:ff9b::7f00:1", Loopback},
		{"2002:7f00:1::", Loopback},
		{"10.1.2.3", Private},
		{"172.16.0.1", Private},
		{"192.168.1.1", Private},
		{"fd00::1", Private},
		{"::ffff:10.0.0.1", Private},
		{"64:ff9b::a01:203", Private},
		{"2002:c0a8:101::1", Private},
		{"169.254.169.254", LinkLocal},
		{"fe80::1", LinkLocal},
		{"100.64.0.1", CGNAT},
		{"100.127.255.254", CGNAT},
		{"239.1.2.3", Multicast},
		{"ff02::1", LinkLocal},
		{"ff0e::1", Multicast},
		{"0.0.0.0", Unspecified},
		{"::", Unspecified},
		{"255.255.255.255", Broadcast},
		{"192.0.2.1", Reserved},
		{"240.0.0.1", Reserved},
		{"0.1.2.3", Reserved},
		{"2001:db8::1", Reserved},
		{"fec0::1", Reserved},
		{"64:ff9b::808:808", Public},
	} {
		if got := Classify(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("Classify(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"mail.example.com:25", "mail.example.com:25", ""},
		{"Mail.Example.COM.:2525", "mail.example.com:2525", ""},
		{"127.0.0.1:25", "127.0.0.1:25", ""},
		{"[::1]:25", "[::1]:25", ""},
		{"localhost:25", "localhost:25", ""},
		{"mail.example.com", "", "host:port"},
		{":25", "", "no host"},
		{"h.example:0", "", "port"},
		{"h.example:65536", "", "port"},
		{"h.example:+25", "", "port"},
		{"2130706433:25", "", "numeric"},
		{"0x7f.1:25", "", "numeric"},
		{"0x7f000001:25", "", "numeric"},
		{"127.1:25", "", "numeric"},
		{"0177.0.0.1:25", "", "numeric"},
		{"127.0.0.01:25", "", "numeric"},
		{"[fe80::1%eth0]:25", "", "zone"},
		{"a b.example:25", "", "contains"},
		{"a..example:25", "", "label"},
	} {
		got, err := ParseTarget(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseTarget(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseTarget(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestParseListen(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"127.0.0.1:25", "127.0.0.1:25", ""},
		{":25", ":25", ""},
		{"127.0.0.1:0", "127.0.0.1:0", ""},
		{"[::]:2525", "[::]:2525", ""},
		{"localhost:8025", "localhost:8025", ""},
		{"127.0.0.1:99999", "", "port"},
		{"127.0.0.1:smtp", "", "port"},
		{"127.0.0.1:-1", "", "port"},
		{"127.0.0.1", "", "host:port"},
		{"127.1:25", "", "numeric"},
	} {
		got, err := ParseListen(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseListen(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseListen(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"mail.example.com:25", "[::1]:25", "0x7f.1:25", "127.1:25", "localhost:25", "[::ffff:127.0.0.1]:25"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			return
		}
		// A parsed target serialises to a form that parses to itself, and
		// a name never hides a number.
		again, err := ParseTarget(tg.String())
		if err != nil || again != tg {
			t.Fatalf("%q -> %v -> %v, %v", s, tg, again, err)
		}
		if tg.Host != "" {
			if _, err := netip.ParseAddr(tg.Host); err == nil {
				t.Fatalf("%q: host %q is an address", s, tg.Host)
			}
			if numeric(tg.Host[strings.LastIndexByte(tg.Host, '.')+1:]) {
				t.Fatalf("%q: numeric host %q accepted", s, tg.Host)
			}
		}
	})
}

func resolver(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func TestCheckRoute(t *testing.T) {
	dns := dnstest.Start(t)
	dns.AddA("inward.example.", "127.0.0.1")
	dns.AddA("meta.example.", "169.254.169.254")
	dns.AddA("out.example.", "198.51.100.7") // reserved (documentation)
	dns.AddA("public.example.", "8.8.4.4")
	g := New(resolver(dns.Addr), []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")})
	g.SetSelf(netip.MustParseAddrPort("192.0.2.10:25"))
	g.SetMembers(func() []netip.Addr {
		return []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("10.9.0.5")}
	})
	ctx := context.Background()
	type check struct {
		route   string
		trusted bool
		want    error // nil, ErrRefused or ErrLoop
	}
	checks := []check{
		{"public.example:25", false, nil},
		{"8.8.4.4:25", false, nil},
		{"127.0.0.1:25", false, ErrRefused},
		{"[::1]:25", false, ErrRefused},
		{"[::ffff:127.0.0.1]:25", false, ErrRefused},
		{"localhost:25", false, ErrRefused},
		{"foo.localhost:25", false, ErrRefused},
		{"10.1.2.3:25", false, ErrRefused},
		{"169.254.169.254:80", false, ErrRefused},
		{"100.64.1.1:25", false, ErrRefused},
		{"inward.example:25", false, ErrRefused},
		{"meta.example:25", false, ErrRefused},
		{"out.example:25", false, ErrRefused},
		{"10.9.3.4:25", false, nil},      // allowed by the operator
		{"127.0.0.1:25", true, nil},      // static config route
		{"192.0.2.10:25", true, ErrLoop}, // our own listener
		{"192.0.2.10:2525", true, nil},   // another service on our host
		{"8.8.8.8:25", false, ErrLoop},   // a member at our SMTP port
		{"[::ffff:8.8.8.8]:25", true, ErrLoop},
		{"8.8.8.8:587", false, ErrRefused}, // another service of a member
		{"[::ffff:8.8.8.8]:7946", false, ErrRefused},
		{"8.8.8.8:587", true, nil},
		// A member inside the allowed network is still the cluster's: its
		// management listener is no customer's server.
		{"10.9.0.5:8026", false, ErrRefused},
		{"[::ffff:10.9.0.5]:7946", false, ErrRefused},
		{"10.9.0.5:25", true, ErrLoop},
		{"10.9.0.5:8026", true, nil},
	}
	// So is this host's own address there.
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.IsPrivate() {
				ip, _ := netip.AddrFromSlice(n.IP)
				g.allowed = append(g.allowed, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
				checks = append(checks, check{net.JoinHostPort(n.IP.String(), "8026"), false, ErrRefused})
			}
		}
	}
	for _, tc := range checks {
		_, err := g.Check(ctx, tc.route, tc.trusted)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("Check(%s, trusted=%v) = %v, want ok", tc.route, tc.trusted, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("Check(%s, trusted=%v) = %v, want %v", tc.route, tc.trusted, err, tc.want)
		}
	}
	var re *RefusedError
	if _, err := g.Check(ctx, "8.8.8.8:5432", false); !errors.As(err, &re) || re.Class != Cluster || !strings.Contains(err.Error(), "cluster's nodes") {
		t.Errorf("a member's other port: %v, want refused as a cluster address", err)
	}
	// Listening on every address, every local address at our port is us.
	wild := New(nil, nil)
	wild.SetSelf(netip.MustParseAddrPort("0.0.0.0:25"))
	loops := []string{"127.0.0.5:25", "0.0.0.0:25", "localhost:25"}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() {
				loops = append(loops, net.JoinHostPort(n.IP.String(), "25"))
			}
		}
	}
	for _, route := range loops {
		if _, err := wild.Check(ctx, route, true); !errors.Is(err, ErrLoop) {
			t.Errorf("listening on 0.0.0.0:25, Check(%s) = %v, want a loop", route, err)
		}
	}
	if _, err := wild.Check(ctx, "127.0.0.5:26", true); err != nil {
		t.Errorf("another port of this host: %v", err)
	}

	// localhost never goes to DNS.
	if n := dns.Queries("localhost."); n != 0 {
		t.Errorf("localhost was looked up %d times", n)
	}
}

// TestRefusalOfANameHidesItsAddress: a route name is refused naming the
// class of what it resolves to, not the address. The node's resolver
// answers the names of the operator's internal zones (split-horizon DNS,
// Kubernetes service names) too, and a reseller setting one as a route
// read the internal address in the API's 400 and in the panel's route
// test. An address the route names itself is the tenant's own input.
func TestRefusalOfANameHidesItsAddress(t *testing.T) {
	dns := dnstest.Start(t)
	dns.AddA("db.internal.example.", "10.1.2.3")
	dns.AddA("node2.internal.example.", "192.0.2.77")
	g := New(resolver(dns.Addr), nil)
	g.SetSelf(netip.MustParseAddrPort("192.0.2.10:25"))
	g.SetMembers(func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("192.0.2.77")} })
	for _, tc := range []struct {
		route, class string
		want         error
	}{
		{"db.internal.example:25", "private", ErrRefused},
		{"node2.internal.example:5432", "cluster's nodes", ErrRefused},
		{"node2.internal.example:25", "own SMTP service", ErrLoop},
	} {
		_, err := g.Check(context.Background(), tc.route, false)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.class) {
			t.Errorf("%s: %v, want %v naming %q", tc.route, err, tc.want, tc.class)
		}
		if err != nil && (strings.Contains(err.Error(), "10.1.2.3") || strings.Contains(err.Error(), "192.0.2.77")) {
			t.Errorf("%s: %q names the address", tc.route, err)
		}
	}
	if _, err := g.Check(context.Background(), "10.1.2.3:25", false); err == nil || !strings.Contains(err.Error(), "10.1.2.3") {
		t.Errorf("an address route: %v, want it named", err)
	}
}

// TestUnresolvedNameHidesTheResolver: a name that does not resolve is
// refused with what DNS said of it, not the DNS error's text, which names
// the node's resolver ("lookup x on 10.0.0.2:53: no such host") and
// reached tenants in the panel's route test and a release's 502; the
// DNS error stays wrapped for whoever classifies it.
func TestUnresolvedNameHidesTheResolver(t *testing.T) {
	dns := dnstest.Start(t)
	g := New(resolver(dns.Addr), nil)
	_, err := g.Check(context.Background(), "nx.example:25", false)
	var de *net.DNSError
	if !errors.Is(err, ErrUnresolved) || !errors.As(err, &de) || !de.IsNotFound {
		t.Fatalf("Check = %v, want ErrUnresolved wrapping a not-found DNS error", err)
	}
	if msg := err.Error(); msg != "cannot resolve nx.example: no such host" {
		t.Errorf("error %q, want it without the server (%s)", msg, de.Server)
	}
}

// TestIsMemberHostname: a member's name matches as servers write it (any
// case, a trailing dot); localhost, the name a node without one falls back
// to, matches nothing, since customers' servers greet with it too.
func TestIsMemberHostname(t *testing.T) {
	g := New(nil, nil)
	if g.IsMemberHostname("mx2.example.net") {
		t.Error("a member name matched before the members were known")
	}
	g.SetMemberHostnames(func() []string { return []string{"mx2.example.net", "localhost"} })
	for name, want := range map[string]bool{
		"mx2.example.net":      true,
		"MX2.Example.NET.":     true,
		"mx3.example.net":      false,
		"mx2.example.net.evil": false,
		"localhost":            false,
		"LOCALHOST.":           false,
		"":                     false,
	} {
		if got := g.IsMemberHostname(name); got != want {
			t.Errorf("IsMemberHostname(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestDial checks that the guarded dial connects to the address it checked:
// a refused route makes no connection at all.
func TestDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	dns := dnstest.Start(t)
	dns.AddA("sneaky.example.", "127.0.0.1")
	port := ln.Addr().(*net.TCPAddr).Port
	route := "sneaky.example:" + itoa(port)
	ctx := context.Background()
	var d net.Dialer

	if _, err := New(resolver(dns.Addr), nil).Dial(ctx, &d, route, false); !errors.Is(err, ErrRefused) {
		t.Fatalf("tenant dial = %v, want refused", err)
	}
	if len(accepted) != 0 {
		t.Fatal("a refused route was connected to")
	}
	allowed := New(resolver(dns.Addr), []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	c, err := allowed.Dial(ctx, &d, route, false)
	if err != nil {
		t.Fatalf("allowed dial: %v", err)
	}
	c.Close()
	if got := c.RemoteAddr().String(); got != "127.0.0.1:"+itoa(port) {
		t.Errorf("dialled %s", got)
	}
	allowed.SetSelf(netip.MustParseAddrPort(ln.Addr().String()))
	if _, err := allowed.Dial(ctx, &d, route, true); !errors.Is(err, ErrLoop) {
		t.Fatalf("dial to self = %v, want loop", err)
	}
	// The allowed dial's connection is accepted on the listener's
	// goroutine, which may not have run yet when Dial returns.
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the allowed dial's connection never reached the listener")
	}
	if len(accepted) != 0 {
		t.Errorf("%d more connections, want none after the allowed one", len(accepted))
	}
}

// TestAllowedIPv6DoesNotOpenMappedIPv4: an IPv6 network in
// relay.allowed_route_networks holds the IPv4-mapped addresses
// (::ffff:0:0/96 lies in ::/0), but a route to one is dialled over IPv4:
// a tenant route to [::ffff:127.0.0.1] reached this host's IPv4 loopback
// where the operator had opened IPv6 networks only. The literal is judged
// as the IPv4 address it names, as a name's answers are.
func TestAllowedIPv6DoesNotOpenMappedIPv4(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := itoa(ln.Addr().(*net.TCPAddr).Port)
	g := New(nil, []netip.Prefix{netip.MustParsePrefix("::/0")})
	var d net.Dialer
	for _, route := range []string{"[::ffff:127.0.0.1]:" + port, "[::ffff:7f00:1]:" + port} {
		c, err := g.Dial(context.Background(), &d, route, false)
		if err == nil {
			c.Close()
			t.Errorf("Dial(%s) connected to %s, want refused", route, c.RemoteAddr())
			continue
		}
		var re *RefusedError
		if !errors.As(err, &re) || re.Class != Loopback {
			t.Errorf("Dial(%s) = %v, want refused as loopback", route, err)
		}
	}
	// What it allows stays allowed, and so does a mapped address of an
	// IPv4 network the operator opened.
	if _, err := g.Check(context.Background(), "[fd00::1]:25", false); err != nil {
		t.Errorf("an allowed IPv6 route: %v", err)
	}
	v4 := New(nil, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	if _, err := v4.Check(context.Background(), "[::ffff:10.1.2.3]:25", false); err != nil {
		t.Errorf("a mapped address in an allowed IPv4 network: %v", err)
	}
}

// TestAllowedIPv6DoesNotOpenTranslatedIPv4: a NAT64 (64:ff9b::/96) or
// 6to4 (2002::/16) address is classed as the IPv4 address it carries,
// and an allowed IPv6 network that holds it (::/0 holds both ranges)
// opened it all the same: on an IPv6-only node behind NAT64 (a cloud
// NAT gateway translates to the VPC's private IPv4 too), a tenant route
// to [64:ff9b::a00:5] reached 10.0.0.5. It is judged as its IPv4 address
// only, as an IPv4-mapped one is, and its IPv4 network still opens it.
func TestAllowedIPv6DoesNotOpenTranslatedIPv4(t *testing.T) {
	for _, tc := range []struct {
		allowed, route string
		want           Class // Public: allowed
	}{
		{"::/0", "[64:ff9b::a00:5]:25", Private},
		{"::/0", "[2002:c0a8:101::1]:25", Private},
		{"::/0", "[64:ff9b::7f00:1]:25", Loopback},
		{"64::/16", "[64:ff9b::a9fe:a9fe]:25", LinkLocal},
		{"::/0", "[fd00::1]:25", Public},
		{"10.0.0.0/8", "[64:ff9b::a00:5]:25", Public},
		{"192.168.0.0/16", "[2002:c0a8:101::1]:25", Public},
	} {
		g := New(nil, []netip.Prefix{netip.MustParsePrefix(tc.allowed)})
		_, err := g.Check(context.Background(), tc.route, false)
		var re *RefusedError
		switch {
		case tc.want == Public && err != nil:
			t.Errorf("allowed %s, route %s: %v, want allowed", tc.allowed, tc.route, err)
		case tc.want != Public && (!errors.As(err, &re) || re.Class != tc.want):
			t.Errorf("allowed %s, route %s: %v, want refused as %v", tc.allowed, tc.route, err, tc.want)
		}
	}
}

// TestDialTriesFewAddresses: a route's name with many addresses that do
// not answer costs a few connection attempts, not one per address the
// tenant's DNS lists.
func TestDialTriesFewAddresses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens: every attempt is refused at once
	dns := dnstest.Start(t)
	for i := range 60 {
		dns.AddA("many.example.", "127.0.0."+itoa(i+1))
	}
	g := New(resolver(dns.Addr), []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	var attempts atomic.Int32
	d := net.Dialer{ControlContext: func(context.Context, string, string, syscall.RawConn) error {
		attempts.Add(1)
		return nil
	}}
	if _, err := g.Dial(context.Background(), &d, "many.example:"+itoa(port), false); err == nil {
		t.Fatal("dial succeeded with nothing listening")
	}
	if n := attempts.Load(); n != maxDialAddrs {
		t.Errorf("%d connection attempts, want %d", n, maxDialAddrs)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestRefusedErrorReads: the refusal reaches the tenant (the API's 400, the
// panel's route test) as a sentence.
func TestRefusedErrorReads(t *testing.T) {
	for _, tt := range []struct {
		err  RefusedError
		want string
	}{
		{RefusedError{Target: Target{Host: "mx.example.com"}, Class: Unspecified}, "mx.example.com resolves to an unspecified address; routes to unspecified networks are not allowed"},
		{RefusedError{Addr: netip.MustParseAddr("10.0.0.1"), Class: Private}, "10.0.0.1 is a private address; routes to private networks are not allowed"},
		{RefusedError{Addr: netip.MustParseAddr("::"), Class: Unspecified}, ":: is an unspecified address; routes to unspecified networks are not allowed"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%q, want %q", got, tt.want)
		}
	}
}

// TestAllowedNetworksRefuseTranslatedPrefixes: a network inside NAT64 or
// 6to4 in relay.allowed_route_networks would match nothing (such routes
// are allowed by the IPv4 network they carry), so it is refused, naming
// the entry; wider networks and IPv4 ones are taken.
func TestAllowedNetworksRefuseTranslatedPrefixes(t *testing.T) {
	for _, tc := range []struct {
		nets []string
		bad  string // "" when taken
	}{
		{[]string{"10.0.0.0/8", "64:ff9b::/96"}, "[1]"},
		{[]string{"64:ff9b::a00:0/104"}, "[0]"},
		{[]string{"2002::/16"}, "[0]"},
		{[]string{"2002:c0a8::/32"}, "[0]"},
		{[]string{"::/0", "64::/16", "2000::/3", "fd00::/8", "10.0.0.0/8"}, ""},
	} {
		_, err := ParseAllowedNetworks(tc.nets)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%v: %v", tc.nets, err)
		case tc.bad != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.bad)):
			t.Errorf("%v: %v, want an error naming %s", tc.nets, err, tc.bad)
		}
	}
}
