//go:build !linux

package rawsock

import "net"

// Conn is not used off Linux: Wrap returns nil, and callers use the
// net.Conn.
type Conn struct{ net.Conn }

// Wrap returns nil: the net.Conn serves.
func Wrap(net.Conn) *Conn { return nil }
