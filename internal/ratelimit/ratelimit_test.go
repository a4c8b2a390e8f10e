package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

func TestBurstThenOnePerInterval(t *testing.T) {
	l := New[string](3, time.Second, 0)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if wait := l.Take("a", now); wait != 0 {
			t.Fatalf("take %d within the burst waits %v", i, wait)
		}
	}
	if wait := l.Take("a", now); wait != time.Second {
		t.Fatalf("over the burst: wait %v, want 1s", wait)
	}
	if wait := l.Take("b", now); wait != 0 {
		t.Fatal("another key is limited by a's spending")
	}
	if wait := l.Take("a", now.Add(time.Second)); wait != 0 {
		t.Fatalf("a token after an interval: wait %v", wait)
	}
}

func TestReadySpendsNothing(t *testing.T) {
	l := New[string](2, time.Second, 0)
	now := time.Unix(1000, 0)
	for range 5 {
		if !l.Ready("a", now) {
			t.Fatal("a fresh key is not ready")
		}
	}
	l.Take("a", now)
	l.Take("a", now)
	if l.Ready("a", now) || l.Ready("a", now.Add(999*time.Millisecond)) {
		t.Fatal("ready with its burst spent")
	}
	if !l.Ready("a", now.Add(time.Second)) || l.Take("a", now.Add(time.Second)) != 0 {
		t.Fatal("not ready a whole interval later")
	}
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2002:c000:207:1::1", "192.0.2.7/32"}, // 6to4
		{"64:ff9b::c000:207", "192.0.2.7/32"},  // NAT64
		{"fe80::1%eth0", "fe80::/64"},
	} {
		if got := ClientKey(netip.MustParseAddr(tc.in)); got.String() != tc.want {
			t.Errorf("ClientKey(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestBoundedKeys(t *testing.T) {
	l := New[int](2, time.Second, 100)
	now := time.Unix(1000, 0)
	for i := range 10_000 {
		l.Take(i, now)
		if len(l.buckets) > 100 {
			t.Fatalf("%d buckets kept, bound 100", len(l.buckets))
		}
	}
	// A busy key survives eviction of refilled ones.
	l = New[int](2, time.Second, 3)
	l.Take(1, now)
	l.Take(1, now)
	l.Take(2, now.Add(-time.Hour)) // long idle: refilled
	l.Take(3, now)
	l.Take(4, now) // evicts 2 only
	if wait := l.Take(1, now); wait == 0 {
		t.Fatal("a busy key's spending was forgotten")
	}
}

// TestEvictionMakesRoom: an eviction leaves room for a tenth of the bound
// at least. Keys arriving as fast as the oldest refill (100,000 client
// addresses or IPv6 /64s a minute on the why page) had each eviction find
// one refilled bucket to forget, so every new key scanned the whole table
// under the limiter's lock: 3.4 ms a request at 100,000 keys, and the
// page, or the SMTP path's count of unknown recipients, serialized on it.
func TestEvictionMakesRoom(t *testing.T) {
	const max = 1000
	l := New[int](10, 6*time.Second, max)
	t0 := time.Unix(1000, 0)
	step := 60 * time.Second / max // one bucket refills per new key
	for i := range max + 1 {
		l.Take(i, t0.Add(time.Duration(i)*step))
	}
	if n := len(l.buckets); n > max*9/10+1 {
		t.Fatalf("%d buckets kept after an eviction, want at most %d", n, max*9/10+1)
	}
	// What is kept is what was used last.
	if _, ok := l.buckets[max]; !ok {
		t.Fatal("the newest key was forgotten")
	}
	if _, ok := l.buckets[max-1]; !ok {
		t.Fatal("the key used just before was forgotten")
	}
}

func TestWaitSpendsNothing(t *testing.T) {
	l := New[string](1, time.Second, 0)
	now := time.Unix(1000, 0)
	if wait := l.Wait("a", now); wait != 0 {
		t.Fatalf("a fresh key waits %v", wait)
	}
	l.Take("a", now)
	for range 3 {
		if wait := l.Wait("a", now.Add(250*time.Millisecond)); wait != 750*time.Millisecond {
			t.Fatalf("wait %v, want 750ms", wait)
		}
	}
	if wait := l.Wait("a", now.Add(time.Second)); wait != 0 {
		t.Fatalf("after an interval: wait %v", wait)
	}
}

// TestMissesOneBudgetPerAddress: the misses of every route come out of
// one budget per address (an IPv6 /64), and lookups that found something
// spend none of it.
func TestMissesOneBudgetPerAddress(t *testing.T) {
	m := NewMisses(nil)
	now := time.Unix(1000, 0)
	a := netip.MustParseAddr("2001:db8::1")
	for i := range MissBurst {
		if wait := m.Refused(a, "map", now); wait != 0 {
			t.Fatalf("miss %d refused", i)
		}
		m.Missed(a, now)
	}
	if m.Refused(netip.MustParseAddr("2001:db8::2"), "logo", now) == 0 {
		t.Error("another address of the /64, another route: not refused")
	}
	if m.Refused(netip.MustParseAddr("2001:db8:1::1"), "logo", now) != 0 {
		t.Error("another /64 refused")
	}
	if wait := m.Refused(a, "api_token", now.Add(MissInterval)); wait != 0 {
		t.Errorf("after an interval: wait %v", wait)
	}
}
