package cluster

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/mxgrid/mxgrid/internal/ratelimit"
)

// Limits on inbound TCP streams (push/pull, joins, fallback pings). The
// gossip port faces the internet, and memberlist buffers a whole encrypted
// stream, up to 20 MB, before it can tell that the sender has no key, for
// TCPTimeout (10 s, 30 s WAN) per connection, with no cap on connections:
// anyone could make a node hold their bandwidth times that timeout in
// memory. A legitimate stream is a push/pull of every member's state,
// about 600 bytes each with a full 512-byte meta (LocalState is empty),
// so 1 MiB fits 1,700 members; and a peer has one or two streams open to
// a node at a time.
const (
	maxStreamBytes    = 1 << 20
	maxStreams        = 64
	maxStreamsPerPeer = 8
	// Reasons of mxgrid_cluster_streams_refused_total.
	refusedBusy     = "busy"
	refusedTooLarge = "too_large"
)

var errStreamTooLarge = errors.New("gossip stream over 1 MiB")

// countingTransport wraps memberlist's NetTransport to count gossip bytes in
// and out (UDP packets and TCP push/pull streams). memberlist reports its own
// traffic only through go-metrics globals, which cannot tell two nodes in one
// process apart; this gives a per-node figure an operator can compare with a
// provider's traffic bill.
type countingTransport struct {
	*memberlist.NetTransport
	in, out func(n int)
	refused func(reason string)
	// member reports whether an address is a known member's.
	member func(netip.Addr) bool

	// open counts inbound streams being handled, by client: a member's
	// address, or an outsider's ratelimit.ClientKey (an IPv6 /64: keyed
	// by address, one host took every place from 8 of its addresses).
	// total counts outsiders' only, so that they cannot fill the places
	// members' push/pulls need.
	mu    sync.Mutex
	open  map[netip.Prefix]int
	total int

	packets chan *memberlist.Packet
	streams chan net.Conn
	stop    chan struct{}
	wg      sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*countingTransport)(nil)

func newCountingTransport(nt *memberlist.NetTransport, in, out func(int), refused func(string), member func(netip.Addr) bool) *countingTransport {
	t := &countingTransport{
		NetTransport: nt,
		in:           in,
		out:          out,
		refused:      refused,
		member:       member,
		open:         make(map[netip.Prefix]int),
		packets:      make(chan *memberlist.Packet),
		streams:      make(chan net.Conn),
		stop:         make(chan struct{}),
	}
	// NetTransport's channels are never closed, so the forwarders stop on
	// our own signal from Shutdown.
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		for {
			select {
			case p := <-nt.PacketCh():
				t.in(len(p.Buf))
				select {
				case t.packets <- p:
				case <-t.stop:
					return
				}
			case <-t.stop:
				return
			}
		}
	}()
	go func() {
		defer t.wg.Done()
		for {
			select {
			case c := <-nt.StreamCh():
				ic, ok := t.admit(c)
				if !ok {
					t.refused(refusedBusy)
					_ = c.Close()
					continue
				}
				select {
				case t.streams <- ic:
				case <-t.stop:
					_ = c.Close()
					return
				}
			case <-t.stop:
				return
			}
		}
	}()
	return t
}

// admit wraps an accepted stream in the limits, or says no when too many
// are open already, from its address or in all.
func (t *countingTransport) admit(c net.Conn) (net.Conn, bool) {
	var peer netip.Addr
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		peer = ap.Addr().Unmap()
	}
	member := peer.IsValid() && t.member != nil && t.member(peer)
	key := ratelimit.ClientKey(peer)
	if member {
		key = netip.PrefixFrom(peer, peer.BitLen())
	}
	outsider := 0
	if !member {
		outsider = 1
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total+outsider > maxStreams || t.open[key] >= maxStreamsPerPeer {
		return nil, false
	}
	t.total += outsider
	t.open[key]++
	release := func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.total -= outsider
		if t.open[key]--; t.open[key] <= 0 {
			delete(t.open, key)
		}
	}
	ic := &inboundConn{countingConn: countingConn{Conn: c, in: t.in, out: t.out}, release: release, tooLarge: func() { t.refused(refusedTooLarge) }}
	ic.left.Store(maxStreamBytes)
	return ic, true
}

func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *countingTransport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	ts, err := t.NetTransport.WriteTo(b, addr)
	if err == nil {
		t.out(len(b))
	}
	return ts, err
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	ts, err := t.NetTransport.WriteToAddress(b, a)
	if err == nil {
		t.out(len(b))
	}
	return ts, err
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, in: t.in, out: t.out}, nil
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, in: t.in, out: t.out}, nil
}

// Shutdown closes the listeners first (memberlist's own order: transport
// before handlers), then stops the forwarders.
func (t *countingTransport) Shutdown() error {
	err := t.NetTransport.Shutdown()
	close(t.stop)
	t.wg.Wait()
	return err
}

type countingConn struct {
	net.Conn
	in, out func(int)
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in(n)
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out(n)
	return n, err
}

// inboundConn is an accepted stream: it reads at most maxStreamBytes and
// frees its slot when memberlist closes it.
type inboundConn struct {
	countingConn
	left     atomic.Int64
	once     sync.Once
	release  func()
	tooLarge func()
	cut      atomic.Bool
}

func (c *inboundConn) Read(b []byte) (int, error) {
	left := c.left.Load()
	if left <= 0 {
		if !c.cut.Swap(true) {
			c.tooLarge()
		}
		return 0, errStreamTooLarge
	}
	if int64(len(b)) > left {
		b = b[:left]
	}
	n, err := c.countingConn.Read(b)
	c.left.Add(int64(-n))
	return n, err
}

func (c *inboundConn) Close() error {
	c.once.Do(c.release)
	return c.countingConn.Close()
}
