//go:build !unix

package smtp

import "net"

// socketPending: only the input already read is looked at here.
func socketPending(net.Conn, []byte) int { return 0 }
