//go:build !unix

package smtp

import "net"

// socketPeek: only the input already read is looked at here.
type socketPeek struct{}

func (*socketPeek) pending(net.Conn, []byte) int { return 0 }
