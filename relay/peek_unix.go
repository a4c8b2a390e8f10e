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
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	pending := false
	var b [1]byte
	_ = rc.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// n == 0 without an error is the end of the stream; an error
		// other than "nothing yet" is a broken connection.
		pending = n > 0 || err == nil || !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EWOULDBLOCK)
	})
	return pending
}
