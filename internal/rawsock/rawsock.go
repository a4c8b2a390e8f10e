//go:build linux

package rawsock

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// MaxWrite is the most Write sends in one raw call; longer writes go
// through the net.Conn.
const MaxWrite = 16 << 10

// Conn reads and writes a socket's file descriptor. Its zero value is not
// usable; Wrap makes one. Reads and writes may run at once, each kind one
// at a time (each has its own lock, as net.Conn's have).
type Conn struct {
	nc net.Conn
	rc syscall.RawConn

	rmu   sync.Mutex
	read  func(fd uintptr) bool
	rp    []byte
	rn    int
	rerr  syscall.Errno
	wmu   sync.Mutex
	write func(fd uintptr) bool
	wp    []byte
	wn    int
	werr  syscall.Errno
}

// Wrap returns a Conn for nc's socket, or nil unless nc is a
// *net.TCPConn: a wrapper (TLS, a PROXY header's reader, a test's fault
// injector) must see its reads and writes. The functions the RawConn runs
// are made here, once: made per call they would allocate on every read and
// write.
func Wrap(nc net.Conn) *Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	c := &Conn{nc: nc, rc: rc}
	c.read = func(fd uintptr) bool {
		n, errno := rawIO(syscall.SYS_READ, fd, c.rp)
		if errno == syscall.EAGAIN {
			return false // wait in the netpoller, as net.Conn does
		}
		c.rn, c.rerr = n, errno
		return true
	}
	c.write = func(fd uintptr) bool {
		n, errno := rawIO(syscall.SYS_WRITE, fd, c.wp)
		if errno == syscall.EAGAIN {
			return false
		}
		c.wn, c.werr = n, errno
		return true
	}
	return c
}

// Read reads into p as net.Conn.Read does: io.EOF at the end, the read
// deadline in force, an *net.OpError otherwise.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rp, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.read)
	c.rp = nil
	if err == nil && c.rerr != 0 {
		err = c.rerr
	}
	if err != nil {
		return 0, c.opError("read", err)
	}
	if c.rn == 0 {
		return 0, io.EOF
	}
	return c.rn, nil
}

// Write writes all of p as net.Conn.Write does, within the write
// deadline; more than MaxWrite goes through the net.Conn.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) > MaxWrite {
		return c.nc.Write(p)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var n int
	for n < len(p) {
		c.wp, c.wn, c.werr = p[n:], 0, 0
		err := c.rc.Write(c.write)
		c.wp = nil
		if err == nil && c.werr != 0 {
			err = c.werr
		}
		if err != nil {
			return n, c.opError("write", err)
		}
		n += c.wn
	}
	return n, nil
}

// opError wraps err as net.Conn's methods do, so that callers that look
// for a timeout (os.ErrDeadlineExceeded, net.Error) or a closed
// connection (net.ErrClosed) find them.
func (c *Conn) opError(op string, err error) error {
	switch e := err.(type) {
	case *net.OpError:
		err = e.Err // the RawConn's ("raw-read"), around the poller's
	case syscall.Errno:
		err = os.NewSyscallError(op, e)
	}
	return &net.OpError{Op: op, Net: c.nc.LocalAddr().Network(), Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(), Err: err}
}
