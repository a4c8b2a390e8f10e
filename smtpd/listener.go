package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mxgrid/mxgrid/internal/rawsock"
	"github.com/pires/go-proxyproto"
)

// peekReaders are lent to connections for the PROXY header check.
var peekReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// proxyV2Sig starts every PROXY v2 header; "PROXY " starts every v1 header.
var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// gateListener admits connections under the global and per-IP limits and
// wraps each in a gateConn that owns its read deadlines.
type gateListener struct {
	net.Listener
	srv *Server
}

func (l *gateListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	_, viaProxy := c.(*proxyproto.Conn)
	gc := &gateConn{Conn: c, srv: l.srv, viaProxy: viaProxy, raw: rawsock.Wrap(c)}
	gc.idle.Store(true)
	return gc, nil
}

// gateConn enforces the connection limits before the greeting, refuses a
// PROXY header from an untrusted peer, and manages deadlines itself:
// go-smtp's ReadTimeout is one deadline for a whole DATA body and cannot
// tell an idle client from a slow one, so every Read here extends a
// per-read idle deadline, capped by an absolute deadline during DATA.
type gateConn struct {
	net.Conn
	srv      *Server
	viaProxy bool
	// peeked holds what the PROXY header check read ahead, from the first
	// read until go-smtp has taken it; the connection is read directly
	// after, so a session does not keep a buffer of its own.
	peeked *bufio.Reader

	once     sync.Once
	admitErr error
	ip       netip.Addr

	// readBy and writeBy are the deadlines as last set, so that most of
	// the per-read and per-reply extensions can be skipped (deadline.set).
	readBy, writeBy deadline

	firstRead    atomic.Bool
	refused      bool         // a PROXY header from an untrusted peer: nothing is read
	dataDeadline atomic.Int64 // unix nanos; 0 outside DATA
	// repliedAt is our last write (unix nanos): the client's next
	// command must have arrived whole a command timeout after it. Each
	// read alone extends the idle deadline, so a client trickling a
	// command a byte at a time kept its connection for days.
	repliedAt atomic.Int64
	// stressDeadline is set while the read deadline in force is the
	// stress one, shorter than command_timeout: a timeout then is
	// stress's doing.
	stressDeadline atomic.Bool
	idle           atomic.Bool // no transaction in progress
	goingAway      atomic.Bool // shutdown: the next read says goodbye
	tls            atomic.Bool // STARTTLS done: no clear-text goodbye
	closed         atomic.Bool

	// counts outlive the session STARTTLS ends; only the connection's
	// goroutine touches them.
	counts connCounts

	// raw reads and writes a plain TCP connection's socket without the
	// scheduler's system call bookkeeping (rawsock): about 5 % of a
	// node's CPU a message, in replies and commands. nil for any other
	// connection (a PROXY header's reader).
	raw *rawsock.Conn
}

// sock is what the connection is read and written through.
func (c *gateConn) sock() io.ReadWriter {
	if c.raw == nil {
		return c.Conn
	}
	return c.raw
}

// connCounts are a connection's budgets that no new transaction or
// session restores.
type connCounts struct {
	// unknown counts refused recipients (unknown domain or user, refused
	// by the customer's server, 4xx included): smtp.max_unknown_recipients.
	unknown int
	// abandoned counts transactions whose recipients reached the
	// customer's server but that ended without a message, since the last
	// accepted one: smtp.max_junk_commands.
	abandoned int
}

// admit runs once, at the greeting: by then a trusted proxy's header has
// been read, so RemoteAddr is the real client.
func (c *gateConn) admit() error {
	c.once.Do(func() {
		c.ip = addrIP(c.Conn.RemoteAddr())
		ok, reason := c.srv.acquire(c)
		if !ok {
			c.srv.metrics.connections.WithLabelValues(reason).Inc()
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			c.Conn.Write(rawReply(errTooManyConnections, c.srv.cfg.Hostname))
			c.admitErr = net.ErrClosed
			c.Conn.Close()
			return
		}
		c.srv.metrics.connections.WithLabelValues("accepted").Inc()
	})
	return c.admitErr
}

func (c *gateConn) Write(p []byte) (int, error) {
	if err := c.admit(); err != nil {
		return 0, err
	}
	n, err := c.sock().Write(p)
	c.repliedAt.Store(time.Now().UnixNano())
	return n, err
}

func (c *gateConn) Read(p []byte) (int, error) {
	if err := c.admit(); err != nil {
		return 0, err
	}
	// Stress shortens every wait, a body's reads included, as Postfix's
	// stress smtpd_timeout does: spared, a client that started a message
	// and sent a byte of its body inside every command_timeout held its
	// slot for all of data_timeout. A body that keeps coming is not cut.
	timeout, lowered := c.srv.idleTimeout()
	limit := c.dataDeadline.Load()
	if limit == 0 {
		if r := c.repliedAt.Load(); r != 0 {
			limit = r + int64(timeout)
		}
	}
	c.stressDeadline.Store(lowered)
	deadline := time.Now().Add(timeout)
	if limit != 0 && time.Unix(0, limit).Before(deadline) {
		deadline = time.Unix(0, limit)
	}
	c.readBy.set(deadline, c.Conn.SetReadDeadline)
	// After the deadline is set, so that closeIdle's "now" cannot be
	// overwritten unseen (it sets the flag first, then the deadline).
	if c.goingAway.Load() {
		return 0, c.sayGoodbye()
	}
	if !c.firstRead.Swap(true) && !c.viaProxy {
		// An untrusted peer that opens with a PROXY header is trying to
		// choose the client IP we record and judge; refuse it outright.
		c.peeked = peekReaders.Get().(*bufio.Reader)
		c.peeked.Reset(c.Conn)
		if c.startsWithProxyHeader() {
			c.srv.metrics.connections.WithLabelValues("refused_proxy").Inc()
			c.srv.log.Warn("PROXY header from untrusted address refused", "client_ip", c.ip.String())
			c.Conn.Write(rawReply(errProxyRefused, ""))
			// Not closed here: go-smtp's lingering close reads away
			// what the peer sent behind the header, which closed over
			// unread would have reset the connection, the 554 with it.
			c.refused = true
			c.peeked.Reset(nil)
			peekReaders.Put(c.peeked)
			c.peeked = nil
		}
	}
	if c.refused {
		return 0, net.ErrClosed
	}
	var n int
	var err error
	if c.peeked != nil {
		n, err = c.peeked.Read(p)
		if c.peeked.Buffered() == 0 {
			c.peeked.Reset(nil)
			peekReaders.Put(c.peeked)
			c.peeked = nil
		}
	} else {
		n, err = c.sock().Read(p)
	}
	if err != nil && c.goingAway.Load() {
		return n, c.sayGoodbye()
	}
	return n, err
}

// retime gives a read already waiting the timeout now in force: between
// messages counted from our last reply, as any command's; in a body from
// now, within data_timeout. Entering stress, it would otherwise keep the
// usual one, minutes, until the client's next command or line; leaving
// it, the stress one, and the client be shown out after the stress had
// ended.
func (c *gateConn) retime(timeout time.Duration, lowered bool) {
	r := c.repliedAt.Load()
	if r == 0 {
		return
	}
	deadline := time.Unix(0, r+int64(timeout))
	if limit := c.dataDeadline.Load(); limit != 0 {
		deadline = time.Now().Add(timeout)
		if l := time.Unix(0, limit); l.Before(deadline) {
			deadline = l
		}
	}
	c.stressDeadline.Store(lowered)
	c.readBy.set(deadline, c.Conn.SetReadDeadline)
	// Checked after, as in Read: closeIdle sets the flag, then "now",
	// which the deadline above must not replace unseen (leaving stress
	// is what a shutdown's closing sessions bring about).
	if c.goingAway.Load() {
		c.Conn.SetReadDeadline(time.Now())
	}
}

// sayGoodbye answers an idle client during shutdown (RFC 5321 §3.8: 421
// before closing). It runs in the session's own goroutine, inside Read,
// where go-smtp is not writing a reply. Under TLS the clear-text line would
// corrupt the stream, so the connection is only closed.
func (c *gateConn) sayGoodbye() error {
	if !c.tls.Load() {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Conn.Write(rawReply(errGoingAway, c.srv.cfg.Hostname))
	}
	return net.ErrClosed
}

// startsWithProxyHeader peeks at the first bytes one at a time, and only
// for as long as they could still begin a PROXY header: a client waits for
// our reply after a short command ("HELO a.b\r\n" is 10 octets), so asking
// for a whole v2 signature up front would stall it until the idle timeout.
//
// A whole line ("\r\n", an empty command) is all a client sends before it
// waits, yet it also begins the v2 signature: past a line end only octets
// already received are looked at. A v2 header comes in one piece, and one
// sent in pieces is read as commands, not believed.
func (c *gateConn) startsWithProxyHeader() bool {
	v1 := []byte("PROXY ")
	var head []byte
	for n := 1; n <= len(proxyV2Sig); n++ {
		if bytes.HasSuffix(head, lfBytes) && c.peeked.Buffered() < n {
			return false
		}
		var err error
		head, err = c.peeked.Peek(n)
		if err != nil {
			return false
		}
		if bytes.Equal(head, v1) || bytes.Equal(head, proxyV2Sig) {
			return true
		}
		if !bytes.HasPrefix(v1, head) && !bytes.HasPrefix(proxyV2Sig, head) {
			return false
		}
	}
	return false
}

// SyscallConn exposes the socket so that go-smtp can see input a client
// sent behind a command it must wait after, before the session reads it
// (Server.ForbidUnauthPipelining). Peeking there never consumes input.
func (c *gateConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// NetConn is the socket, which go-smtp shuts down and drains when it
// closes a connection (a lingering close: closed over unread input, the
// socket would send a reset, and the client could lose our last reply).
// Read and SetReadDeadline here serve a session, not that drain.
func (c *gateConn) NetConn() net.Conn {
	if pc, ok := c.Conn.(*proxyproto.Conn); ok {
		return pc.Raw()
	}
	return c.Conn
}

// SetReadDeadline is ours alone (see gateConn); go-smtp's calls are ignored.
func (c *gateConn) SetReadDeadline(time.Time) error { return nil }

// SetDeadline keeps the write half for go-smtp's WriteTimeout.
func (c *gateConn) SetDeadline(t time.Time) error { return c.SetWriteDeadline(t) }

// SetWriteDeadline is called before every reply.
func (c *gateConn) SetWriteDeadline(t time.Time) error {
	return c.writeBy.set(t, c.Conn.SetWriteDeadline)
}

// deadline remembers a connection deadline as last set. Setting one updates
// a runtime timer under a lock; a session extends its read deadline at
// every read and its write deadline at every reply, thousands of times a
// second on a busy node, almost always by the microseconds since the last.
// set skips an extension while the deadline in force is at most a
// sixteenth of the time left (and at most a second) short of the one
// asked for, so a timeout is never cut by more than that; an earlier
// deadline, or none, is always set.
type deadline struct {
	at atomic.Int64 // unix nanoseconds; 0 when none is set
}

func (d *deadline) set(t time.Time, apply func(time.Time) error) error {
	var want int64
	if !t.IsZero() {
		want = t.UnixNano()
		if cur := d.at.Load(); cur != 0 && cur <= want && time.Duration(want-cur) < min(time.Until(t)/16, time.Second) {
			return nil
		}
	}
	if err := apply(t); err != nil {
		return err
	}
	d.at.Store(want)
	return nil
}

func (c *gateConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	// release does nothing for a connection that was never admitted;
	// acquire, under the same lock, refuses one already closed here.
	c.srv.release(c)
	return c.Conn.Close()
}

func addrIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// newProxyListener requires a PROXY header from trusted proxies (and waits
// for it before the greeting, as load balancers send it at once), and hands
// every other connection over untouched so normal senders never wait.
// Required, not merely used: a header that never came, or was cut short
// past proxy_header_timeout, counted as "no header", and the client was
// served as the proxy (an internal address, which DNSBLs are not asked
// about), the rest of a late header read as commands. Postfix's
// smtpd_upstream_proxy_protocol drops such a connection too. A v2 LOCAL
// header (the proxy's own health check) is served as the proxy.
func newProxyListener(l net.Listener, trusted []netip.Prefix, timeout time.Duration) net.Listener {
	if len(trusted) == 0 {
		return l
	}
	return &proxyproto.Listener{
		Listener:          l,
		ReadHeaderTimeout: timeout,
		ValidateHeader:    tcpProxyHeader,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			ip := addrIP(o.Upstream)
			for _, p := range trusted {
				if p.Contains(ip) {
					return proxyproto.REQUIRE, nil
				}
			}
			return proxyproto.SKIP, nil
		},
	}
}

// tcpProxyHeader admits the headers of TCP clients over IPv4 or IPv6, and
// those that say to use the connection's own addresses (v2 LOCAL, v1
// UNKNOWN), as Postfix does. Another transport has no client IP address
// to judge: a Unix socket's was served under an invalid one, every such
// client sharing one per-IP limit.
func tcpProxyHeader(h *proxyproto.Header) error {
	switch {
	case h.Command.IsLocal(), h.TransportProtocol == proxyproto.TCPv4, h.TransportProtocol == proxyproto.TCPv6,
		h.Version == 1 && h.TransportProtocol == proxyproto.UNSPEC:
		return nil
	}
	return fmt.Errorf("PROXY header for transport %#x: only TCP over IPv4 or IPv6 is served", byte(h.TransportProtocol))
}
