package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/tenant"
)

// Quarantine is what the admin side needs of the quarantine;
// *quarantine.Service implements it.
type Quarantine interface {
	List(ctx context.Context, f quarantine.Filter) ([]quarantine.Item, error)
	Item(ctx context.Context, scope Scope, id int64) (quarantine.Item, error)
	Open(ctx context.Context, scope Scope, id int64, fn func(quarantine.Item, []byte)) (quarantine.Item, error)
	Release(ctx context.Context, scope Scope, id int64, by string) (quarantine.Item, string, error)
	Delete(ctx context.Context, scope Scope, id int64, by string) error
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

// OpenQuarantined calls fn with one of p's items and its message (for a
// preview: package quarantine/preview), within the node's bound on open
// messages (quarantine.ErrBusy past it).
func (s *Service) OpenQuarantined(ctx context.Context, p Principal, id int64, fn func(quarantine.Item, []byte)) (quarantine.Item, error) {
	if s.quarantine == nil {
		return quarantine.Item{}, ErrPanelUnconfigured
	}
	return s.quarantine.Open(ctx, scope(p), id, fn)
}

// ReleaseQuarantined delivers one of p's held messages once (a second
// release is quarantine.ErrNotHeld); with allowSender the sender also goes
// on the domain's allow list, so its next messages are not held. The
// sender goes on the list only once the message was delivered: "release
// and allow" is one decision about the message, and a release refused (the
// customer's server said no, or the name is no longer the domain that held
// it) must not leave the sender allowed, its next spam delivered unheld.
// The list change is checked before anything is delivered, so a sender no
// list can hold (a quoted local part with a space) refuses the whole
// request instead of failing after the message left. A release delivered
// whose record waits for the store returns the item and
// quarantine.ErrRecordPending.
func (s *Service) ReleaseQuarantined(ctx context.Context, p Principal, id int64, allowSender bool) (quarantine.Item, error) {
	if s.quarantine == nil {
		return quarantine.Item{}, ErrPanelUnconfigured
	}
	var allow func(*tenant.DomainRecord)
	if allowSender {
		it, err := s.quarantine.Item(ctx, scope(p), id)
		if err != nil {
			return it, err
		}
		if err := it.Releasable(s.own.now()); err != nil {
			return it, err
		}
		if allow, err = s.senderAllowance(ctx, p, it); err != nil {
			return it, err
		}
	}
	it, _, err := s.quarantine.Release(ctx, scope(p), id, p.Actor)
	pending := errors.Is(err, quarantine.ErrRecordPending)
	if err != nil && !pending {
		return it, err
	}
	s.log.Info("quarantined message released", "id", id, "actor", p.Actor, "domain", it.Domain, "record_pending", pending)
	if allow != nil {
		// Once the message is out, its caller may have gone (the release
		// outlives it): the sender is allowed all the same, as decided.
		if _, aerr := s.UpdateDomain(context.WithoutCancel(ctx), p, it.DomainID, allow); aerr != nil {
			s.log.Warn("a released message's sender was not put on the allow list", "id", id, "domain", it.Domain, "err", aerr)
			return it, errors.Join(err, fmt.Errorf("%w: %w", ErrAllowNotSaved, aerr))
		}
	}
	return it, err
}

// ErrAllowNotSaved: "release and allow" delivered the message, but its
// sender could not be put on the domain's allow list (the database did
// not answer, or the domain changed meanwhile). The release stands; only
// the list change is to be made again. Answered as the list's error
// (503, "try again later"), the caller retried a release that could only
// answer 409, and the sender was never allowed.
var ErrAllowNotSaved = errors.New("the message was released, but its sender was not put on the allow list")

// senderAllowance returns the patch putting a held message's envelope
// sender on its domain's allow list (nil when there is nothing to allow),
// having checked that the domain as stored now takes it.
func (s *Service) senderAllowance(ctx context.Context, p Principal, it quarantine.Item) (func(*tenant.DomainRecord), error) {
	if it.Sender == "" || it.DomainID == 0 {
		return nil, nil
	}
	sender := strings.ToLower(it.Sender)
	patch := func(d *tenant.DomainRecord) {
		if !slices.Contains(d.Policy.SenderAllow, sender) {
			d.Policy.SenderAllow = append(slices.Clone(d.Policy.SenderAllow), sender)
		}
	}
	d, err := s.GetDomain(ctx, p, it.DomainID)
	if err != nil {
		return nil, err
	}
	patch(&d)
	if err := d.Normalize(); err != nil {
		return nil, err
	}
	return patch, nil
}

// DeleteQuarantined drops one of p's held messages.
func (s *Service) DeleteQuarantined(ctx context.Context, p Principal, id int64) error {
	if s.quarantine == nil {
		return ErrPanelUnconfigured
	}
	if err := s.quarantine.Delete(ctx, scope(p), id, p.Actor); err != nil {
		return err
	}
	s.log.Info("quarantined message deleted", "id", id, "actor", p.Actor)
	return nil
}
