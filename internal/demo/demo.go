// Package demo runs `mxgrid demo`: a three-node cluster on loopback, each
// node labelled as a different hosting provider, a customer mail server
// they relay to, and a sender that replays the built-in sample of spam and
// ham, so that the map, the cluster page and the metrics show something on
// a machine with nothing installed. Everything runs in this one process.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/pires/go-proxyproto"

	"github.com/mxgrid/mxgrid/cluster"
	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/events"
	"github.com/mxgrid/mxgrid/internal/democorpus"
	"github.com/mxgrid/mxgrid/internal/periodic"
	"github.com/mxgrid/mxgrid/node"
	"github.com/mxgrid/mxgrid/tenant"
)

// Domain is the customer domain every demo node accepts mail for.
const Domain = "demo.example"

// DefaultInterval is the trickle's pace: slow enough to read the output,
// fast enough that the map and the metrics visibly move.
const DefaultInterval = 2 * time.Second

// Options configure a demo run.
type Options struct {
	// FreePorts picks free loopback ports instead of the fixed ones
	// (HTTP 8025-8027, management 8035-8037, SMTP 2525-2527, gossip
	// 7946-7948, customer 2600), so a demo can run beside a node or
	// another demo, and in tests.
	FreePorts bool
	// Interval is the pause between trickle messages after the first
	// replay of the whole sample.
	Interval time.Duration
	// Out receives the URLs and one line per message sent.
	Out io.Writer
	// GeoIP is a GeoIP2/GeoLite2 or DB-IP City .mmdb file; empty means the
	// built-in excerpt that covers only the sample's networks.
	GeoIP string
	// Log receives the nodes' logs.
	Log     *slog.Logger
	Version string
}

// nodeSpec is one demo node: its identity and ports.
type nodeSpec struct {
	name, provider, region   string
	smtp, http, mgmt, gossip int
}

// specs returns the three nodes' identities with the fixed ports.
func specs() []nodeSpec {
	return []nodeSpec{
		{name: "node-a", provider: "hetzner", region: "fsn1", smtp: 2525, http: 8025, mgmt: 8035, gossip: 7946},
		{name: "node-b", provider: "ovh", region: "gra", smtp: 2526, http: 8026, mgmt: 8036, gossip: 7947},
		{name: "node-c", provider: "scaleway", region: "par", smtp: 2527, http: 8027, mgmt: 8037, gossip: 7948},
	}
}

const (
	gossipKeyFile   = "gossip.key"
	defaultSinkPort = 2600
	// formTimeout bounds the wait for the three nodes to see each other;
	// on loopback they do within a second or two.
	formTimeout = 30 * time.Second
	// sendTimeout bounds one SMTP transaction of the replay.
	sendTimeout = 30 * time.Second
)

// Run starts the demo and replays mail until ctx is cancelled, then stops
// the nodes (draining as on SIGTERM) and removes their data.
func Run(ctx context.Context, opts Options) error {
	if opts.Interval <= 0 {
		return errors.New("demo: interval must be positive")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	msgs, err := democorpus.Messages()
	if err != nil {
		return err
	}
	nodes := specs()
	sinkPort := defaultSinkPort
	if opts.FreePorts {
		ports, err := freePorts(4*len(nodes) + 1)
		if err != nil {
			return err
		}
		for i := range nodes {
			nodes[i].smtp, nodes[i].http, nodes[i].mgmt, nodes[i].gossip = ports[4*i], ports[4*i+1], ports[4*i+2], ports[4*i+3]
		}
		sinkPort = ports[len(ports)-1]
	}
	dir, err := os.MkdirTemp("", "mxgrid-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)
	// A fresh gossip key per run: a key shipped with the demo would be
	// everyone's, and the nodes' join lists need one.
	key, err := cluster.NewKey()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, gossipKeyFile), []byte(key+"\n"), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if opts.GeoIP == "" {
		// The built-in sample's networks, so the map has points out of the box.
		opts.GeoIP = filepath.Join(dir, "demo-geoip.mmdb")
		if err := os.WriteFile(opts.GeoIP, democorpus.GeoIP(), 0o600); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}

	sink, err := startSink(loopback(sinkPort))
	if err != nil {
		return err
	}
	defer sink.Close()

	running, err := startNodes(ctx, opts, nodes, sink.addr, dir)
	if err != nil {
		return err
	}
	defer stopNodes(running)
	// A node that stops on its own ends the demo with its error.
	dctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	for _, rn := range running {
		go func() {
			select {
			case <-rn.exited:
				stop(fmt.Errorf("demo: %s stopped: %v", rn.name, rn.err))
			case <-dctx.Done():
			}
		}()
	}
	if err := waitForCluster(dctx, running[0].ManagementAddr(), len(running)); err != nil {
		return err
	}
	printURLs(opts.Out, running, nodes, sink.addr, len(msgs), opts.Interval)
	replay(dctx, opts, running, nodes, msgs)
	if ctx.Err() != nil {
		return nil // stopped by the caller
	}
	return context.Cause(dctx)
}

// runningNode is a demo node and the way to stop it.
type runningNode struct {
	*node.Node
	name   string
	cancel context.CancelFunc
	exited chan struct{} // closed when Run has returned, err set
	err    error
}

// startNodes builds and runs the nodes one after another, each joining
// those before it (a node that finds nobody to join only logs retries).
func startNodes(ctx context.Context, opts Options, nodes []nodeSpec, sinkAddr, dir string) ([]*runningNode, error) {
	var running []*runningNode
	for i, s := range nodes {
		cfg, err := nodeConfig(s, nodes[:i], sinkAddr, dir, opts.GeoIP)
		if err == nil {
			var n *node.Node
			// Each node has its own context so that stopNodes can stop
			// them one at a time.
			nctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			n, err = node.New(nctx, cfg, node.Options{Log: opts.Log, Version: opts.Version})
			if err == nil {
				rn := &runningNode{Node: n, name: s.name, cancel: cancel, exited: make(chan struct{})}
				go func() {
					rn.err = n.Run(nctx)
					close(rn.exited)
				}()
				running = append(running, rn)
				continue
			}
			cancel()
			err = fmt.Errorf("demo: start %s: %w", s.name, err)
		}
		stopNodes(running)
		return nil, err
	}
	return running, nil
}

// stopNodes stops the nodes in reverse order, each draining and leaving
// while the others still run, so they see it leave instead of
// stopping all at once and timing out on each other's goodbyes.
func stopNodes(running []*runningNode) {
	for i := len(running) - 1; i >= 0; i-- {
		running[i].cancel()
		<-running[i].exited // bounded by smtp.shutdown_grace and the cluster's leave timeout
	}
}

// nodeConfig is a loopback node of the demo: it trusts PROXY headers from
// loopback (the replay's way of giving each message its original client
// address), relays demo.example to the sink, joins the other two, and
// shares one SQLite file with them, standing in for the shared PostgreSQL
// of a real cluster so that events and the map are cluster-wide.
func nodeConfig(s nodeSpec, join []nodeSpec, sinkAddr, dir, geoip string) (config.Config, error) {
	cfg := config.Default()
	cfg.Node = config.Node{Name: s.name, Provider: s.provider, Region: s.region}
	cfg.SMTP.Listen = loopback(s.smtp)
	cfg.SMTP.Hostname = s.name + ".mxgrid.demo"
	cfg.SMTP.TrustedProxies = []string{"127.0.0.0/8"}
	cfg.SMTP.ShutdownGrace = 2 * time.Second
	cfg.HTTP.Listen = loopback(s.http)
	cfg.HTTP.ManagementListen = loopback(s.mgmt)
	cfg.DataDir = filepath.Join(dir, s.name)
	cfg.Store.DSN = filepath.Join(dir, "mxgrid.db")
	cfg.Cluster.Bind = loopback(s.gossip)
	cfg.Cluster.SecretKeyFile = filepath.Join(dir, gossipKeyFile)
	for _, o := range join {
		cfg.Cluster.Join = append(cfg.Cluster.Join, loopback(o.gossip))
	}
	cfg.Domains = []tenant.StaticDomain{{Name: Domain, Route: sinkAddr, TLS: "none"}}
	// Domains created in the demo's panel route to its loopback sink too.
	cfg.Relay.AllowedRouteNetworks = []string{"127.0.0.0/8"}
	// The shortest interval the map allows, so the replay shows within a
	// minute instead of an hour.
	cfg.Map.Interval = time.Minute
	cfg.Geo.Database = geoip
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("demo: %s config: %w", s.name, err)
	}
	return cfg, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// freePorts returns n distinct loopback ports that were free a moment ago.
// All listeners stay open until every port is known, so none repeats.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("demo: free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitForCluster polls the first node's service discovery until it lists
// every node, so the URLs are printed once the cluster page is complete.
func waitForCluster(ctx context.Context, mgmtAddr string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, formTimeout)
	defer cancel()
	url := "http://" + mgmtAddr + "/api/v1/cluster/prometheus-sd"
	for {
		n, err := countTargets(ctx, url)
		if err == nil && n == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: the nodes did not form a cluster within %v (%d of %d listed, last error: %v)", formTimeout, n, want, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func countTargets(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var groups []struct{ Targets []string }
	if err := json.NewDecoder(resp.Body).Decode(&groups); err != nil {
		return 0, fmt.Errorf("%s: %w", url, err)
	}
	return len(groups), nil
}

func printURLs(w io.Writer, running []*runningNode, specs []nodeSpec, sinkAddr string, sample int, interval time.Duration) {
	first := "http://" + running[0].HTTPAddr()
	mgmt := "http://" + running[0].ManagementAddr()
	fmt.Fprintf(w, "mxgrid demo: %d nodes on loopback, customer mail server for %s at %s\n\n", len(running), Domain, sinkAddr)
	fmt.Fprintf(w, "  map:      %s/map\n", first)
	fmt.Fprintf(w, "  cluster:  %s/cluster\n", mgmt)
	for i, n := range running {
		fmt.Fprintf(w, "  metrics:  http://%s/metrics   (%s, %s, SMTP %s)\n", n.ManagementAddr(), specs[i].name, specs[i].provider, n.SMTPAddr())
	}
	fmt.Fprintf(w, "  prometheus service discovery: %s/api/v1/cluster/prometheus-sd\n\n", mgmt)
	fmt.Fprintf(w, "Replaying %d sample messages, then one every %v; the map is redrawn every minute. Ctrl-C stops.\n", sample, interval)
}

// replay sends the whole sample once, spread over the nodes, then one
// random message every interval until ctx ends. A failed send is reported
// and the replay goes on: a demo that stops at the first hiccup shows
// nothing.
func replay(ctx context.Context, opts Options, running []*runningNode, specs []nodeSpec, msgs []democorpus.Message) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	send := func(i int, m democorpus.Message) {
		k := i % len(running)
		src := sourceIP(m.Data)
		reply := deliver(ctx, running[k].SMTPAddr(), src, m.Data)
		kind := "ham "
		if m.Spam {
			kind = "spam"
		}
		from := "loopback"
		if src.IsValid() {
			from = src.String()
		}
		fmt.Fprintf(opts.Out, "%-7s %s  %-15s  %-40.40s  %s\n", specs[k].name, kind, from, subject(m.Data), reply)
	}
	for i, m := range msgs {
		if ctx.Err() != nil {
			return
		}
		send(i, m)
	}
	periodic.Every(ctx, opts.Interval, nil, func(context.Context) {
		send(rng.IntN(len(running)), msgs[rng.IntN(len(msgs))])
	})
}

// sourceIP is the message's first external Received hop, the address the
// replay claims through the PROXY protocol, or an invalid address when the
// chain has none (the message then comes from loopback).
func sourceIP(data []byte) netip.Addr {
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return netip.Addr{}
	}
	loop := netip.MustParseAddr("127.0.0.1")
	src := events.SourceIP(loop, m.Header["Received"], democorpus.TrustedRelays())
	if src == loop {
		return netip.Addr{}
	}
	return src
}

func subject(data []byte) string {
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return ""
	}
	s := m.Header.Get("Subject")
	// RFC 2047 encoded words are decoded for display; an undecodable
	// subject is shown as it is.
	if dec, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		s = dec
	}
	return strings.Join(strings.Fields(s), " ")
}

// deliver runs one SMTP transaction with node at smtpAddr, first sending a
// PROXY v1 header that names src as the client when src is valid (else
// the connection's own loopback address), and returns the node's final
// reply as text.
func deliver(ctx context.Context, smtpAddr string, src netip.Addr, data []byte) string {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", smtpAddr)
	if err != nil {
		return "connect: " + err.Error()
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// The nodes require the header from loopback: a message without a
	// source of its own names the connection's, or it was closed unserved.
	from, dst := conn.LocalAddr(), conn.RemoteAddr().(*net.TCPAddr)
	if src.IsValid() {
		if src.Is6() {
			dst = &net.TCPAddr{IP: net.IPv6loopback, Port: dst.Port}
		}
		// The source port is made up: the sample records none.
		from = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 40000))
	}
	if _, err := proxyproto.HeaderProxyFromAddrs(1, from, dst).WriteTo(conn); err != nil {
		return "PROXY header: " + err.Error()
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("sender.mxgrid.demo"); err != nil {
		return reply(err)
	}
	if err := c.Mail("sender@sender.mxgrid.demo", nil); err != nil {
		return reply(err)
	}
	if err := c.Rcpt("postmaster@"+Domain, nil); err != nil {
		return reply(err)
	}
	w, err := c.Data()
	if err != nil {
		return reply(err)
	}
	if _, err := w.Write(data); err != nil {
		return reply(err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return reply(err)
	}
	_ = c.Quit()
	return "250 " + resp.StatusText
}

// reply renders an SMTP error as the reply line the node gave.
func reply(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
	}
	return err.Error()
}
