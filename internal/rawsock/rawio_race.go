//go:build linux && race

package rawsock

import "syscall"

// rawIO, under the race detector, makes the calls net.Conn makes:
// syscall.Read and Write tell the detector that a read follows the write
// it reads (and what the kernel wrote into p), as raw calls cannot, and
// without that every test that checks, after reading a reply, what the
// server did before sending it reports a race.
func rawIO(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		var n int
		var err error
		if trap == syscall.SYS_READ {
			n, err = syscall.Read(int(fd), p)
		} else {
			n, err = syscall.Write(int(fd), p)
		}
		if err == nil {
			return n, 0
		}
		if errno := err.(syscall.Errno); errno != syscall.EINTR {
			return 0, errno
		}
	}
}
