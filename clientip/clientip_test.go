package clientip

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	trusted, err := ParseTrusted([]string{"10.0.0.0/8", "192.0.2.1", "2001:db8:1::/48", "fe80::/64"})
	if err != nil {
		t.Fatal(err)
	}
	r := New(trusted)
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"direct client, no header", "203.0.113.5:4000", nil, "203.0.113.5"},
		{"direct client forging the header", "203.0.113.5:4000", []string{"198.51.100.7"}, "203.0.113.5"},
		{"behind a trusted proxy", "10.1.2.3:4000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"client-written entries left of the real one ignored", "10.1.2.3:4000", []string{"1.2.3.4, 198.51.100.7"}, "198.51.100.7"},
		{"chain of trusted proxies", "192.0.2.1:80", []string{"198.51.100.7, 10.9.9.9"}, "198.51.100.7"},
		{"several header lines", "10.1.2.3:1", []string{"6.6.6.6", "198.51.100.7, 10.0.0.1"}, "198.51.100.7"},
		{"garbage hop stops the walk", "10.1.2.3:1", []string{"198.51.100.7, junk"}, "10.1.2.3"},
		{"trusted proxy without a header", "10.1.2.3:1", nil, "10.1.2.3"},
		{"IPv6 peer", "[2001:db8:9::1]:443", []string{"198.51.100.7"}, "2001:db8:9::1"},
		{"IPv6 trusted proxy", "[2001:db8:1::5]:443", []string{"2001:db8:2::7"}, "2001:db8:2::7"},
		{"v4-mapped peer", "[::ffff:10.1.2.3]:1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"hop with a port", "10.1.2.3:1", []string{"[2001:db8:3::1]:555"}, "2001:db8:3::1"},
		{"link-local trusted proxy, named with its interface", "[fe80::1%eth0]:443", []string{"198.51.100.7"}, "198.51.100.7"},
		{"link-local client", "[fe80::2%eth0]:443", nil, "fe80::2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if got := r.Of(req).String(); got != tt.want {
				t.Errorf("Of = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestTrustedProxiesWrittenAsMappedAddresses: a peer is compared as its
// IPv4 address (the listener's v4-mapped form unmapped), so a proxy
// network written in the v4-mapped form (::ffff:10.0.0.0/104) trusted
// nobody: every client behind the proxy got the proxy's address, and
// shared one panel login budget and one connection cap.
func TestTrustedProxiesWrittenAsMappedAddresses(t *testing.T) {
	trusted, err := ParseTrusted([]string{"::ffff:10.0.0.0/104", "::ffff:192.0.2.1/128", "::ffff:198.51.100.9"})
	if err != nil {
		t.Fatal(err)
	}
	r := New(trusted)
	for _, remote := range []string{"10.1.2.3:4000", "[::ffff:10.1.2.3]:4000", "192.0.2.1:80", "198.51.100.9:80"} {
		req := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {"203.0.113.5"}}}
		if got := r.Of(req).String(); got != "203.0.113.5" {
			t.Errorf("behind proxy %s: Of = %s, want 203.0.113.5", remote, got)
		}
	}
	req := &http.Request{RemoteAddr: "10.1.2.3:4000", Header: http.Header{"X-Forwarded-Proto": {"https"}}}
	if !r.HTTPS(req) {
		t.Error("X-Forwarded-Proto of a proxy written as ::ffff:10.0.0.0/104 not believed")
	}
	if got := fmt.Sprint(Everyone(mustTrusted(t, "::ffff:0.0.0.0/96"))); got != "[0.0.0.0/0]" {
		t.Errorf("Everyone(::ffff:0.0.0.0/96) = %s, want [0.0.0.0/0]: it is every IPv4 client", got)
	}
}

func mustTrusted(t *testing.T, list ...string) []netip.Prefix {
	t.Helper()
	p, err := ParseTrusted(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLimitKey(t *testing.T) {
	a := LimitKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"))
	b := LimitKey(netip.MustParseAddr("2001:db8:1:2:bbbb::9"))
	c := LimitKey(netip.MustParseAddr("2001:db8:1:3::1"))
	if a != b || a == c {
		t.Errorf("IPv6 keys: %s %s %s; want one /64 to share a key", a, b, c)
	}
	if LimitKey(netip.MustParseAddr("192.0.2.1")) == LimitKey(netip.MustParseAddr("192.0.2.2")) {
		t.Error("IPv4 addresses must be keyed one by one")
	}
}

func TestParseTrustedRefusesGarbage(t *testing.T) {
	if _, err := ParseTrusted([]string{"10.0.0.0/33"}); err == nil {
		t.Error("10.0.0.0/33 accepted")
	}
	if _, err := ParseTrusted([]string{"proxy.example"}); err == nil {
		t.Error("a host name accepted")
	}
}

// FuzzOf: whatever the header says, the answer is the peer or an address
// that appears in the header, and never anything from an untrusted peer's
// header.
func FuzzOf(f *testing.F) {
	f.Add("10.1.2.3:1", "198.51.100.7, 10.0.0.1")
	f.Add("203.0.113.5:4000", "1.2.3.4")
	f.Add("[::1]:1", "[::1]:2, ,,")
	trusted, _ := ParseTrusted([]string{"10.0.0.0/8"})
	r := New(trusted)
	f.Fuzz(func(t *testing.T, remote, xff string) {
		req := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		got := r.Of(req)
		peer := peerOf(req)
		if !peer.IsValid() || !r.isTrusted(peer) {
			if got != peer {
				t.Fatalf("untrusted peer %q: got %v from the header", remote, got)
			}
			return
		}
		if got == peer {
			return
		}
		found := false
		for _, part := range strings.Split(xff, ",") {
			if parseHost(strings.TrimSpace(part)) == got {
				found = true
			}
		}
		if !found || !got.IsValid() {
			t.Fatalf("got %v, neither the peer nor in %q", got, xff)
		}
		_ = LimitKey(got)
	})
}

func TestHTTPS(t *testing.T) {
	trusted, err := ParseTrusted([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	r := New(trusted)
	for _, tt := range []struct {
		name, remote, proto string
		tls                 bool
		want                bool
	}{
		{"direct TLS", "203.0.113.9:5000", "", true, true},
		{"plain, no header", "203.0.113.9:5000", "", false, false},
		{"header from a stranger", "203.0.113.9:5000", "https", false, false},
		{"header from the proxy", "10.1.2.3:5000", "https", false, true},
		{"proxy says http", "10.1.2.3:5000", "http", false, false},
		{"proxy, upper case", "10.1.2.3:5000", "HTTPS", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/panel/", nil)
			req.RemoteAddr = tt.remote
			req.TLS = nil
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			}
			if tt.proto != "" {
				req.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			if got := r.HTTPS(req); got != tt.want {
				t.Errorf("HTTPS = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestEveryone: only a network of every address of its family trusts
// everyone; a wide one of a provider's does not.
func TestEveryone(t *testing.T) {
	trusted, err := ParseTrusted([]string{"10.0.0.0/8", "0.0.0.0/0", "2001:db8::/32", "::/0", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(Everyone(trusted)); got != "[0.0.0.0/0 ::/0]" {
		t.Errorf("Everyone = %s, want [0.0.0.0/0 ::/0]", got)
	}
	if got := Everyone(trusted[:1]); len(got) != 0 {
		t.Errorf("Everyone(10.0.0.0/8) = %v, want none", got)
	}
}
