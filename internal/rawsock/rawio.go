//go:build linux && !race

package rawsock

import (
	"syscall"
	"unsafe"
)

// rawIO reads or writes p on fd in one raw system call, again if a signal
// interrupted it (net.Conn's calls do the same).
func rawIO(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		if errno != syscall.EINTR {
			return int(n), errno
		}
	}
}
