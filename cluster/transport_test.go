package cluster

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestUnauthenticatedStreamsAreBounded: the gossip port faces the
// internet. Someone without the key opens TCP streams to it: memberlist
// buffers an encrypted stream whole, up to 20 MB, before it can find the
// key wrong, and holds any stream for TCPTimeout, with no cap on how
// many. The transport cuts a stream off after maxStreamBytes and refuses
// streams beyond maxStreamsPerPeer from one address.
func TestUnauthenticatedStreamsAreBounded(t *testing.T) {
	// A long TCPTimeout, so that only the limits can end these streams.
	slowStreams := func(c *memberlist.Config) { fastTimers(c); c.TCPTimeout = time.Minute }
	const encryptMsg = 10 // memberlist's message type of an encrypted stream
	for _, tc := range []struct {
		name   string
		attack func(t *testing.T, addr string)
		reason string
		count  float64
	}{
		{"one stream announcing 20 MB", func(t *testing.T, addr string) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			hdr := binary.BigEndian.AppendUint32([]byte{encryptMsg}, 20<<20-1)
			if _, err := c.Write(hdr); err != nil {
				t.Fatal(err)
			}
			junk := make([]byte, 64<<10)
			for sent := 0; sent < 8<<20; sent += len(junk) {
				if _, err := c.Write(junk); err != nil {
					return // cut off: the point
				}
			}
		}, refusedTooLarge, 1},
		{"idle streams from one address", func(t *testing.T, addr string) {
			const extra = 4
			var conns []net.Conn
			for range maxStreamsPerPeer + extra {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				conns = append(conns, c)
			}
			closed := 0
			for _, c := range conns {
				c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, err := c.Read(make([]byte, 1)); err != nil {
					if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
						closed++
					}
				}
			}
			if closed < extra {
				t.Errorf("%d of %d idle streams closed by the node, want at least %d", closed, len(conns), extra)
			}
		}, refusedBusy, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startNode(t, "a", "hetzner", nodeOpts{key: testKey, tune: slowStreams})
			tc.attack(t, a.addr())
			series := `mxgrid_cluster_streams_refused_total{reason="` + tc.reason + `"}`
			waitFor(t, 10*time.Second, series, func() bool { return metricValue(t, a.reg, series) == tc.count })
			// Some slack for memberlist's read-ahead and the header.
			if in := metricValue(t, a.reg, `mxgrid_cluster_gossip_bytes_total{direction="in"}`); in > maxStreamBytes+64<<10 {
				t.Errorf("the node read %.0f bytes from streams without the key", in)
			}
		})
	}
}

// TestJunkDoesNotFloodTheLog: memberlist logs every packet and stream it
// cannot decrypt, at error level. Junk sent to the public gossip port by
// anyone must not turn into as many log lines.
func TestJunkDoesNotFloodTheLog(t *testing.T) {
	const sent = 300
	for _, tc := range []struct {
		name string
		send func(t *testing.T, addr string)
		line string // what memberlist logs for each
	}{
		{"UDP packets", func(t *testing.T, addr string) {
			c, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for range sent {
				c.Write([]byte("not a gossip packet"))
				time.Sleep(100 * time.Microsecond) // not faster than a socket buffer drains
			}
		}, "Decrypt packet failed"},
		{"UDP packets, each with another label", func(t *testing.T, addr string) {
			c, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i := range sent {
				label := fmt.Sprintf("label-%d", i)
				c.Write(append([]byte{244, byte(len(label))}, label+"junk"...)) // memberlist's label header
				time.Sleep(100 * time.Microsecond)
			}
		}, "discarding packet with unacceptable label"},
		{"TCP streams", func(t *testing.T, addr string) {
			for range sent / 10 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				c.Read(make([]byte, 1)) // until the node hangs up
				c.Close()
			}
		}, "failed to receive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startNode(t, "a", "hetzner", nodeOpts{key: testKey})
			tc.send(t, a.addr())
			waitFor(t, 5*time.Second, "a logs "+tc.line, func() bool { return strings.Contains(a.logs.String(), tc.line) })
			time.Sleep(200 * time.Millisecond) // the last packets' lines, if any
			if n := strings.Count(a.logs.String(), tc.line); n > logBurst+1 {
				t.Errorf("%d lines %q for junk from one sender, want at most %d", n, tc.line, logBurst+1)
			}
		})
	}
}

// TestKeylessNodeAdmitsNoMembers: the default config, loopback without a
// key or join list, is a cluster of one. A keyless node with a join list
// is refused unless insecure_no_key says so, because on a shared machine
// any local user could join and become leader; but anyone on the machine
// could still join it from their side, unencrypted, become leader (so
// this node stopped running the map, the verifier and the digests) and
// feed it members. Without a key, members join only a node that opted in.
func TestKeylessNodeAdmitsNoMembers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      nodeOpts
		wantAdmit bool
	}{
		{"no key, no join list", nodeOpts{strictNoKey: true}, false},
		{"no key, insecure_no_key", nodeOpts{}, true},
		{"key", nodeOpts{key: testKey}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startNode(t, "b-target", "hetzner", tc.opts)
			x := startNode(t, "a-rogue", "local", nodeOpts{key: tc.opts.key, join: []*testNode{a}})
			if tc.wantAdmit {
				waitFor(t, 10*time.Second, "a lists x", func() bool { _, ok := a.member("a-rogue"); return ok })
				return
			}
			waitFor(t, 10*time.Second, "x tried to join", func() bool { return strings.Contains(x.logs.String(), "join") })
			time.Sleep(time.Second) // gossip rounds in which x would spread
			if _, ok := a.member("a-rogue"); ok {
				t.Fatal("a keyless node without a join list admitted a member")
			}
			if !a.IsLeader() {
				t.Errorf("a is not its own leader: %q", a.Leader())
			}
		})
	}
}

func TestLineKind(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"Decrypt packet failed: cipher: message authentication failed from=10.0.0.1:7946",
			"Decrypt packet failed: no installed keys could decrypt the message from=[2001:db8::7]:1"},
		{`discarding packet with unacceptable label "a": from=10.0.0.1:1`,
			`discarding packet with unacceptable label "zzz": from=10.0.0.2:2`},
		{"Stream connection from=10.0.0.1:1", "Stream connection from=10.9.9.9:9"},
		{"failed to receive: EOF from=10.0.0.1:1", "failed to receive: remote node state is larger than limit (1) from=10.0.0.1:2"},
	} {
		if ka, kb := lineKind(tc.a), lineKind(tc.b); ka != kb || ka == "" {
			t.Errorf("lineKind(%q) = %q, lineKind(%q) = %q: want one non-empty kind", tc.a, ka, tc.b, kb)
		}
	}
	if lineKind("Decrypt packet failed: x") == lineKind("failed to receive: x") {
		t.Error("two different lines share a kind")
	}
}

// TestClosedTransportAtShutdownIsNoError: memberlist's goroutines outlive
// its transport by a tick at Shutdown and log their writes to the closed
// socket at error level; once the cluster is closing that is the node
// stopping, logged at debug, while the same line before is an error.
func TestClosedTransportAtShutdownIsNoError(t *testing.T) {
	const line = "[ERR] memberlist: Failed to send gossip to 127.0.0.1:7947: write udp 127.0.0.1:7946->127.0.0.1:7947: use of closed network connection\n"
	for _, tc := range []struct {
		name    string
		closing bool
		want    string
	}{
		{"running", false, "level=ERROR"},
		{"closing", true, "level=DEBUG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf strings.Builder
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			w := newLogWriter(log, func(string) {}, func() bool { return tc.closing }, time.Now)
			w.Write([]byte(line))
			if !strings.Contains(buf.String(), tc.want) {
				t.Errorf("logged %q, want %s", buf.String(), tc.want)
			}
		})
	}
}

// stubConn is a stream from a chosen address, for the admission limits.
type stubConn struct {
	net.Conn
	from netip.AddrPort
}

func (c stubConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.from) }

// TestStreamLimitsPerClientAndMembersApart: an IPv6 host holds a whole
// /64, so "8 streams from one address" let it take all 64 places from 8
// of its addresses, and members' push/pulls were refused as busy while
// it held them. Outsiders count per client (an IPv6 /64, as every other
// per-client limit), members by their own address and outside the total.
func TestStreamLimitsPerClientAndMembersApart(t *testing.T) {
	member := netip.MustParseAddr("2001:db8:1:1::7")
	neighbour := netip.MustParseAddr("2001:db8:1:1::8") // a member in the same /64
	tr := &countingTransport{open: make(map[netip.Prefix]int)}
	tr.member = func(a netip.Addr) bool { return a == member || a == neighbour }
	admit := func(a netip.Addr) bool {
		_, ok := tr.admit(stubConn{from: netip.AddrPortFrom(a, 40000)})
		return ok
	}
	admitted := 0
	for i := range 64 {
		if admit(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i + 1)})) {
			admitted++
		}
	}
	if admitted != maxStreamsPerPeer {
		t.Errorf("%d streams admitted from 64 addresses of one /64, want %d", admitted, maxStreamsPerPeer)
	}
	for i := range maxStreams {
		admit(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
	}
	if admit(netip.MustParseAddr("198.51.100.1")) {
		t.Error("an outsider's stream admitted past the total")
	}
	for _, m := range []netip.Addr{member, neighbour} {
		for i := range maxStreamsPerPeer {
			if !admit(m) {
				t.Fatalf("member %s's stream %d refused while outsiders hold every place", m, i+1)
			}
		}
	}
}
