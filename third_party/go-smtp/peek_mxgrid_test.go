package smtp

import (
	"net"
	"testing"
)

// TestImproperPipeliningCheckAllocatesNothing: the check runs behind
// most commands, and the buffer it peeks into is the connection's, not
// one allocated per command, nor is what it asks the socket with. Over
// TCP: net.Pipe hides a socket, and the check never asked one.
func TestImproperPipeliningCheckAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
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
	defer server.Close()
	c := newConn(server, &Server{ForbidUnauthPipelining: true})
	defer c.releaseText()
	if allocs := testing.AllocsPerRun(100, func() {
		if c.improperPipelining("DATA") {
			t.Fatal("nothing followed DATA, yet it was refused")
		}
	}); allocs != 0 {
		t.Errorf("%.0f allocations per check", allocs)
	}
}
