package geo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// rendezvous is a memcache.ServerSelector that picks, for each key, the
// live server with the highest hash of (server, key). gomemcache's own
// ServerList uses crc32(key) % len(servers), which remaps about two thirds
// of the keys when one of three servers goes away; rendezvous hashing
// remaps only the lost server's keys, so a failing server costs the
// cluster one server's worth of misses, not a cold cache.
//
// A server that failed is left out for a backoff that doubles with each
// consecutive failure (1 s up to 30 s), so a dead or hung server costs one
// timeout per backoff period instead of one per lookup; its keys meanwhile
// go to their second choice.
type rendezvous struct {
	servers []*mcServer
	now     func() time.Time
}

var _ memcache.ServerSelector = (*rendezvous)(nil)

type mcServer struct {
	addr net.Addr
	hash uint64

	mu        sync.Mutex
	failures  int
	downUntil time.Time
	lastErr   error
}

const (
	mcBackoffMin = time.Second
	mcBackoffMax = 30 * time.Second
)

// staticAddr is a server address resolved once, at start: gomemcache dials
// addr.String() for every new connection, and a host name there would mean
// a DNS lookup on the lookup path.
type staticAddr struct{ network, str string }

func (a staticAddr) Network() string { return a.network }
func (a staticAddr) String() string  { return a.str }

// newRendezvous resolves the configured servers once, at start. Scores hash
// the server as configured, so every node must list the servers the same
// way (the same config file) to agree on where a key lives.
func newRendezvous(servers []string) (*rendezvous, error) {
	r := &rendezvous{now: time.Now}
	for _, s := range servers {
		tcp, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			return nil, fmt.Errorf("memcached server %q: %w", s, err)
		}
		r.servers = append(r.servers, &mcServer{
			addr: staticAddr{network: "tcp", str: tcp.String()},
			hash: hashString(s),
		})
	}
	return r, nil
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// mix is splitmix64's finaliser: it spreads fnv's weak low bits so that
// per-server scores for one key are independent.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// PickServer returns the highest-scoring server that is not backing off,
// or memcache.ErrNoServers when all are.
func (r *rendezvous) PickServer(key string) (net.Addr, error) {
	kh := hashString(key)
	now := r.now()
	var best *mcServer
	var bestScore uint64
	for _, s := range r.servers {
		if !s.available(now) {
			continue
		}
		if score := mix(kh ^ s.hash); best == nil || score > bestScore {
			best, bestScore = s, score
		}
	}
	if best == nil {
		return nil, memcache.ErrNoServers
	}
	return best.addr, nil
}

// Each calls f for every server, available or not.
func (r *rendezvous) Each(f func(net.Addr) error) error {
	for _, s := range r.servers {
		if err := f(s.addr); err != nil {
			return err
		}
	}
	return nil
}

func (s *mcServer) available(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !now.Before(s.downUntil)
}

// failed records a failure of addr's server and reports whether it just
// went from up to down (for logging once per outage).
func (r *rendezvous) failed(addr net.Addr, err error) bool {
	s := r.server(addr)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	backoff := mcBackoffMin << min(s.failures-1, 5)
	s.downUntil = r.now().Add(min(backoff, mcBackoffMax))
	s.lastErr = err
	return s.failures == 1
}

// succeeded clears addr's failures and reports whether it was down.
func (r *rendezvous) succeeded(addr net.Addr) bool {
	s := r.server(addr)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.failures > 0
	s.failures, s.downUntil, s.lastErr = 0, time.Time{}, nil
	return was
}

// down lists the servers with unrecovered failures and their last errors.
func (r *rendezvous) down() map[string]error {
	out := map[string]error{}
	for _, s := range r.servers {
		s.mu.Lock()
		if s.failures > 0 {
			out[s.addr.String()] = s.lastErr
		}
		s.mu.Unlock()
	}
	return out
}

func (r *rendezvous) server(addr net.Addr) *mcServer {
	for _, s := range r.servers {
		if s.addr.String() == addr.String() {
			return s
		}
	}
	return nil
}

// Cache value encoding. Memcached holds millions of these, so the encoding
// is compact binary rather than JSON (a located city is ~30 bytes, a
// negative entry 2):
//
//	version(1) flags(1)
//	[located]  country(2) lat(zigzag varint, 1e-5 deg) lon(idem)
//	           accuracy(uvarint) country_name(str) city(str)
//	[has asn]  asn(uvarint) org(str)
//
// where str is uvarint length + bytes.
const (
	encVersion   = 1
	flagLocated  = 1 << 0
	flagASN      = 1 << 1
	maxStringLen = 1 << 10
)

var errBadEncoding = errors.New("malformed cached location")

func encodeLocation(loc Location) []byte {
	b := make([]byte, 0, 32+len(loc.CountryName)+len(loc.City)+len(loc.ASOrg))
	var flags byte
	if loc.Located {
		flags |= flagLocated
	}
	if loc.ASN != 0 || loc.ASOrg != "" {
		flags |= flagASN
	}
	b = append(b, encVersion, flags)
	if loc.Located {
		cc := [2]byte{}
		copy(cc[:], loc.Country)
		b = append(b, cc[0], cc[1])
		b = binary.AppendVarint(b, int64(math.Round(loc.Lat*coordScale)))
		b = binary.AppendVarint(b, int64(math.Round(loc.Lon*coordScale)))
		b = binary.AppendUvarint(b, uint64(max(loc.AccuracyKM, 0)))
		b = appendString(b, loc.CountryName)
		b = appendString(b, loc.City)
	}
	if flags&flagASN != 0 {
		b = binary.AppendUvarint(b, uint64(loc.ASN))
		b = appendString(b, loc.ASOrg)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	if len(s) > maxStringLen {
		s = s[:maxStringLen]
	}
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeLocation parses encodeLocation's output; anything else (another
// version, truncation, garbage from a foreign client) is an error and the
// caller treats it as a miss.
func decodeLocation(b []byte) (Location, error) {
	d := decoder{b: b}
	if d.byte() != encVersion {
		return Location{}, errBadEncoding
	}
	flags := d.byte()
	var loc Location
	if flags&flagLocated != 0 {
		loc.Located = true
		c0, c1 := d.byte(), d.byte()
		if c0 != 0 || c1 != 0 {
			loc.Country = string([]byte{c0, c1})
		}
		loc.Lat = float64(d.varint()) / coordScale
		loc.Lon = float64(d.varint()) / coordScale
		// No database holds a point off the globe: such a value is not
		// ours, and the caller falls back to the file.
		if math.Abs(loc.Lat) > 90 || math.Abs(loc.Lon) > 180 {
			d.err = true
		}
		// GeoIP's radius is 16 bits: a value past that is not ours, and
		// one past int's range was read back negative.
		accuracy := d.uvarint()
		if accuracy > math.MaxUint16 {
			d.err = true
		}
		loc.AccuracyKM = int(accuracy)
		loc.CountryName = d.string()
		loc.City = d.string()
	}
	if flags&flagASN != 0 {
		asn := d.uvarint()
		if asn > math.MaxUint32 {
			d.err = true
		}
		loc.ASN = uint32(asn)
		loc.ASOrg = d.string()
	}
	if d.err || len(d.b) != 0 || flags&^(flagLocated|flagASN) != 0 {
		return Location{}, errBadEncoding
	}
	return loc, nil
}

// decoder reads from b, remembering the first error instead of returning
// one per field.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err || n > maxStringLen || n > uint64(len(d.b)) {
		d.err = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
