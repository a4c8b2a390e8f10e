package smtpd

import (
	"sync"
	"time"
)

// rate counts events over a sliding minute in one-second buckets: the load
// a node gossips to the cluster ("messages/s over the last minute").
type rate struct {
	mu      sync.Mutex
	buckets [60]int64
	stamps  [60]int64 // the unix second each bucket counts
}

func (r *rate) add(now time.Time) {
	sec := now.Unix()
	i := sec % 60
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stamps[i] != sec {
		r.stamps[i], r.buckets[i] = sec, 0
	}
	r.buckets[i]++
}

// perSecond is the mean over the 60 seconds before now.
func (r *rate) perSecond(now time.Time) float64 {
	sec := now.Unix()
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for i := range r.buckets {
		if sec-r.stamps[i] < 60 {
			n += r.buckets[i]
		}
	}
	return float64(n) / 60
}

// MessagesPerSecond is the node's message rate over the last minute.
func (s *Server) MessagesPerSecond() float64 { return s.rate.perSecond(time.Now()) }
