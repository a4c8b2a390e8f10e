package node_test

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/cluster"
	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/node"
)

// metric reads one sample of the node's /metrics, 0 when absent.
func metric(t *testing.T, n *nodetest.Node, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.ManagementAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// forward relays TCP connections to target, as a NAT or proxy in front of
// a node would: the address check cannot see the loop, the greeting can.
func forward(t *testing.T, target string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.Close() }()
				io.Copy(c, u)
			}()
		}
	}()
	return l.Addr().String()
}

// isLoopReply reports whether err is the SMTP reply 554 5.4.6.
func isLoopReply(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code == 554 && strings.HasPrefix(te.Msg, "5.4.6 ")
}

// sendOnce sends one message and returns the error and how long it took.
func sendOnce(addr, rcpt string) (error, time.Duration) {
	start := time.Now()
	err := smtp.SendMail(addr, nil, "someone@sender.test", []string{rcpt}, []byte("Subject: loop\r\n\r\nhello\r\n"))
	return err, time.Since(start)
}

// TestRouteToItselfIs554: a route that leads back to the node, directly or
// through a forwarder, answers 554 5.4.6 within 5 s with fewer than 5
// connections of the node to itself, and nothing is relayed.
func TestRouteToItselfIs554(t *testing.T) {
	for _, tc := range []struct {
		name, detectedBy string
		route            func(self string) string
	}{
		{"own listen address", "address", func(self string) string { return self }},
		{"behind a forwarder", "greeting", func(self string) string { return forward(t, self) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			self := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
			cfg := nodetest.Config(t)
			cfg.SMTP.Listen = self
			cfg.Domains = append(cfg.Domains, nodetest.Domain("loop.example", tc.route(self)))
			n := nodetest.Start(t, cfg, nil)

			err, took := sendOnce(n.SMTPAddr(), "bob@loop.example")
			selfConns := metric(t, n, `mxgrid_smtp_connections_total{result="accepted"}`) - 1
			t.Logf("%s: %v after %v, %v self-connections", tc.name, err, took.Round(time.Millisecond), selfConns)
			if !isLoopReply(err) {
				t.Fatalf("got %v, want 554 5.4.6", err)
			}
			if took > 5*time.Second {
				t.Errorf("took %v, want < 5s", took)
			}
			if selfConns >= 5 {
				t.Errorf("%v self-connections, want < 5", selfConns)
			}
			if got := metric(t, n, `mxgrid_relay_loops_total{detected_by="`+tc.detectedBy+`"}`); got < 1 {
				t.Errorf("loops{detected_by=%s} = %v, want ≥ 1", tc.detectedBy, got)
			}
		})
	}
}

// startPair starts nodes a and b (host names mx-a.test and mx-b.test) in
// one cluster, gossiping on 127.0.0.1 and 127.0.0.2, and listening for
// SMTP at smtp[i] (127.0.0.1 and 127.0.0.2 unless given) at one port.
// Each relays other.example to route(i, smtp); mutate, when set, edits
// node i's config last.
func startPair(t *testing.T, smtp [2]string, route func(i int, smtp [2]string) string, mutate func(i int, cfg *config.Config)) (a, b *nodetest.Node) {
	t.Helper()
	port := testenv.FreePort(t)
	for i, host := range [2]string{"127.0.0.1", "127.0.0.2"} {
		smtp[i] = fmt.Sprintf("%s:%d", cmp.Or(smtp[i], host), port)
	}
	gossip := []string{fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.2:%d", testenv.FreePort(t))}
	var nodes [2]*nodetest.Node
	for i, name := range []string{"a", "b"} {
		cfg := nodetest.Config(t)
		cfg.Node.Name = "node-" + name
		cfg.SMTP.Hostname = "mx-" + name + ".test"
		cfg.SMTP.Listen = smtp[i]
		cfg.Cluster.Bind = gossip[i]
		cfg.Cluster.Join = gossip
		cfg.Domains = append(cfg.Domains, nodetest.Domain("other.example", route(i, smtp)))
		if mutate != nil {
			mutate(i, &cfg)
		}
		nodes[i] = nodetest.Start(t, cfg, nil)
	}
	a, b = nodes[0], nodes[1]
	for _, n := range nodes {
		eventually(t, 20*time.Second, n.Config.Node.Name+" sees both host names", func() bool {
			resp, err := http.Get("http://" + n.ManagementAddr() + "/api/v1/cluster")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return strings.Contains(string(body), `"smtp_hostname": "mx-a.test"`) && strings.Contains(string(body), `"smtp_hostname": "mx-b.test"`)
		})
	}
	return a, b
}

// TestRouteToAnotherNodeIs554: a route to another cluster member's address
// at our SMTP port is a loop found before any connection, even though that
// member has another host name.
func TestRouteToAnotherNodeIs554(t *testing.T) {
	// a's mail for other.example goes to b's SMTP service.
	a, b := startPair(t, [2]string{}, func(_ int, smtp [2]string) string { return smtp[1] }, nil)

	err, took := sendOnce(a.SMTPAddr(), "bob@other.example")
	t.Logf("a → b: %v after %v", err, took.Round(time.Millisecond))
	if !isLoopReply(err) {
		t.Fatalf("got %v, want 554 5.4.6", err)
	}
	if got := metric(t, b, `mxgrid_smtp_connections_total{result="accepted"}`); got != 0 {
		t.Errorf("b received %v connections, want 0", got)
	}
	if got := metric(t, a, `mxgrid_relay_loops_total{detected_by="address"}`); got != 1 {
		t.Errorf("a's loops{detected_by=address} = %v, want 1", got)
	}
}

// TestRouteThroughAnotherNodeIs554: each node's route reaches the other
// through an address the cluster does not know as a member's (a
// forwarder here; in production the member's IPv6 or second address, or
// its NAT address, which a tenant's DNS can hand each node in turn). The
// other node greets with its own name: it is recognised as a member's at
// the first hop. Before, the nodes relayed the RCPT to each other in a
// chain, before any Received field could count hops, until each had
// refused the other's 51st connection: about 100 connections per
// recipient and a 451 the sender retried for days.
func TestRouteThroughAnotherNodeIs554(t *testing.T) {
	a, b := startPair(t, [2]string{}, func(i int, smtp [2]string) string { return forward(t, smtp[1-i]) }, nil)

	wantLoopRefused(t, a, b, 1, "greeting")
	if got := metric(t, a, `mxgrid_smtp_connections_total{result="accepted"}`); got != 1 {
		t.Errorf("a accepted %v connections, want the sender's one", got)
	}
}

// wantLoopRefused sends a message for other.example to a, whose route
// leads to b: the sender must hear 554 5.4.6, b must have accepted
// bAccepted connections, and a must have counted the loop as detectedBy.
func wantLoopRefused(t *testing.T, a, b *nodetest.Node, bAccepted float64, detectedBy string) {
	t.Helper()
	err, took := sendOnce(a.SMTPAddr(), "bob@other.example")
	t.Logf("a → b: %v after %v", err, took.Round(time.Millisecond))
	if !isLoopReply(err) {
		t.Fatalf("got %v, want 554 5.4.6", err)
	}
	if got := metric(t, b, `mxgrid_smtp_connections_total{result="accepted"}`); got != bAccepted {
		t.Errorf("b accepted %v connections, want %v", got, bAccepted)
	}
	if got := metric(t, a, `mxgrid_relay_loops_total{detected_by="`+detectedBy+`"}`); got != 1 {
		t.Errorf("a's loops{detected_by=%s} = %v, want 1", detectedBy, got)
	}
}

// TestRouteToAnotherNodesManagementAddressIs554: a member's management
// listener address is gossiped too, and is the member's as much as its
// gossip address: b listens for SMTP and management on 127.0.0.3, gossips
// on 127.0.0.2, and a's route to 127.0.0.3 at the SMTP port is a loop
// found before any connection. Before, only the gossip address counted:
// a connected, and only b's greeting showed the loop (and a tenant route
// to a member's management address inside relay.allowed_route_networks
// was let through).
func TestRouteToAnotherNodesManagementAddressIs554(t *testing.T) {
	a, b := startPair(t, [2]string{1: "127.0.0.3"}, func(_ int, smtp [2]string) string { return smtp[1] }, func(i int, cfg *config.Config) {
		if i == 1 {
			cfg.HTTP.ManagementListen = "127.0.0.3:0"
		}
	})

	wantLoopRefused(t, a, b, 0, "address")
}

// TestMemberAddrs: a member's management address counts beside its gossip
// address, but a loopback one only for another member that gossips on
// loopback (on this machine): this node's own loopback addresses, and a
// distant member's default management listener 127.0.0.1:8026, must not
// make a static route to a server on this host's loopback at our SMTP
// port a loop.
func TestMemberAddrs(t *testing.T) {
	for _, tc := range []struct {
		gossip, mgmt string
		self         bool
		want         []string
	}{
		{"203.0.113.5:7946", "10.0.0.5:8026", false, []string{"203.0.113.5", "10.0.0.5"}},
		{"203.0.113.5:7946", "127.0.0.1:8026", false, []string{"203.0.113.5"}},
		{"203.0.113.5:7946", "[::1]:8026", false, []string{"203.0.113.5"}},
		{"127.0.0.2:7946", "127.0.0.3:8026", false, []string{"127.0.0.2", "127.0.0.3"}},
		{"127.0.0.1:7946", "127.0.0.1:8026", true, nil},
		{"203.0.113.5:7946", "127.0.0.1:8026", true, []string{"203.0.113.5"}},
		{"203.0.113.5:7946", "", false, []string{"203.0.113.5"}},
		{"", "10.0.0.5:8026", false, nil},
	} {
		var got []string
		for _, ip := range node.MemberAddrs([]cluster.Member{{Addr: tc.gossip, HTTPAddr: tc.mgmt, Self: tc.self}}) {
			got = append(got, ip.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("gossip %q, management %q, self %v: %v, want %v", tc.gossip, tc.mgmt, tc.self, got, tc.want)
		}
	}
}

// TestStaticRouteToALocalServerAtOurPort: a node listening on one address
// relays a static domain to a server on this host's loopback at the same
// port (mxgrid on the public address's port 25 in front of a local MTA on
// 127.0.0.1:25). That is no loop, though the node gossips on loopback (the
// default cluster.bind): its own gossip address was taken for a member's
// SMTP service, and every message got 554 5.4.6.
func TestStaticRouteToALocalServerAtOurPort(t *testing.T) {
	sink := smtptest.StartSink(t)
	_, port, _ := net.SplitHostPort(sink.Addr)
	cfg := nodetest.Config(t)
	cfg.SMTP.Listen = "127.0.0.2:" + port
	cfg.Domains = append(cfg.Domains, nodetest.Domain("local.example", sink.Addr))
	n := nodetest.Start(t, cfg, nil)

	if err, _ := sendOnce(n.SMTPAddr(), "bob@local.example"); err != nil {
		t.Fatalf("got %v, want delivered", err)
	}
	if got := len(sink.Messages()); got != 1 {
		t.Errorf("sink received %d messages, want 1", got)
	}
}
