//go:build unix

package relay

import (
	"errors"
	"net"
	"syscall"
)

// socketPending reports whether the kernel holds input for conn that was
// not read yet, or the server's end of the connection: it looks without
// consuming or waiting. A conn that hides its socket reports false.
func socketPending(conn net.Conn) bool {
	var p socketPeek
	return p.pending(conn)
}

// socketPeek is socketPending for a connection asked again and again (a
// cached session, before each transaction): the socket's RawConn and the
// function Control runs are made at its first use and kept, where made
// per call they cost three allocations a relayed message. Its zero value
// is ready; it serves one connection.
type socketPeek struct {
	rc   syscall.RawConn
	recv func(fd uintptr)
	got  bool // recv's result
	b    [1]byte
}

func (p *socketPeek) pending(conn net.Conn) bool {
	if p.recv == nil {
		sc, ok := conn.(syscall.Conn)
		if !ok {
			return false
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		p.rc = rc
		p.recv = func(fd uintptr) {
			n, _, err := syscall.Recvfrom(int(fd), p.b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			// n == 0 without an error is the end of the stream; an error
			// other than "nothing yet" is a broken connection.
			p.got = n > 0 || err == nil || !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EWOULDBLOCK)
		}
	}
	p.got = false
	_ = p.rc.Control(p.recv)
	return p.got
}
