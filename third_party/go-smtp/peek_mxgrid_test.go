package smtp

import (
	"net"
	"testing"
)

// TestImproperPipeliningCheckAllocatesNothing: the check runs behind
// most commands, and the buffer it peeks into is the connection's, not
// one allocated per command.
func TestImproperPipeliningCheckAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	client, server := net.Pipe()
	defer client.Close()
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
