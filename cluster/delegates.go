package cluster

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/mxgrid/mxgrid/health"
)

// One small adapter per memberlist callback interface, each forwarding to
// Cluster (serf's layout). They run on memberlist's goroutines, some under
// its locks: they only touch the member table and post work to the
// dispatcher, and never call back into memberlist.

type delegate struct{ c *Cluster }

var _ memberlist.Delegate = delegate{}

// NodeMeta returns the meta encoded by the last refresh, which encode kept
// within memberlist.MetaMaxSize, the only limit memberlist ever passes (it
// panics above it).
func (d delegate) NodeMeta(int) []byte {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	return d.c.localMeta
}

func (d delegate) NotifyMsg(b []byte) { d.c.receive(b) }
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.queue.GetBroadcasts(overhead, limit)
}

// LocalState and MergeRemoteState carry nothing: all shared state is in
// node meta and broadcasts, and the store is the source of truth.
func (d delegate) LocalState(join bool) []byte            { return nil }
func (d delegate) MergeRemoteState(buf []byte, join bool) {}

type eventDelegate struct{ c *Cluster }

var _ memberlist.EventDelegate = eventDelegate{}

func (e eventDelegate) NotifyJoin(n *memberlist.Node)   { e.c.nodeAlive(n, true) }
func (e eventDelegate) NotifyUpdate(n *memberlist.Node) { e.c.nodeAlive(n, false) }
func (e eventDelegate) NotifyLeave(n *memberlist.Node)  { e.c.nodeGone(n) }

type pingDelegate struct{ c *Cluster }

var _ memberlist.PingDelegate = pingDelegate{}

func (p pingDelegate) AckPayload() []byte { return nil }

func (p pingDelegate) NotifyPingComplete(n *memberlist.Node, rtt time.Duration, _ []byte) {
	p.c.metrics.probeRTT.Observe(rtt.Seconds())
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if r, ok := p.c.members[n.Name]; ok && r.state == StateSuspect {
		p.c.setStateLocked(n.Name, r, StateAlive, EventAlive)
	}
}

// nodeAlive records a join (or rejoin) or a meta update.
func (c *Cluster) nodeAlive(n *memberlist.Node, join bool) {
	m, err := decodeMeta(n.Meta)
	if err != nil {
		// A node of an incompatible version: list it with what memberlist
		// knows, and say why the rest is missing.
		c.log.Warn("ignoring a member's meta", "member", n.Name, "addr", n.Address(), "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.members[n.Name]
	if !ok {
		r = &record{}
		c.members[n.Name] = r
	}
	r.addr, r.meta = n.Address(), m
	switch {
	case !ok || r.state == StateDead || r.state == StateLeft:
		r.state = ""
		c.setStateLocked(n.Name, r, StateAlive, EventJoin)
	case join || r.state == StateSuspect:
		// A refuted suspicion arrives as an alive message, sometimes
		// reported as a join.
		c.setStateLocked(n.Name, r, StateAlive, EventAlive)
	default:
		r.lastChange = c.now()
		c.emit(EventUpdate, n.Name, r)
	}
}

// nodeGone records memberlist's NotifyLeave, which fires alike for a node
// that failed and one that left: the member's own "leaving" flag, gossiped
// before its leave message, tells them apart.
func (c *Cluster) nodeGone(n *memberlist.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.members[n.Name]
	if !ok {
		return
	}
	if r.meta.Leaving {
		c.setStateLocked(n.Name, r, StateLeft, EventLeft)
		return
	}
	c.setStateLocked(n.Name, r, StateDead, EventDead)
}

// observeLog reads the one fact memberlist only logs: a failed probe.
func (c *Cluster) observeLog(msg string) {
	name, ok := probeFailedNode(msg)
	if !ok {
		return
	}
	c.metrics.probeFailures.Inc()
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.members[name]; ok && r.state == StateAlive {
		c.setStateLocked(name, r, StateSuspect, EventSuspect)
	}
}

type conflictDelegate struct{ c *Cluster }

var _ memberlist.ConflictDelegate = conflictDelegate{}

// NotifyConflict hears of a node that goes by a member's name at another
// address (memberlist keeps the first and ignores the other). Two live
// nodes with one name (a copied config) split the cluster's view: the
// others list only the first, and the copy, listing itself under the
// name, led beside it when the name was the lowest, quietly. The copy,
// the younger of the two, notes the other here; checkNameConflict takes
// it out of readiness, hence out of the leadership and the load balancer,
// while the other answers.
func (d conflictDelegate) NotifyConflict(existing, other *memberlist.Node) {
	c := d.c
	if existing.Name != c.self.Name {
		c.mu.Lock()
		if _, ok := c.claimants[existing.Name]; ok || len(c.claimants) < maxClaimants {
			c.claimants[existing.Name] = other.Address()
		}
		c.mu.Unlock()
		return
	}
	m, err := decodeMeta(other.Meta)
	if err != nil {
		return
	}
	theirs, ours := m.Started.Unix(), c.self.Started.Unix()
	if theirs > ours || theirs == ours && other.Address() >= existing.Address() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nameHolder.addr != other.Address() {
		// reported stays: the readiness it took is given back when this
		// one is forgotten.
		c.nameHolder = nameHolder{addr: other.Address(), started: m.Started, reported: c.nameHolder.reported}
	}
}

// checkNameConflict pings the older node that goes by this node's name,
// if any. While it answers, this node is not ready. It is forgotten once
// it misses nameMissedPings in a row (the next conflict brings it back).
// The ping tells a live namesake from this node's own crashed former
// self, which the others hold alive until they notice the crash: that
// one must not cost the restarted node its readiness.
func (c *Cluster) checkNameConflict() {
	c.mu.Lock()
	h := c.nameHolder
	c.mu.Unlock()
	if h.addr == "" {
		return
	}
	answered := false
	if addr, err := net.ResolveUDPAddr("udp", h.addr); err == nil {
		_, err = c.ml.Ping(c.self.Name, addr)
		answered = err == nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nameHolder.addr != h.addr {
		return
	}
	if !answered && c.nameHolder.missed+1 < nameMissedPings {
		c.nameHolder.missed++
		return
	}
	if answered {
		c.nameHolder.missed = 0
		if !c.nameHolder.reported {
			c.nameHolder.reported = true
			c.log.Error("another node goes by this node's name; not ready until it is renamed", "member", h.addr, "member_started", h.started)
		}
		c.health.Set(componentName, health.NotReady, fmt.Sprintf("node name %q is taken by the member at %s, up since %s: give this node its own node.name",
			c.self.Name, h.addr, h.started.Format(time.RFC3339)))
		return
	}
	if c.nameHolder.reported {
		c.log.Info("no other node goes by this node's name any more")
		c.health.Set(componentName, health.OK, "")
	}
	c.nameHolder = nameHolder{}
}

// soloDelegate keeps a node without a key or join list a cluster of one:
// it refuses every other node, whether it joins or is gossiped about.
type soloDelegate struct{ self string }

var errSolo = errors.New("this node has no cluster.secret_key and no cluster.join: it is a cluster of one (set insecure_no_key to take keyless members on loopback)")

func (s soloDelegate) NotifyAlive(n *memberlist.Node) error {
	if n.Name == s.self {
		return nil
	}
	return errSolo
}

func (s soloDelegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if n.Name != s.self {
			return errSolo
		}
	}
	return nil
}
