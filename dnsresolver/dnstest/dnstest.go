// Package dnstest runs an authoritative-style DNS server on 127.0.0.1 for
// tests: it answers from records the test adds, and can be told to answer
// SERVFAIL or REFUSED or to stay silent for a name, so SPF, DKIM, DMARC and DNSBL code
// meets real DNS packets, truncation and timeouts without the network.
package dnstest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is a loopback DNS server. Safe for concurrent use.
type Server struct {
	// Addr is "127.0.0.1:port", serving both UDP and TCP.
	Addr string

	mu      sync.Mutex
	records map[string][]dns.RR // by lower-case FQDN
	rcodes  map[string]int      // an error answer, by name
	silent  map[string]bool
	queries map[string]int
}

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		records: make(map[string][]dns.RR),
		rcodes:  make(map[string]int),
		silent:  make(map[string]bool),
		queries: make(map[string]int),
	}
	pc, ln, err := listenPair()
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	s.Addr = pc.LocalAddr().String()
	// Shutdown of a server that has not started yet fails and leaves it
	// running, so Start returns only once both serve.
	var started, wg sync.WaitGroup
	udp := &dns.Server{PacketConn: pc, Handler: s, NotifyStartedFunc: started.Done}
	tcp := &dns.Server{Listener: ln, Handler: s, NotifyStartedFunc: started.Done}
	for _, srv := range []*dns.Server{udp, tcp} {
		started.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.ActivateAndServe()
		}()
	}
	started.Wait()
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
		wg.Wait()
	})
	return s
}

// listenPair binds UDP and TCP on one loopback port: the Go resolver
// retries truncated answers (long DKIM keys) over TCP to the same address.
// The OS picks a free UDP port, which may be taken for TCP: try again then.
func listenPair() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp: %w", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("listen tcp: %w", lastErr)
}

// Add adds records in zone-file syntax, e.g.
// "example.org. 300 IN TXT \"v=spf1 -all\"".
func (s *Server) Add(t testing.TB, records ...string) {
	t.Helper()
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("dnstest: parse %q: %v", r, err)
		}
		s.addRR(rr)
	}
}

// AddTXT adds one TXT record for name, split into the 255-byte
// character-strings RFC 1035 section 3.3.14 requires, so long DKIM keys work.
func (s *Server) AddTXT(name, value string) {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, value[:255])
		value = value[255:]
	}
	parts = append(parts, value)
	s.addRR(&dns.TXT{
		Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300},
		Txt: parts,
	})
}

// AddA adds an A or AAAA record for name.
func (s *Server) AddA(name, ip string) {
	addr := net.ParseIP(ip)
	hdr := dns.RR_Header{Name: dns.Fqdn(name), Class: dns.ClassINET, Ttl: 300}
	if v4 := addr.To4(); v4 != nil {
		hdr.Rrtype = dns.TypeA
		s.addRR(&dns.A{Hdr: hdr, A: v4})
		return
	}
	hdr.Rrtype = dns.TypeAAAA
	s.addRR(&dns.AAAA{Hdr: hdr, AAAA: addr})
}

// ServFail makes every query for name answer SERVFAIL (a temporary error).
func (s *Server) ServFail(name string) { s.fail(name, dns.RcodeServerFailure) }

// Refuse makes every query for name answer REFUSED, as a resolver does
// that limits its clients' rate or is not theirs to use.
func (s *Server) Refuse(name string) { s.fail(name, dns.RcodeRefused) }

func (s *Server) fail(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcodes[key(name)] = rcode
}

// Silent makes the server drop every query for name, so the client times out.
func (s *Server) Silent(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.silent[key(name)] = true
}

// Answer undoes Silent: the server answers queries for name again.
func (s *Server) Answer(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.silent, key(name))
}

// Queries reports how many queries for name (any type) reached the server.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[key(name)]
}

func (s *Server) addRR(rr dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(rr.Header().Name)
	s.records[k] = append(s.records[k], rr)
}

// wildcard finds the records of the closest "*." owner above name (RFC
// 4592, simplified: a name between the two does not stop the match).
// Callers hold s.mu.
func (s *Server) wildcard(name string) ([]dns.RR, bool) {
	for rest := name; ; {
		i := strings.IndexByte(rest, '.')
		if i < 0 || i == len(rest)-1 {
			return nil, false
		}
		rest = rest[i+1:]
		if rrs, ok := s.records["*."+rest]; ok {
			return rrs, true
		}
	}
}

func key(name string) string {
	return strings.ToLower(dns.Fqdn(name))
}

// ServeDNS answers one query: the matching records, NODATA when the name
// has records of other types only, NXDOMAIN otherwise.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	k := key(q.Name)
	s.mu.Lock()
	s.queries[k]++
	silent, rcode := s.silent[k], s.rcodes[k]
	rrs, exists := s.records[k]
	if !exists {
		rrs, exists = s.wildcard(k)
	}
	var answer []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype {
			c := dns.Copy(rr)
			c.Header().Name = q.Name // echo the query's case (0x20 randomisation)
			answer = append(answer, c)
		}
	}
	s.mu.Unlock()

	if silent {
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	switch {
	case rcode != dns.RcodeSuccess:
		m.Rcode = rcode
	case !exists:
		m.Rcode = dns.RcodeNameError
	default:
		m.Answer = answer
	}
	// Over UDP, answers that do not fit 512 bytes (or the client's EDNS0
	// size) are truncated so the client retries over TCP (RFC 1035 4.2.1).
	if _, isUDP := w.RemoteAddr().(*net.UDPAddr); isUDP {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}
