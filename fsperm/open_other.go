//go:build !unix

package fsperm

import "os"

// No O_NOFOLLOW or O_NONBLOCK here: the fstat after the open still
// refuses what is no regular file.
const (
	noFollow  = 0
	nonBlock  = 0
	directory = 0
)

func refusedOpen(error) bool { return false }

func soleName(os.FileInfo) bool { return true }
