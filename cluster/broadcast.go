package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/memberlist"
)

const (
	// msgBroadcast is the first byte of our user messages, so another kind
	// can be added without confusing an older node.
	msgBroadcast byte = 1
	// MaxBroadcastSize bounds an encoded broadcast (header, topic and
	// payload): it must fit in one gossip UDP packet (memberlist's 1400-byte
	// UDPBufferSize, minus its framing, encryption and the other messages
	// sharing the packet), or it would never leave the queue. Announce that
	// something changed, not the change itself.
	MaxBroadcastSize = 1024
	maxTopicLen      = 64
	// seenTTL is how long a broadcast id is remembered to suppress
	// duplicates; retransmissions end within seconds even on the WAN profile.
	seenTTL = 5 * time.Minute
)

type broadcast []byte

var _ memberlist.Broadcast = broadcast(nil)

// Invalidates is false: every announcement is delivered, even when a newer
// one on the same topic follows; handlers sort out what is current.
func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

// Broadcast announces payload on topic to every node of the cluster, this
// one included (from is the sender's node name). Delivery is by gossip:
// each node passes a message on once when it first sees it, so it reaches
// every alive node within a few gossip rounds, possibly more than once on
// some; handlers must be idempotent. Nodes down at the time miss it: pair
// announcements with a periodic check of the source of truth.
func (c *Cluster) Broadcast(topic string, payload []byte) error {
	if topic == "" || len(topic) > maxTopicLen {
		return fmt.Errorf("cluster: broadcast topic %q: want 1 to %d bytes", topic, maxTopicLen)
	}
	id := rand.Uint64()
	msg := encodeBroadcast(id, c.self.Name, topic, payload)
	if len(msg) > MaxBroadcastSize {
		return fmt.Errorf("cluster: broadcast on %q: %d bytes encoded, limit %d", topic, len(msg), MaxBroadcastSize)
	}
	c.mu.Lock()
	c.seen[id] = c.now()
	c.mu.Unlock()
	c.queue.QueueBroadcast(broadcast(msg))
	payload = append([]byte(nil), payload...)
	c.post(func() { c.deliver(topic, payload, c.self.Name) })
	return nil
}

// Subscribe registers fn for broadcasts on topic. fn runs on the cluster's
// dispatcher goroutine, one message at a time, and must be idempotent and
// quick (hand long work to another goroutine).
func (c *Cluster) Subscribe(topic string, fn func(payload []byte, from string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handlers[topic] = append(c.handlers[topic], fn)
}

// receive handles a user message from memberlist's NotifyMsg. It must not
// block memberlist's packet loop: it decodes, deduplicates and posts.
func (c *Cluster) receive(b []byte) {
	id, from, topic, payload, err := decodeBroadcast(b)
	if err != nil {
		c.log.Debug("dropping a malformed cluster message", "len", len(b), "err", err)
		return
	}
	c.mu.Lock()
	_, dup := c.seen[id]
	if !dup {
		c.seen[id] = c.now()
	}
	c.mu.Unlock()
	if dup {
		return
	}
	// memberlist reuses b after NotifyMsg returns.
	msg := append([]byte(nil), b...)
	payload = append([]byte(nil), payload...)
	// Pass it on, so it spreads like memberlist's own state does rather
	// than relying on the sender's few retransmissions alone.
	c.queue.QueueBroadcast(broadcast(msg))
	c.post(func() { c.deliver(topic, payload, from) })
}

func (c *Cluster) deliver(topic string, payload []byte, from string) {
	c.mu.Lock()
	hs := c.handlers[topic]
	c.mu.Unlock()
	for _, h := range hs {
		h(payload, from)
	}
}

// Wire format: msgBroadcast, id (8 bytes), uvarint-prefixed sender and
// topic, then the payload to the end.
func encodeBroadcast(id uint64, from, topic string, payload []byte) []byte {
	b := make([]byte, 0, 1+8+2+len(from)+len(topic)+len(payload))
	b = append(b, msgBroadcast)
	b = binary.BigEndian.AppendUint64(b, id)
	b = appendString(b, from)
	b = appendString(b, topic)
	return append(b, payload...)
}

func decodeBroadcast(b []byte) (id uint64, from, topic string, payload []byte, err error) {
	if len(b) < 9 || b[0] != msgBroadcast {
		return 0, "", "", nil, errors.New("not a broadcast")
	}
	id = binary.BigEndian.Uint64(b[1:9])
	d := decoder{b: b[9:]}
	from = d.string()
	topic = d.string()
	if d.err != nil {
		return 0, "", "", nil, d.err
	}
	return id, from, topic, d.b, nil
}
