//go:build linux || darwin

package node

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/mxgrid/mxgrid/fsperm"
)

// lockDataDir takes data_dir for this process: an exclusive flock on
// data_dir/mxgrid.lock, held until release (the kernel lets it go when the
// process dies, however it dies). A second node given the same directory
// is refused, naming the holder's pid: both ran before, each start's spool
// sweep removing the other's bodies in flight, and each rewriting the
// tenant snapshot the other journaled onto under its own id.
func lockDataDir(dir string) (release func() error, err error) {
	p := filepath.Join(dir, lockFile)
	// Truncated and written below, so only the node's own regular file
	// (fsperm.OpenOwn): a symbolic link there was followed, and a node
	// running as root emptied the file it named and wrote its pid in it; a
	// FIFO must not block the start.
	f, err := fsperm.OpenOwn(p, os.O_RDWR|os.O_CREATE, fsperm.FileMode)
	if err != nil {
		return nil, fmt.Errorf("data_dir: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &dataDirInUseError{dir: dir, pid: strings.TrimSpace(string(holder))}
		}
		return nil, fmt.Errorf("data_dir: lock %s: %w", p, err)
	}
	// The pid is for the message above only; the lock is the flock.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f.Close, nil
}
