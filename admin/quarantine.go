package admin

import (
	"context"
	"slices"
	"strings"

	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/tenant"
)

// Quarantine is what the admin side needs of the quarantine;
// *quarantine.Service implements it.
type Quarantine interface {
	List(ctx context.Context, f quarantine.Filter) ([]quarantine.Item, error)
	Get(ctx context.Context, scope Scope, id int64) (quarantine.Item, []byte, error)
	Release(ctx context.Context, scope Scope, id int64, by string) (quarantine.Item, string, error)
	Delete(ctx context.Context, scope Scope, id int64) error
}

// ListQuarantine lists p's quarantined messages, newest first; the scope
// comes from p, never from f.
func (s *Service) ListQuarantine(ctx context.Context, p Principal, f quarantine.Filter) ([]quarantine.Item, error) {
	if s.quarantine == nil {
		return nil, ErrPanelUnconfigured
	}
	if err := CheckSearch("q", f.Search); err != nil {
		return nil, err
	}
	f.Scope = scope(p)
	return s.quarantine.List(ctx, f)
}

// GetQuarantined returns one of p's items and its message (for a preview:
// package quarantine/preview).
func (s *Service) GetQuarantined(ctx context.Context, p Principal, id int64) (quarantine.Item, []byte, error) {
	if s.quarantine == nil {
		return quarantine.Item{}, nil, ErrPanelUnconfigured
	}
	return s.quarantine.Get(ctx, scope(p), id)
}

// ReleaseQuarantined delivers one of p's held messages once (a second
// release is quarantine.ErrNotHeld); with allowSender the sender also goes
// on the domain's allow list, so its next messages are not held. The list
// is changed first: a sender it cannot hold (a quoted local part with a
// space) refuses the whole request before anything is delivered.
func (s *Service) ReleaseQuarantined(ctx context.Context, p Principal, id int64, allowSender bool) (quarantine.Item, error) {
	if s.quarantine == nil {
		return quarantine.Item{}, ErrPanelUnconfigured
	}
	if allowSender {
		it, _, err := s.quarantine.Get(ctx, scope(p), id)
		if err != nil {
			return it, err
		}
		if it.State != quarantine.StateHeld {
			return it, quarantine.ErrNotHeld
		}
		if err := s.allowSender(ctx, p, it); err != nil {
			return it, err
		}
	}
	it, _, err := s.quarantine.Release(ctx, scope(p), id, p.Actor)
	if err != nil {
		return it, err
	}
	s.log.Info("quarantined message released", "id", id, "actor", p.Actor, "domain", it.Domain)
	return it, nil
}

// allowSender puts a held message's envelope sender on its domain's allow
// list.
func (s *Service) allowSender(ctx context.Context, p Principal, it quarantine.Item) error {
	if it.Sender == "" || it.DomainID == 0 {
		return nil
	}
	sender := strings.ToLower(it.Sender)
	_, err := s.UpdateDomain(ctx, p, it.DomainID, func(d *tenant.DomainRecord) {
		if !slices.Contains(d.Policy.SenderAllow, sender) {
			d.Policy.SenderAllow = append(slices.Clone(d.Policy.SenderAllow), sender)
		}
	})
	return err
}

// DeleteQuarantined drops one of p's held messages.
func (s *Service) DeleteQuarantined(ctx context.Context, p Principal, id int64) error {
	if s.quarantine == nil {
		return ErrPanelUnconfigured
	}
	return s.quarantine.Delete(ctx, scope(p), id)
}
