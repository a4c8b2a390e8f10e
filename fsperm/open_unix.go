//go:build unix

package fsperm

import (
	"errors"
	"os"
	"syscall"
)

// noFollow and nonBlock make an open refuse a symbolic link as its last
// component (ELOOP) and return at once on a FIFO or device.
// directory makes an open refuse what is no directory (ENOTDIR).
const (
	noFollow  = syscall.O_NOFOLLOW
	nonBlock  = syscall.O_NONBLOCK
	directory = syscall.O_DIRECTORY
)

// refusedOpen reports whether err is the open's refusal of what is no
// regular file: a symbolic link (ELOOP under O_NOFOLLOW), a directory
// opened for writing (EISDIR), a FIFO with no reader (ENXIO).
func refusedOpen(err error) bool {
	return errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENXIO)
}

// soleName reports whether fi is a file of one name: a hard link made in
// data_dir to a file elsewhere has two (an operator's copied data_dir
// owned by another user is still the node's to tighten, as before).
func soleName(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || st.Nlink == 1
}
