package dnsbl

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mxgrid/mxgrid/dnsresolver"
	"github.com/mxgrid/mxgrid/dnsresolver/dnstest"
	"github.com/mxgrid/mxgrid/scanner"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func setup(t *testing.T, mod func(*Config)) (*Check, *dnstest.Server) {
	t.Helper()
	srv := dnstest.Start(t)
	// 192.0.2.99 is on the SBL and XBL parts of the list; 192.0.2.98 gets
	// the "query refused" code lists send to public resolvers.
	srv.AddA("99.2.0.192.bl.test", "127.0.0.2")
	srv.AddA("99.2.0.192.bl.test", "127.0.0.4")
	srv.AddA("98.2.0.192.bl.test", "127.255.255.254")
	srv.AddA("97.2.0.192.bl.test", "192.0.2.1") // not a DNSBL answer at all
	srv.AddA("96.2.0.192.bl.test", "127.0.0.9") // a code the zone gives no weight
	srv.AddA("95.2.0.192.bl.test", "127.0.0.2")
	srv.AddA("95.2.0.192.bl.test", "127.255.255.255") // over the list's limit
	srv.AddA("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test", "127.0.0.2")
	srv.AddA("evil.example.dbl.test", "127.0.1.2")
	srv.AddA("worse.example.dbl.test", "127.0.1.2")
	srv.Silent("99.2.0.192.slow.test")

	cfg := DefaultConfig()
	cfg.Timeout = 300 * time.Millisecond
	cfg.IPZones = []Zone{
		{Zone: "bl.test", Weights: map[string]float64{"127.0.0.2": 3, "127.0.0.4": 1.5}},
		{Zone: "slow.test", Symbol: "SLOW_BL", Weights: map[string]float64{"127.0.0.2": 5}},
	}
	cfg.DomainZones = []Zone{{Zone: "dbl.test", Weights: map[string]float64{"127.0.1.2": 4}}}
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return checkOver(srv, cfg, discard), srv
}

// checkOver is a Check of cfg whose resolver asks srv, logging to log.
func checkOver(srv *dnstest.Server, cfg Config, log *slog.Logger) *Check {
	rcfg := dnsresolver.DefaultConfig()
	rcfg.Server = srv.Addr
	return New(cfg, dnsresolver.New(rcfg, prometheus.NewRegistry()), log, prometheus.NewRegistry())
}

func withURLs(domains ...string) *scanner.Message {
	m := scanner.Parse([]byte("Subject: x\r\n\r\nx\r\n"))
	for _, d := range domains {
		m.URLs = append(m.URLs, scanner.URL{Raw: "http://" + d + "/", Host: d, Domain: d})
	}
	return m
}

func TestCheck(t *testing.T) {
	c, _ := setup(t, nil)
	tests := []struct {
		name string
		ip   string
		msg  *scanner.Message
		want []string // "SYMBOL score detail"
	}{
		{"listed IP, two codes", "192.0.2.99", withURLs(), []string{"RBL_BL_TEST 3.00 192.0.2.99 127.0.0.2", "RBL_BL_TEST 1.50 192.0.2.99 127.0.0.4"}},
		{"IPv4-mapped address is looked up as IPv4", "::ffff:192.0.2.99", withURLs(), []string{"RBL_BL_TEST 3.00 192.0.2.99 127.0.0.2", "RBL_BL_TEST 1.50 192.0.2.99 127.0.0.4"}},
		{"listed IPv6", "2001:db8::1", withURLs(), []string{"RBL_BL_TEST 3.00 2001:db8::1 127.0.0.2"}},
		// Lists know the IPv4 address, not each 6to4 site (2002::/16,
		// an IPv4 host's own IPv6 network) or NAT64 form of it.
		{"6to4 address is looked up as its IPv4 address", "2002:c000:263:1::9", withURLs(), []string{"RBL_BL_TEST 3.00 192.0.2.99 127.0.0.2", "RBL_BL_TEST 1.50 192.0.2.99 127.0.0.4"}},
		{"NAT64 address is looked up as its IPv4 address", "64:ff9b::c000:263", withURLs(), []string{"RBL_BL_TEST 3.00 192.0.2.99 127.0.0.2", "RBL_BL_TEST 1.50 192.0.2.99 127.0.0.4"}},
		{"clean IP", "192.0.2.1", withURLs(), nil},
		{"unconfigured code is ignored", "192.0.2.96", withURLs(), nil},
		{"the list's error code is ignored", "192.0.2.98", withURLs(), nil},
		{"a listing beside the list's error code is ignored", "192.0.2.95", withURLs(), nil},
		{"answer outside 127/8 is ignored", "192.0.2.97", withURLs(), nil},
		{"listed URL domains, one symbol per code", "192.0.2.1", withURLs("good.example", "evil.example", "worse.example", "evil.example"),
			[]string{"URIBL_DBL_TEST 4.00 evil.example,worse.example 127.0.1.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := &scanner.Envelope{ClientIP: netip.MustParseAddr(tt.ip)}
			// The pipeline gives the check its deadline (dnsbl.timeout,
			// 300 ms in setup); so does this test, for the silent list.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			res, err := c.Check(ctx, env, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range res.Symbols {
				got = append(got, fmt.Sprintf("%s %.2f %s", s.Name, s.Score, s.Detail))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("symbols = %q, want %q", got, tt.want)
			}
		})
	}
}

// The list's error codes (Spamhaus' answer to every query through a
// public resolver) counted as listings in mxgrid_dnsbl_lookups_total,
// and nothing said why no IP was ever listed. Codes without a weight are
// no listing either.
func TestLookupResults(t *testing.T) {
	var logs bytes.Buffer
	srv := dnstest.Start(t)
	srv.AddA("98.2.0.192.bl.test", "127.255.255.254")
	srv.AddA("96.2.0.192.bl.test", "127.0.0.9")
	srv.AddA("99.2.0.192.bl.test", "127.0.0.2")
	cfg := DefaultConfig()
	cfg.IPZones = []Zone{{Zone: "bl.test", Weights: map[string]float64{"127.0.0.2": 3}}}
	c := checkOver(srv, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	for _, ip := range []string{"192.0.2.98", "192.0.2.98", "192.0.2.96", "192.0.2.99", "192.0.2.1"} {
		if _, err := c.Check(context.Background(), &scanner.Envelope{ClientIP: netip.MustParseAddr(ip)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for result, want := range map[string]float64{"refused": 2, "clean": 2, "listed": 1, "error": 0} {
		var m dto.Metric
		if err := c.lookups.WithLabelValues("bl.test", result).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != want {
			t.Errorf("lookups{result=%q} = %v, want %v", result, got, want)
		}
	}
	if n := strings.Count(logs.String(), "dnsbl zone refuses our queries"); n != 1 {
		t.Errorf("refusal logged %d times, want once:\n%s", n, logs.String())
	}
}

// A list that lists its RFC 5782 test point (a lapsed list's wildcard
// answers 127.0.0.2 for every name) lists nobody: each message got its
// weight.
func TestZoneListingItsTestPointIsIgnored(t *testing.T) {
	var logs bytes.Buffer
	srv := dnstest.Start(t)
	srv.AddA("*.dead.test", "127.0.0.2")
	srv.AddA("99.2.0.192.live.test", "127.0.0.2")
	srv.AddA("evil.example.deaddbl.test", "127.0.1.2")
	srv.AddA("invalid.deaddbl.test", "127.0.1.2")
	srv.AddA("evil.example.livedbl.test", "127.0.1.2")
	cfg := DefaultConfig()
	ipw, dw := map[string]float64{"127.0.0.2": 3}, map[string]float64{"127.0.1.2": 4}
	cfg.IPZones = []Zone{{Zone: "dead.test", Weights: ipw}, {Zone: "live.test", Weights: ipw}}
	cfg.DomainZones = []Zone{{Zone: "deaddbl.test", Weights: dw}, {Zone: "livedbl.test", Weights: dw}}
	c := checkOver(srv, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	for range 2 {
		res, err := c.Check(context.Background(), &scanner.Envelope{ClientIP: netip.MustParseAddr("192.0.2.99")}, withURLs("evil.example"))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range res.Symbols {
			got = append(got, s.Name)
		}
		if want := "RBL_LIVE_TEST,URIBL_LIVEDBL_TEST"; strings.Join(got, ",") != want {
			t.Errorf("symbols %v, want %s", got, want)
		}
	}
	var m dto.Metric
	if err := c.lookups.WithLabelValues("dead.test", "lists_all").Write(&m); err != nil || m.GetCounter().GetValue() != 2 {
		t.Errorf("lookups{zone=dead.test,result=lists_all} = %v (%v), want 2", m.GetCounter().GetValue(), err)
	}
	if n := strings.Count(logs.String(), "lists its test point"); n != 2 {
		t.Errorf("%d warnings, want one per dead zone:\n%s", n, logs.String())
	}
}

func TestPrivateAddressesAreNotQueried(t *testing.T) {
	c, srv := setup(t, nil)
	for _, ip := range []string{"10.0.0.10", "127.0.0.1", "192.168.1.1", "fe80::1", "::1", "2002:c0a8:101::1"} {
		if _, err := c.Check(context.Background(), &scanner.Envelope{ClientIP: netip.MustParseAddr(ip)}, withURLs()); err != nil {
			t.Fatal(err)
		}
		rev := reverse(netip.MustParseAddr(ip))
		if n := srv.Queries(rev + ".bl.test"); n != 0 {
			t.Errorf("%s was looked up %d times", ip, n)
		}
	}
}

// TestTimeout: a list that never answers costs its own result only, and
// the check ends within the stage deadline the pipeline gives it.
func TestTimeout(t *testing.T) {
	c, _ := setup(t, nil)
	p := scanner.NewPipeline([]scanner.Stage{c.Stage()}, 0, discard, prometheus.NewRegistry())
	v := p.Scan(context.Background(), &scanner.Envelope{ClientIP: netip.MustParseAddr("192.0.2.99")}, withURLs("evil.example"), scanner.Policy{})
	if len(v.Incomplete) != 0 {
		t.Fatalf("check did not finish within its stage deadline: %v", v.Incomplete)
	}
	var names []string
	for _, s := range v.Symbols {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "RBL_BL_TEST,RBL_BL_TEST,URIBL_DBL_TEST" {
		t.Errorf("symbols = %s: the answering lists' results must survive the silent one", got)
	}
}

func TestCachedAcrossMessages(t *testing.T) {
	c, srv := setup(t, func(c *Config) { c.IPZones = c.IPZones[:1] })
	env := &scanner.Envelope{ClientIP: netip.MustParseAddr("192.0.2.99")}
	for range 3 {
		if _, err := c.Check(context.Background(), env, withURLs()); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Queries("99.2.0.192.bl.test"); n != 1 {
		t.Errorf("%d queries for one sender, want 1 (cached)", n)
	}
}

func TestMaxDomains(t *testing.T) {
	c, srv := setup(t, func(c *Config) { c.MaxDomains = 1 })
	if _, err := c.Check(context.Background(), &scanner.Envelope{}, withURLs("a.example", "evil.example")); err != nil {
		t.Fatal(err)
	}
	if srv.Queries("evil.example.dbl.test") != 0 {
		t.Errorf("looked up more domains than max_domains")
	}
}

// TestLinksBeforeImages: max_domains goes to the domains a reader can
// click before image sources, so decoy images (or a newsletter's tracking
// pixels) ahead of the link cannot keep its domain from being looked up.
func TestLinksBeforeImages(t *testing.T) {
	c, srv := setup(t, func(c *Config) { c.MaxDomains = 2 })
	m := scanner.Parse([]byte("Subject: x\r\n\r\nx\r\n"))
	for _, d := range []string{"pixel1.example", "pixel2.example", "pixel3.example"} {
		m.URLs = append(m.URLs, scanner.URL{Raw: "http://" + d + "/p.gif", Host: d, Domain: d, Image: true})
	}
	m.URLs = append(m.URLs, scanner.URL{Raw: "http://evil.example/", Host: "evil.example", Domain: "evil.example"})
	if _, err := c.Check(context.Background(), &scanner.Envelope{}, m); err != nil {
		t.Fatal(err)
	}
	if srv.Queries("evil.example.dbl.test") != 1 {
		t.Errorf("the link's domain was not looked up behind three images")
	}
	if n := srv.Queries("pixel1.example.dbl.test") + srv.Queries("pixel2.example.dbl.test") + srv.Queries("pixel3.example.dbl.test"); n != 1 {
		t.Errorf("%d image domains looked up, want the one left of max_domains", n)
	}
}

func TestReverse(t *testing.T) {
	tests := map[string]string{
		"192.0.2.99":  "99.2.0.192",
		"2001:db8::1": "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2",
	}
	for in, want := range tests {
		if got := reverse(netip.MustParseAddr(in)); got != want {
			t.Errorf("reverse(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	w := map[string]float64{"127.0.0.2": 1}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"good zone", func(c *Config) { c.IPZones = []Zone{{Zone: "zen.spamhaus.org", Weights: w}} }, ""},
		{"bad zone", func(c *Config) { c.IPZones = []Zone{{Zone: "zen spamhaus", Weights: w}} }, `ip_zones[0].zone: "zen spamhaus" is not a DNS zone`},
		{"no weights", func(c *Config) { c.DomainZones = []Zone{{Zone: "dbl.spamhaus.org"}} }, "domain_zones[0].weights: at least one"},
		{"code outside 127/8", func(c *Config) {
			c.DomainZones = []Zone{{Zone: "dbl.spamhaus.org", Weights: map[string]float64{"10.0.0.2": 1}}}
		}, `domain_zones[0].weights: "10.0.0.2" is not a return code`},
		{"the list's error code", func(c *Config) {
			c.IPZones = []Zone{{Zone: "zen.spamhaus.org", Weights: map[string]float64{"127.0.0.2": 1, "127.255.255.254": 1}}}
		}, `ip_zones[0].weights: "127.255.255.254" is a list's error code`},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout:"},
		{"zero parallel", func(c *Config) { c.MaxParallel = 0 }, "max_parallel:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
