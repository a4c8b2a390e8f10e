//go:build unix

package relay

import (
	"net"
	"testing"
)

// TestSocketPeek: a cached session's socket is asked before each
// transaction it carries, so asking allocates nothing once the session
// has asked before; it still sees the server's close.
func TestSocketPeek(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	var p socketPeek
	if allocs := testing.AllocsPerRun(100, func() {
		if p.pending(client) {
			t.Fatal("nothing was sent, yet input is pending")
		}
	}); allocs != 0 {
		t.Errorf("%.0f allocations per look", allocs)
	}
	server.Write([]byte("421 bye\r\n"))
	server.Close()
	// Read to the end: the close is then what waits in the socket.
	buf := make([]byte, 64)
	for {
		if _, err := client.Read(buf); err != nil {
			break
		}
	}
	if !p.pending(client) {
		t.Error("the server closed, yet nothing is pending")
	}
}
