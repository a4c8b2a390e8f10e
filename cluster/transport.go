package cluster

import (
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// countingTransport wraps memberlist's NetTransport to count gossip bytes in
// and out (UDP packets and TCP push/pull streams). memberlist reports its own
// traffic only through go-metrics globals, which cannot tell two nodes in one
// process apart; this gives a per-node figure an operator can compare with a
// provider's traffic bill.
type countingTransport struct {
	*memberlist.NetTransport
	in, out func(n int)

	packets chan *memberlist.Packet
	streams chan net.Conn
	stop    chan struct{}
	wg      sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*countingTransport)(nil)

func newCountingTransport(nt *memberlist.NetTransport, in, out func(int)) *countingTransport {
	t := &countingTransport{
		NetTransport: nt,
		in:           in,
		out:          out,
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
				select {
				case t.streams <- &countingConn{Conn: c, in: in, out: out}:
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
