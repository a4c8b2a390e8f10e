package geo

import (
	"container/list"
	"net/netip"
	"sync"
)

// lru is a fixed-size least-recently-used map from address to location.
// Entries carry the database version they were computed from, so a reload
// makes old entries misses without a stop-the-world purge.
type lru struct {
	mu    sync.Mutex
	size  int
	order *list.List // front: most recently used; values are *lruEntry
	items map[netip.Addr]*list.Element
}

type lruEntry struct {
	addr    netip.Addr
	version string
	loc     Location
}

func newLRU(size int) *lru {
	return &lru{size: size, order: list.New(), items: make(map[netip.Addr]*list.Element, size)}
}

func (c *lru) get(addr netip.Addr, version string) (Location, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[addr]
	if !ok {
		return Location{}, false
	}
	e := el.Value.(*lruEntry)
	if e.version != version {
		return Location{}, false
	}
	c.order.MoveToFront(el)
	return e.loc, true
}

func (c *lru) put(addr netip.Addr, version string, loc Location) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[addr]; ok {
		e := el.Value.(*lruEntry)
		e.version, e.loc = version, loc
		c.order.MoveToFront(el)
		return
	}
	if c.order.Len() >= c.size {
		// Reuse the evicted element: no allocation at steady state.
		el := c.order.Back()
		e := el.Value.(*lruEntry)
		delete(c.items, e.addr)
		e.addr, e.version, e.loc = addr, version, loc
		c.order.MoveToFront(el)
		c.items[addr] = el
		return
	}
	c.items[addr] = c.order.PushFront(&lruEntry{addr: addr, version: version, loc: loc})
}

func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
