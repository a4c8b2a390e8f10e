package admin

import (
	"context"

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
