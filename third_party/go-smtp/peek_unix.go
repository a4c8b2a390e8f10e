//go:build unix

package smtp

import (
	"net"
	"syscall"
)

// socketPending copies into p, without consuming it or waiting, input the
// kernel holds for conn that was not read yet, and returns its length: 0
// when there is none, or conn does not expose its socket (TLS, a wrapper).
func socketPending(conn net.Conn, p []byte) int {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) {
		m, _, err := syscall.Recvfrom(int(fd), p, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == nil {
			n = m
		}
	})
	return n
}
