package negcache

import (
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
)

var userUnknown = Reply{Code: 550, Enhanced: [3]int{5, 1, 1}, Message: "no such user"}

func newCache(cfg Config, h *health.Registry) *Cache {
	return New(cfg, h, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
}

func TestCacheableRefusalsOnly(t *testing.T) {
	for _, tc := range []struct {
		r    Reply
		want bool
	}{
		{userUnknown, true},
		{Reply{Code: 550, Enhanced: [3]int{5, 1, 10}}, true},
		{Reply{Code: 550, Enhanced: [3]int{5, 7, 1}, Message: "sender refused"}, false},
		{Reply{Code: 550, Enhanced: [3]int{5, 1, 7}, Message: "bad sender"}, false},
		{Reply{Code: 450, Enhanced: [3]int{4, 1, 1}, Message: "greylisted"}, false},
		{Reply{Code: 550, Enhanced: [3]int{5, 0, 0}}, false},
	} {
		c := newCache(Config{TTL: time.Minute}, nil)
		c.Add("k", tc.r)
		if _, ok := c.Get("k"); ok != tc.want {
			t.Errorf("%+v: cached %v, want %v", tc.r, ok, tc.want)
		}
	}
}

func TestLocalExpiry(t *testing.T) {
	c := newCache(Config{TTL: time.Minute}, nil)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	c.Add(Key("mx:25", "a@b.test"), userUnknown)
	if r, ok := c.Get(Key("mx:25", "a@b.test")); !ok || r != userUnknown {
		t.Fatalf("Get = %+v, %v", r, ok)
	}
	if _, ok := c.Get(Key("other:25", "a@b.test")); ok {
		t.Error("a refusal by one route answered for another")
	}
	now = now.Add(time.Minute)
	if _, ok := c.Get(Key("mx:25", "a@b.test")); ok {
		t.Error("entry outlived its TTL")
	}
}

// TestSharedThroughMemcached: a refusal seen by one node answers on another.
func TestSharedThroughMemcached(t *testing.T) {
	addr := testenv.Memcached(t)
	cfg := Config{TTL: time.Minute, Memcached: []string{addr}, Timeout: time.Second}
	a, b := newCache(cfg, nil), newCache(cfg, nil)
	key := Key("mx:25", "shared-"+time.Now().Format(time.RFC3339Nano)+"@b.test")
	a.Add(key, userUnknown)
	deadline := time.Now().Add(2 * time.Second)
	for {
		if r, ok := b.Get(key); ok {
			if r != userUnknown {
				t.Fatalf("got %+v", r)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("refusal never reached the other node")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMemcachedDownOrHung: lookups return within the timeout, the node
// reports degraded, and the local cache still answers.
func TestMemcachedDownOrHung(t *testing.T) {
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept, never answer
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := closed.Addr().String()
	closed.Close()

	for name, addr := range map[string]string{"hung": hung.Addr().String(), "down": downAddr} {
		t.Run(name, func(t *testing.T) {
			h := health.New()
			c := newCache(Config{TTL: time.Minute, Memcached: []string{addr}, Timeout: 50 * time.Millisecond}, h)
			start := time.Now()
			if _, ok := c.Get("k"); ok {
				t.Fatal("hit from a broken memcached")
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("lookup took %v with a %s memcached", d, name)
			}
			if lvl, conds := h.Report(); lvl != health.Degraded || len(conds) != 1 || conds[0].Component != healthComponent {
				t.Errorf("health = %v %+v, want degraded negative_cache", lvl, conds)
			}
			// Back-off: the next lookups do not wait again.
			start = time.Now()
			for range 100 {
				c.Get("k2")
			}
			// Each one waiting would take 100 timeouts (5 s); the bound
			// is 20 of them, room for a loaded machine.
			if d := time.Since(start); d > time.Second {
				t.Errorf("100 lookups during back-off took %v", d)
			}
			c.Add("k3", userUnknown)
			if _, ok := c.Get("k3"); !ok {
				t.Error("local cache did not answer while memcached is broken")
			}
		})
	}
}

// TestFullCacheMakesRoom: a dictionary attack keeps the local cache full of
// live refusals; the insert that finds it full makes room for a tenth more,
// so the inserts after it do not sweep the whole table under the lock each.
func TestFullCacheMakesRoom(t *testing.T) {
	c := newCache(Config{TTL: time.Hour}, nil)
	for i := range maxLocal + 1 {
		c.Add(Key("mx:25", strconv.Itoa(i)+"@b.test"), userUnknown)
	}
	if n, keep := len(c.local), maxLocal*9/10+1; n > keep {
		t.Errorf("%d entries after the insert past %d, want at most %d", n, maxLocal, keep)
	}
	if _, ok := c.Get(Key("mx:25", strconv.Itoa(maxLocal)+"@b.test")); !ok {
		t.Error("the insert that made room was not kept")
	}
}
