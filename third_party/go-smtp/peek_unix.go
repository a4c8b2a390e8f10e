//go:build unix

package smtp

import (
	"net"
	"syscall"
)

// socketPeek looks into a connection's socket (mxgrid patch). What it asks
// the kernel with, the socket's RawConn and the function Control runs, is
// made at its first use and kept for the connection's life: made per call,
// it was three allocations for every command the improper-pipelining check
// saw (TestImproperPipeliningCheckAllocatesNothing). Its zero value is
// ready; Conn.init sets it anew when STARTTLS replaces the connection.
type socketPeek struct {
	rc   syscall.RawConn
	recv func(fd uintptr)
	// p and n are recv's argument and result, for the call at hand.
	p []byte
	n int
}

// pending copies into p, without consuming it or waiting, input the
// kernel holds for conn that was not read yet, and returns its length: 0
// when there is none, or conn does not expose its socket (TLS, a wrapper).
func (s *socketPeek) pending(conn net.Conn, p []byte) int {
	if s.recv == nil {
		sc, ok := conn.(syscall.Conn)
		if !ok {
			return 0
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return 0
		}
		s.rc = rc
		s.recv = func(fd uintptr) {
			m, _, err := syscall.Recvfrom(int(fd), s.p, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err == nil {
				s.n = m
			}
		}
	}
	s.p, s.n = p, 0
	s.rc.Control(s.recv)
	s.p = nil
	return s.n
}
