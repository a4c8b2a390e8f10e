// Package dnsbl looks the client IP and the domains of the message's URLs
// up in DNS blocklists (RFC 5782), in parallel under one deadline, and
// turns the return codes into weighted symbols. Caching is the shared
// resolver's (dnsresolver), so a busy sender costs one lookup per TTL.
package dnsbl

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/mxgrid/mxgrid/netguard"
	"github.com/mxgrid/mxgrid/scanner"
)

// Resolver is the DNS surface the check needs; *dnsresolver.Cached and
// *net.Resolver satisfy it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Check is the DNSBL check. Safe for concurrent use.
type Check struct {
	cfg     Config
	res     Resolver
	log     *slog.Logger
	lookups *prometheus.CounterVec
	ip      []zone
	domain  []zone
}

type zone struct {
	name    string
	symbol  string
	weights map[string]float64
	// testPoint is the name RFC 5782 5 forbids the list to list:
	// 127.0.0.1 of an IP list, INVALID of a domain list.
	testPoint string
	// refusedLogged and worldLogged are set once the zone's first
	// refusal, or listing of its test point, is logged: a list that
	// does so for one query does so for all.
	refusedLogged, worldLogged atomic.Bool
}

var _ scanner.Check = (*Check)(nil)

// New builds the check from a validated config.
func New(cfg Config, res Resolver, log *slog.Logger, reg prometheus.Registerer) *Check {
	c := &Check{cfg: cfg, res: res, log: log.With("component", "dnsbl")}
	for _, z := range cfg.IPZones {
		name := strings.TrimSuffix(z.Zone, ".")
		c.ip = append(c.ip, zone{name: name, symbol: symbolFor(z, "RBL_"), weights: z.Weights, testPoint: "1.0.0.127." + name})
	}
	for _, z := range cfg.DomainZones {
		name := strings.TrimSuffix(z.Zone, ".")
		c.domain = append(c.domain, zone{name: name, symbol: symbolFor(z, "URIBL_"), weights: z.Weights, testPoint: "invalid." + name})
	}
	c.lookups = promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "mxgrid_dnsbl_lookups_total",
		Help: "DNSBL lookups by zone and result (listed: a return code with a weight; clean; refused: the list's error code 127.255.255.x; lists_all: the list lists its RFC 5782 test point too; error). Only listed counts as listed.",
	}, []string{"zone", "result"})
	return c
}

func symbolFor(z Zone, prefix string) string {
	if z.Symbol != "" {
		return z.Symbol
	}
	return prefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(strings.TrimSuffix(z.Zone, ".")))
}

// Name implements scanner.Check.
func (c *Check) Name() string { return "dnsbl" }

// Stage is the pipeline stage for this check, under dnsbl.on_error
// (accept by default: a blocklist being slow is no reason to hold mail)
// and dnsbl.timeout.
func (c *Check) Stage() scanner.Stage {
	return scanner.NewStage(c, c.cfg.StageConfig)
}

// query is one lookup: what is listed (IP or domain) in which zone.
type query struct {
	zone  *zone
	item  string
	name  string
	codes []netip.Addr
}

// Check implements scanner.Check.
// The pipeline's deadline (dnsbl.timeout) ends lookups still out; they
// count as not listed.
func (c *Check) Check(ctx context.Context, env *scanner.Envelope, msg *scanner.Message) (scanner.Result, error) {
	queries := c.queries(env, msg)

	var wg sync.WaitGroup
	slots := make(chan struct{}, c.cfg.MaxParallel)
	for i := range queries {
		q := &queries[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-ctx.Done():
				c.lookups.WithLabelValues(q.zone.name, "error").Inc()
				return
			}
			c.lookup(ctx, q)
		}()
	}
	wg.Wait()
	return c.result(queries), nil
}

// queries lists the lookups for a message: the client IP in each IP zone
// unless it is not routable (a private or loopback address is never listed,
// and leaks our network to the list), and each URL domain in each domain zone.
// An IPv6 address that carries an IPv4 one (mapped, 6to4, NAT64) is asked
// as that IPv4 address: lists know the IPv4 host, and a listed one came
// unlisted as its 6to4 site.
func (c *Check) queries(env *scanner.Envelope, msg *scanner.Message) []query {
	var qs []query
	ip := netguard.Embedded(env.ClientIP)
	if ip.IsValid() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !ip.IsUnspecified() {
		rev := reverse(ip)
		for i := range c.ip {
			qs = append(qs, query{zone: &c.ip[i], item: ip.String(), name: rev + "." + c.ip[i].name})
		}
	}
	if len(c.domain) == 0 || msg == nil {
		return qs
	}
	seen := map[string]bool{}
	// Links a reader can click first, then image sources: max_domains
	// taken in the message's order let a newsletter's tracking pixels, or
	// a spammer's twenty decoy images ahead of the link, keep the domain
	// the reader is sent to from being looked up at all.
	for _, images := range [...]bool{false, true} {
		for _, u := range msg.URLs {
			d := strings.TrimSuffix(u.Domain, ".")
			if u.Image != images || u.IP || d == "" || !strings.Contains(d, ".") || seen[d] {
				continue
			}
			if len(seen) >= c.cfg.MaxDomains {
				return qs
			}
			seen[d] = true
			for i := range c.domain {
				qs = append(qs, query{zone: &c.domain[i], item: d, name: d + "." + c.domain[i].name})
			}
		}
	}
	return qs
}

// reverse writes an address in DNSBL order: octets reversed for IPv4
// (RFC 5782 2.1), nibbles reversed for IPv6 (RFC 5782 2.4).
func reverse(ip netip.Addr) string {
	b := ip.AsSlice()
	parts := make([]string, 0, 32)
	if ip.Is4() {
		for i := len(b) - 1; i >= 0; i-- {
			parts = append(parts, fmt.Sprint(b[i]))
		}
		return strings.Join(parts, ".")
	}
	const hex = "0123456789abcdef"
	for i := len(b) - 1; i >= 0; i-- {
		parts = append(parts, string(hex[b[i]&0xf]), string(hex[b[i]>>4]))
	}
	return strings.Join(parts, ".")
}

func (c *Check) lookup(ctx context.Context, q *query) {
	addrs, err := c.res.LookupNetIP(ctx, "ip4", q.name)
	if err != nil {
		if derr, ok := err.(*net.DNSError); ok && derr.IsNotFound {
			c.lookups.WithLabelValues(q.zone.name, "clean").Inc()
			return
		}
		c.lookups.WithLabelValues(q.zone.name, "error").Inc()
		c.log.Debug("dnsbl lookup failed", "zone", q.zone.name, "item", q.item, "err", err)
		return
	}
	result := "clean"
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case listError.Contains(a):
			result = "refused"
		case loopback.Contains(a):
			if _, ok := q.zone.weights[a.String()]; ok {
				q.codes = append(q.codes, a)
			}
		}
	}
	if result == "refused" {
		// Spamhaus answers 127.255.255.254 to every query sent through a
		// public resolver and .255 past the free volume: a node whose
		// dns.server is one has the list listing nothing, and counted as
		// listing everyone. Said once, where the operator looks.
		q.codes = nil
		if !q.zone.refusedLogged.Swap(true) {
			c.log.Warn("dnsbl zone refuses our queries: its error codes are not listings; use a resolver of your own, not a public one, or a paid feed",
				"zone", q.zone.name, "item", q.item, "codes", addrs)
		}
	} else if len(q.codes) > 0 {
		result = "listed"
		if c.listsAll(ctx, q.zone) {
			q.codes, result = nil, "lists_all"
		}
	}
	c.lookups.WithLabelValues(q.zone.name, result).Inc()
}

// listsAll reports whether zone lists its test point, which RFC 5782 5
// forbids: a list whose domain lapsed, or that was shut down, may be
// wildcarded to list every address (AHBL did, on purpose, when it
// closed), and each would then carry the list's weight, all mail scored
// as spam. Asked only when something is listed, and cached by the
// resolver. A test point that gives no answer leaves the listing
// standing, as before the check.
func (c *Check) listsAll(ctx context.Context, zone *zone) bool {
	addrs, err := c.res.LookupNetIP(ctx, "ip4", zone.testPoint)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if _, ok := zone.weights[a.Unmap().String()]; ok {
			if !zone.worldLogged.Swap(true) {
				c.log.Warn("dnsbl zone lists its test point, so it lists everyone: its answers are ignored; remove the zone",
					"zone", zone.name, "test_point", zone.testPoint, "codes", addrs)
			}
			return true
		}
	}
	return false
}

// result gives one symbol per zone and return code, naming what is listed:
// several URL domains under the same code are one piece of evidence.
func (c *Check) result(queries []query) scanner.Result {
	type key struct{ symbol, code string }
	items := map[key][]string{}
	weights := map[key]float64{}
	for _, q := range queries {
		for _, code := range q.codes {
			w, ok := q.zone.weights[code.String()]
			if !ok {
				continue
			}
			k := key{q.zone.symbol, code.String()}
			items[k] = append(items[k], q.item)
			weights[k] = w
		}
	}
	keys := make([]key, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].symbol != keys[j].symbol {
			return keys[i].symbol < keys[j].symbol
		}
		return keys[i].code < keys[j].code
	})
	var res scanner.Result
	for _, k := range keys {
		res.Symbols = append(res.Symbols, scanner.Symbol{Name: k.symbol, Score: weights[k], Detail: strings.Join(items[k], ",") + " " + k.code})
	}
	return res
}
