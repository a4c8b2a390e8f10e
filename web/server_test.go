package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
)

// serve starts a Server with lim on two loopback listeners and returns
// their addresses.
func serve(t *testing.T, lim Limits, setup func(*Server)) (public, mgmt string) {
	t.Helper()
	s := New(health.New(), prometheus.NewRegistry(), slog.New(slog.DiscardHandler), lim)
	if setup != nil {
		setup(s)
	}
	pl, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ml, err := s.ListenManagement("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, pl, ml) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return pl.Addr().String(), ml.Addr().String()
}

func echoBody(s *Server) {
	s.Handle("POST /echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		fmt.Fprintf(w, "%d", len(b))
	}))
}

func TestSlowClientsCutOff(t *testing.T) {
	lim := DefaultLimits()
	lim.ReadTimeout = 700 * time.Millisecond
	addr, _ := serve(t, lim, echoBody)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
	start := time.Now()
	// One byte every 200 ms: never idle long, never done.
	var werr error
	for i := 0; i < 40 && werr == nil; i++ {
		_, werr = c.Write([]byte("a"))
		time.Sleep(200 * time.Millisecond)
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			werr = err
		}
	}
	if werr == nil {
		t.Fatalf("a client sending one byte per 200 ms was still connected after %v", time.Since(start))
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("cut off after %v, want about the 700 ms read timeout", took)
	}
}

func TestBodyCap(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxBodyBytes = 1000
	addr, _ := serve(t, lim, echoBody)
	for _, tt := range []struct {
		size int
		want int
	}{{1000, http.StatusOK}, {1001, http.StatusRequestEntityTooLarge}} {
		resp, err := http.Post("http://"+addr+"/echo", "text/plain", strings.NewReader(strings.Repeat("x", tt.size)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("body of %d bytes: %d, want %d", tt.size, resp.StatusCode, tt.want)
		}
	}
}

// TestSlowReaderCutOff: a client that reads its answer slowly (or not at
// all) holds its place until the write timeout, not for as long as it
// keeps the window shut.
func TestSlowReaderCutOff(t *testing.T) {
	lim := DefaultLimits()
	lim.WriteTimeout, lim.MaxConns = time.Second, 1
	// More than the kernel buffers of both ends hold.
	big := bytes.Repeat([]byte("x"), 32<<20)
	addr, _ := serve(t, lim, func(s *Server) {
		s.Handle("GET /big", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(big) }))
	})
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	// Set, the buffer is not grown by the kernel.
	slow.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(slow, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	time.Sleep(100 * time.Millisecond)

	// another client: the same one's would be closed at once
	if err := healthzFrom("127.0.0.2", addr, 10*time.Second); err != nil {
		t.Fatalf("the only place stayed with a client not reading its answer: %v", err)
	}
}

// TestChunkedRequestClosesItsConnection: net/http reads a body sent with
// both Content-Length and Transfer-Encoding: chunked as chunked, drops
// the Content-Length before any handler sees it, and went on reading the
// connection after the chunks. A proxy in front that framed the body by
// its Content-Length took the rest for the start of another request (a
// smuggled one: CL.TE desync). RFC 9112 §6.1: the server MUST close the
// connection after answering such a request.
func TestChunkedRequestClosesItsConnection(t *testing.T) {
	addr, _ := serve(t, DefaultLimits(), echoBody)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp, err := http.ReadResponse(br, nil); err == nil {
		t.Fatalf("what followed the chunks was served as a request: %s", resp.Status)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the connection was kept open after the request")
	}
}

func TestHeaderCap(t *testing.T) {
	addr, _ := serve(t, DefaultLimits(), nil)
	for _, tt := range []struct {
		size int
		want int
	}{{1 << 10, http.StatusOK}, {200 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		req, _ := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
		req.Header.Set("X-Big", strings.Repeat("b", tt.size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("header of %d bytes: %d, want %d", tt.size, resp.StatusCode, tt.want)
		}
	}
}

func TestConnectionCap(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxConns = 2
	addr, _ := serve(t, lim, nil)
	// Two clients' connections that say nothing take both places, one
	// each: none to reclaim, and the third is a client holding none.
	var held []net.Conn
	for _, local := range []string{"127.0.0.1", "127.0.0.2"} {
		c, err := dialFrom(local, addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		defer c.Close()
	}
	time.Sleep(100 * time.Millisecond) // let the server accept them
	c, err := dialFrom("127.0.0.3", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err == nil {
		t.Fatalf("third connection served (%q) while the cap of 2 was taken", line)
	}
	held[0].Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("after a place freed: %q, %v", line, err)
	}
}

// TestConnectionCapReclaimsIdle: at the cap, a new connection takes the
// place of the one idle longest between requests, which a client must
// expect to lose at any time (RFC 9112 §9.3.1) and reconnects. Before, a
// few addresses' idle keep-alive connections (one request each, then
// nothing) shut everyone else out for the whole IdleTimeout, renewed by
// reconnecting. A new connection sending its first request keeps its place.
func TestConnectionCapReclaimsIdle(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxConns = 3
	addr, mgmt := serve(t, lim, nil)
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, br *bufio.Reader, within time.Duration) error {
		c.SetDeadline(time.Now().Add(within))
		if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	oldest, oldestBR := dial()
	if err := get(oldest, oldestBR, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // idle the longest
	idle, idleBR := dial()
	if err := get(idle, idleBR, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	busy, busyBR := dial()
	fmt.Fprintf(busy, "GET /healthz HTTP/1.1\r\n") // the rest comes later
	time.Sleep(100 * time.Millisecond)

	c, br := dial()
	if err := get(c, br, 2*time.Second); err != nil {
		t.Fatalf("a new connection at the cap, with idle ones held: %v", err)
	}
	oldest.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := oldestBR.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection idle longest was not closed: %v, %v", n, err)
	}
	busy.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(busy, "Host: x\r\n\r\n")
	if resp, err := http.ReadResponse(busyBR, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the connection in the middle of a request lost its place: %v", err)
	}
	idles := metric(t, mgmt, `mxgrid_http_connections_reclaimed_total{listener="public",state="idle"}`)
	firsts := metric(t, mgmt, `mxgrid_http_connections_reclaimed_total{listener="public",state="first_request"}`)
	if idles != 1 || firsts != 0 {
		t.Errorf("reclaimed: %v idle, %v first requests; want 1, 0", idles, firsts)
	}
}

// TestConnectionCapPerClient: one client cannot take the listener's
// places (idle keep-alive connections hold one each for IdleTimeout); a
// trusted proxy, which carries every client's connections, can.
func TestConnectionCapPerClient(t *testing.T) {
	tests := []struct {
		name        string
		exempt      []netip.Prefix
		thirdServed bool
		refused     float64
	}{
		{"one client over its cap", nil, false, 1},
		{"trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := DefaultLimits()
			lim.MaxConns, lim.MaxConnsPerClient, lim.Exempt = 10, 2, tt.exempt
			addr, mgmt := serve(t, lim, nil)
			for range 2 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			time.Sleep(100 * time.Millisecond) // let the server accept them
			get := func(local string) (string, error) {
				c, err := dialFrom(local, addr)
				if err != nil {
					return "", err
				}
				defer c.Close()
				fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				return bufio.NewReader(c).ReadString('\n')
			}
			line, err := get("127.0.0.1")
			if served := err == nil && strings.HasPrefix(line, "HTTP/1.1 200"); served != tt.thirdServed {
				t.Errorf("third connection from 127.0.0.1: %q, %v; want served %v", line, err, tt.thirdServed)
			}
			// Another client is served all the same.
			if line, err := get("127.0.0.2"); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
				t.Errorf("another client: %q, %v", line, err)
			}
			if n := metric(t, mgmt, `mxgrid_http_connections_total{listener="public",result="refused_ip_limit"}`); n != tt.refused {
				t.Errorf("refused_ip_limit: %v, want %v", n, tt.refused)
			}
		})
	}
}

// metric is a series' value on the management listener's /metrics.
func metric(t *testing.T, mgmt, series string) float64 {
	t.Helper()
	v, found, err := testenv.MetricSum(http.DefaultClient, "http://"+mgmt+"/metrics", series+" ")
	if err != nil || !found {
		t.Fatalf("%s: %v (found %v)", series, err, found)
	}
	return v
}

// dialFrom connects to addr from the loopback address local, another
// client to the listener's per-client accounting.
func dialFrom(local, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return d.Dial("tcp", addr)
}

// healthzFrom asks addr's /healthz on a new connection from local, and
// wants 200 within the time given.
func healthzFrom(local, addr string, within time.Duration) error {
	c, err := dialFrom(local, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(within))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// TestConnectionCapFirstRequestsTrickled: a few addresses, each at its
// per-client cap, trickle the header of their connections' first request
// (http.StateNew: not idle, so not reclaimed), renewing each within the
// header timeout. At the cap, a new connection takes the place of the
// oldest such connection of the client holding the most places: before,
// four addresses held every place and every other client waited unserved.
// A client holding no more than the newcomer would keeps its first
// request.
func TestConnectionCapFirstRequestsTrickled(t *testing.T) {
	lim := DefaultLimits()
	lim.ReadHeaderTimeout = time.Minute
	lim.MaxConns, lim.MaxConnsPerClient = 9, 2
	addr, mgmt := serve(t, lim, nil)
	dial := func(local string) (net.Conn, *bufio.Reader) {
		c, err := dialFrom(local, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	visitor, visitorBR := dial("127.0.0.6")
	fmt.Fprintf(visitor, "GET /healthz HTTP/1.1\r\n") // the rest comes later
	for i := range 4 {
		for range 2 {
			c, _ := dial(fmt.Sprintf("127.0.0.%d", i+1))
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nX-A: b\r\n")
		}
	}
	time.Sleep(100 * time.Millisecond) // let the server accept them

	c, br := dial("127.0.0.5")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a new client, with four at their cap trickling first requests: %v", err)
	}
	visitor.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(visitor, "Host: x\r\n\r\n")
	if resp, err := http.ReadResponse(visitorBR, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a client with one first request in progress lost its place: %v", err)
	}
	if n := metric(t, mgmt, `mxgrid_http_connections_reclaimed_total{listener="public",state="first_request"}`); n != 1 {
		t.Errorf("first requests reclaimed: %v, want 1", n)
	}
}

// TestConnectionCapNewcomerHoldsUpNoOne: at the cap, with nothing to
// reclaim for it, a new connection of a client that already holds a place
// is closed at once. It waited for a place, and every connection behind it
// in the accept queue with it: a client holding nothing, which would have
// taken a place from the heaviest client's first requests at once, waited
// for a header timeout to free one.
func TestConnectionCapNewcomerHoldsUpNoOne(t *testing.T) {
	lim := DefaultLimits()
	lim.ReadHeaderTimeout = time.Minute
	lim.MaxConns, lim.MaxConnsPerClient = 4, 3
	addr, mgmt := serve(t, lim, nil)
	dial := func(local string) net.Conn {
		c, err := dialFrom(local, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\n") // the rest never comes
		return c
	}
	for _, local := range []string{"127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2"} {
		dial(local)
	}
	time.Sleep(100 * time.Millisecond) // let the server accept them
	// Two places each: neither holds one more than the other's newcomer
	// would, so this one can take no place.
	third := dial("127.0.0.1")
	time.Sleep(100 * time.Millisecond)

	if err := healthzFrom("127.0.0.5", addr, 5*time.Second); err != nil {
		t.Fatalf("a new client behind another's third connection at the cap: %v", err)
	}
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := third.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the third connection: %v, want it closed", err)
	}
	if n := metric(t, mgmt, `mxgrid_http_connections_total{listener="public",result="refused_full"}`); n != 1 {
		t.Errorf("refused_full: %v, want 1", n)
	}
}

// TestFewAddressesCannotFillTheListener: a request read whole keeps its
// place until answered (reclaiming it could cut a release mid-delivery),
// for at most the timeouts, so what keeps a few addresses sending bodies
// slowly from holding every place is the per-client cap. At 256 of 1,024,
// four addresses held them all, renewed every ReadTimeout.
func TestFewAddressesCannotFillTheListener(t *testing.T) {
	lim := DefaultLimits()
	addr, _ := serve(t, lim, echoBody)
	const addresses = 4
	for i := range addresses {
		for range lim.MaxConns / addresses {
			c, err := dialFrom(fmt.Sprintf("127.0.0.%d", i+1), addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			// Refused past the per-client cap, the write may fail.
			fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\na")
		}
	}
	time.Sleep(200 * time.Millisecond) // let the server accept them

	if err := healthzFrom("127.0.0.5", addr, 5*time.Second); err != nil {
		t.Fatalf("another client, with %d addresses sending bodies slowly on every connection they could open: %v", addresses, err)
	}
}

func TestListenersApart(t *testing.T) {
	public, mgmt := serve(t, DefaultLimits(), func(s *Server) {
		s.HandleManagement("GET /cluster", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "members") }))
		s.Handle("GET /map", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "map") }))
	})
	tests := []struct {
		addr, path string
		want       int
	}{
		{public, "/metrics", http.StatusNotFound},
		{public, "/cluster", http.StatusNotFound},
		{public, "/map", http.StatusOK},
		{public, "/healthz", http.StatusOK},
		{public, "/readyz", http.StatusOK},
		{mgmt, "/metrics", http.StatusOK},
		{mgmt, "/cluster", http.StatusOK},
		{mgmt, "/map", http.StatusNotFound},
	}
	for _, tt := range tests {
		resp, err := http.Get("http://" + tt.addr + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		which := "public"
		if tt.addr == mgmt {
			which = "management"
		}
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s: %d, want %d", which, tt.path, resp.StatusCode, tt.want)
		}
	}
}

// TestReadinessReasonsOnlyOnManagement: anyone may ask the public /readyz
// (load balancers do), so it names what is degraded but not why: a
// reason holds internal addresses and database users. The management
// listener gives the whole report.
func TestReadinessReasonsOnlyOnManagement(t *testing.T) {
	const reason = `failed to connect to user=mxgrid database=mxgrid: 10.9.8.7:5432 (db.internal): dial error`
	var s *Server
	public, mgmt := serve(t, DefaultLimits(), func(srv *Server) { s = srv })
	s.health.Set("store", health.Degraded, reason)
	s.health.Set("smtp", health.NotReady, "shutting down")
	for _, tt := range []struct {
		name, addr  string
		wantReasons bool
	}{
		{"public", public, false},
		{"management", mgmt, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get("http://" + tt.addr + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got readiness
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusServiceUnavailable || got.Status != health.NotReady.String() || len(got.Conditions) != 2 {
				t.Fatalf("readyz: %d %+v, want 503 with both conditions", resp.StatusCode, got)
			}
			store := got.Conditions[1]
			if store.Component != "store" || store.Level != health.Degraded.String() || (store.Reason == reason) != tt.wantReasons || (store.Reason == "") == tt.wantReasons {
				t.Errorf("store condition %+v; reasons shown: want %v", store, tt.wantReasons)
			}
		})
	}
}
