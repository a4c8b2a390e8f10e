package node_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/testenv"
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
// one cluster, on 127.0.0.1 and 127.0.0.2 at one SMTP port. Each relays
// other.example to route(i, smtp), smtp being both nodes' SMTP addresses.
func startPair(t *testing.T, route func(i int, smtp [2]string) string) (a, b *nodetest.Node) {
	t.Helper()
	port := testenv.FreePort(t)
	smtpAddrs := [2]string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.2:%d", port)}
	gossip := []string{fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.2:%d", testenv.FreePort(t))}
	var nodes [2]*nodetest.Node
	for i, name := range []string{"a", "b"} {
		cfg := nodetest.Config(t)
		cfg.Node.Name = "node-" + name
		cfg.SMTP.Hostname = "mx-" + name + ".test"
		cfg.SMTP.Listen = smtpAddrs[i]
		cfg.Cluster.Bind = gossip[i]
		cfg.Cluster.Join = gossip
		cfg.Domains = append(cfg.Domains, nodetest.Domain("other.example", route(i, smtpAddrs)))
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
	a, b := startPair(t, func(_ int, smtp [2]string) string { return smtp[1] })

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
	a, b := startPair(t, func(i int, smtp [2]string) string { return forward(t, smtp[1-i]) })

	err, took := sendOnce(a.SMTPAddr(), "bob@other.example")
	t.Logf("a → b → a ...: %v after %v", err, took.Round(time.Millisecond))
	if !isLoopReply(err) {
		t.Fatalf("got %v, want 554 5.4.6", err)
	}
	if got := metric(t, b, `mxgrid_smtp_connections_total{result="accepted"}`); got != 1 {
		t.Errorf("b accepted %v connections, want a's one", got)
	}
	if got := metric(t, a, `mxgrid_smtp_connections_total{result="accepted"}`); got != 1 {
		t.Errorf("a accepted %v connections, want the sender's one", got)
	}
	if got := metric(t, a, `mxgrid_relay_loops_total{detected_by="greeting"}`); got != 1 {
		t.Errorf("a's loops{detected_by=greeting} = %v, want 1", got)
	}
}
