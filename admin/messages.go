package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/mxgrid/mxgrid/tracking"
)

// MessageLog searches message tracking; *store.Store implements it.
type MessageLog interface {
	SearchTracking(ctx context.Context, f tracking.Filter) ([]tracking.Record, tracking.Cursor, error)
	GetTracking(ctx context.Context, scope tracking.Scope, id int64) (tracking.Record, error)
	WaitingTracking(ctx context.Context, f tracking.WaitingFilter) ([]tracking.Waiting, error)
}

// Scope is what a principal may see of the message log and the
// quarantine: the operator everything, a reseller its customers' objects.
type Scope = tracking.Scope

// scope is p's Scope.
func scope(p Principal) tracking.Scope {
	return tracking.Scope{Operator: p.Operator, ResellerID: p.ResellerID}
}

// SearchMessages returns a page of p's message records matching f (newest
// first) and the cursor of the next page. The scope comes from p, never
// from f: a filter naming another tenant's domain or customer finds
// nothing.
func (s *Service) SearchMessages(ctx context.Context, p Principal, f tracking.Filter) ([]tracking.Record, tracking.Cursor, error) {
	if s.messages == nil {
		return nil, tracking.Cursor{}, ErrPanelUnconfigured
	}
	f.Scope = scope(p)
	return s.messages.SearchTracking(ctx, f)
}

// GetMessage returns one of p's message records; another tenant's id is
// ErrNotFound, as a missing one is.
func (s *Service) GetMessage(ctx context.Context, p Principal, id int64) (tracking.Record, error) {
	if s.messages == nil {
		return tracking.Record{}, ErrPanelUnconfigured
	}
	return s.messages.GetTracking(ctx, scope(p), id)
}

// WaitingMessages is p's deferral view: mail senders are still retrying
// because we deferred it, per message, oldest first.
func (s *Service) WaitingMessages(ctx context.Context, p Principal, f tracking.WaitingFilter) ([]tracking.Waiting, error) {
	if s.messages == nil {
		return nil, ErrPanelUnconfigured
	}
	f.Scope = scope(p)
	return s.messages.WaitingTracking(ctx, f)
}

// MaxConcurrentSearches bounds the searches of the message log (records,
// the deferral view) and of the quarantine a node runs and answers at
// once, through the API and the panel together. Each may scan a table for
// the store's timeout on one of its connections (16 on PostgreSQL, shared
// with the mail path: a search by status or text is served by no index)
// and holds its answer until the client has read it: a deferral view is
// up to tracking.MaxWaitingRows rows, several MB. Without the bound, a tenant
// sending many such requests at once and reading the answers slowly took
// the pool from the mail path and held an answer per connection.
const MaxConcurrentSearches = 4

// ErrSearchesBusy: MaxConcurrentSearches searches are running on this node
// (HTTP 429). It is an ErrBusy.
var ErrSearchesBusy = fmt.Errorf("%w: %d searches are running on this node", ErrBusy, MaxConcurrentSearches)

// DefaultSearchWait is how long a search waits for a place before
// ErrSearchesBusy: searches take milliseconds as a rule, so a burst of a
// few at once (a panel open in several tabs, a script paging) is served in
// turn rather than refused; a request whose client leaves stops waiting.
const DefaultSearchWait = 5 * time.Second

// MaxSearchesPerReseller is how many of the node's search places one
// reseller (its API tokens, panel users and customers' logins together)
// may hold: a tenant whose clients read their answers slowly held all of
// them, and every other tenant's searches waited and got 429. The
// operator is bounded by MaxConcurrentSearches alone.
const MaxSearchesPerReseller = MaxConcurrentSearches / 2

// BeginSearch takes one of the node's search places for p before a search
// of the message log or the quarantine; done gives it back once the
// answer is written. With none free for p (MaxSearchesPerReseller) or on
// the node, for the search wait (or until ctx ends), it fails with
// ErrSearchesBusy: the client retries.
func (s *Service) BeginSearch(ctx context.Context, p Principal) (done func(), err error) {
	wait := time.NewTimer(s.searchWait)
	defer wait.Stop()
	node := func() (func(), error) { return takeWaiting(ctx, wait.C, s.searches, ErrSearchesBusy) }
	if p.Operator {
		return node()
	}
	own := func() (func(), error) {
		return takeWaiting(ctx, wait.C, s.searchesOf.of(p.ResellerID), ErrSearchesBusy)
	}
	return inTurn(own, node)
}

// SearchesRunning is how many search places are taken.
func (s *Service) SearchesRunning() int { return len(s.searches) }
