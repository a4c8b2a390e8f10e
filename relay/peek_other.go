//go:build !unix

package relay

import "net"

// socketPending: only the client's own buffer is looked at here.
func socketPending(net.Conn) bool { return false }

// socketPeek: as socketPending.
type socketPeek struct{}

func (*socketPeek) pending(net.Conn) bool { return false }
