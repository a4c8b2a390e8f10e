package admin

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MaxRequestsPerReseller is how many admin API and panel requests one
// reseller (its API tokens, panel users and customers' logins together)
// may have running on a node at once. Each request holds a store
// connection while it reads or writes, and the node has few (16 on
// PostgreSQL, one on SQLite): without the bound, a tenant sending
// hundreds of requests at once queued every other tenant's behind its
// own. A request past the bound waits, as searches do, then gets 429.
// The operator is not bounded.
const MaxRequestsPerReseller = 8

// ErrRequestsBusy: the reseller has MaxRequestsPerReseller requests
// running on this node (HTTP 429). It is an ErrBusy.
var ErrRequestsBusy = fmt.Errorf("%w: %d requests of this reseller are running on this node", ErrBusy, MaxRequestsPerReseller)

// A reseller's changes on a node (admin API calls and panel forms that
// write) are rate limited: ChangeBurst at once, one more every
// ChangeInterval. Each change is an audit row in the shared store, and a
// change to a domain has every node reload it with its recipients: a
// tenant looping PATCHes, changing something or nothing, grew the audit
// table without end and kept every node reloading. 1,000 at once and 20 a
// second are far beyond what a panel user or a provisioning script needs
// (a recipient list goes in one import). The operator is not limited.
const (
	ChangeBurst    = 1000
	ChangeInterval = 50 * time.Millisecond
)

// ErrChangesBusy: the reseller spent its changes on this node (HTTP 429).
// It is an ErrBusy.
var ErrChangesBusy = fmt.Errorf("%w: this reseller made more than %d changes at %d a second on this node",
	ErrBusy, ChangeBurst, time.Second/ChangeInterval)

// AllowChange spends one of p's changes before a request that may write
// is served, or fails with ErrChangesBusy: the client retries later.
func (s *Service) AllowChange(p Principal) error {
	if p.Operator || s.changes.Take(p.ResellerID, s.own.now()) == 0 {
		return nil
	}
	return ErrChangesBusy
}

// BeginRequest takes one of p's request places before an authenticated
// admin API or panel request is served; done gives it back once the
// answer is written. With none free for the search wait (or until ctx
// ends) it fails with ErrRequestsBusy: the client retries.
func (s *Service) BeginRequest(ctx context.Context, p Principal) (done func(), err error) {
	if p.Operator {
		return func() {}, nil
	}
	wait := time.NewTimer(s.searchWait)
	defer wait.Stop()
	return takeWaiting(ctx, wait.C, s.requestsOf.of(p.ResellerID), ErrRequestsBusy)
}

// takeWaiting takes one of places, or fails with busy once expired fires
// or ctx ends first.
func takeWaiting(ctx context.Context, expired <-chan time.Time, places chan struct{}, busy error) (done func(), err error) {
	select {
	case places <- struct{}{}:
		return func() { <-places }, nil
	case <-expired:
	case <-ctx.Done():
	}
	return nil, busy
}

// inTurn takes a reseller's own place, then the node's, giving the first
// back when the second is not to be had; done gives both back.
func inTurn(own, node func() (func(), error)) (done func(), err error) {
	ownDone, err := own()
	if err != nil {
		return nil, err
	}
	nodeDone, err := node()
	if err != nil {
		ownDone()
		return nil, err
	}
	return func() { nodeDone(); ownDone() }, nil
}

// resellerPlaces gives each reseller its own fixed number of places (a
// handful of bytes per reseller that ever used one on this node).
type resellerPlaces struct {
	per int
	mu  sync.Mutex
	by  map[int64]chan struct{}
}

func newResellerPlaces(per int) *resellerPlaces {
	return &resellerPlaces{per: per, by: map[int64]chan struct{}{}}
}

// of is the reseller's places.
func (r *resellerPlaces) of(id int64) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.by[id]
	if !ok {
		c = make(chan struct{}, r.per)
		r.by[id] = c
	}
	return c
}
