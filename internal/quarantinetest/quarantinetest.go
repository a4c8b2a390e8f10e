// Package quarantinetest injects a store's failures into the quarantine's
// release, for the tests of those who answer releases (the API, the panel,
// the digest links).
package quarantinetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mxgrid/mxgrid/quarantine"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

// RecordingDown is a quarantine store whose FinishRelease, the recording
// of a release's outcome once the customer's server answered, fails as a
// database that stopped answering does, while Down is set.
type RecordingDown struct {
	quarantine.Store
	Down atomic.Bool
}

// NewRecordingDown wraps st, down from the start.
func NewRecordingDown(st quarantine.Store) *RecordingDown {
	r := &RecordingDown{Store: st}
	r.Down.Store(true)
	return r
}

func (r *RecordingDown) FinishRelease(ctx context.Context, claim quarantine.Item, delivered bool, now time.Time) error {
	if r.Down.Load() {
		return fmt.Errorf("%w: store: finish a release: injected: connection refused", tenant.ErrUnavailable)
	}
	return r.Store.FinishRelease(ctx, claim, delivered, now)
}

// DomainsGoneAfterRecording records a release's outcome, then takes the
// tenants' domains table away (until Restore): the allow-list write that
// follows a delivered "release and allow" fails, as in an outage that
// begins just then.
type DomainsGoneAfterRecording struct{ *store.Store }

func (d DomainsGoneAfterRecording) FinishRelease(ctx context.Context, claim quarantine.Item, delivered bool, now time.Time) error {
	if err := d.Store.FinishRelease(ctx, claim, delivered, now); err != nil {
		return err
	}
	_, err := d.DB.ExecContext(ctx, `ALTER TABLE domains RENAME TO domains_away`)
	return err
}

// Restore puts the domains table back.
func (d DomainsGoneAfterRecording) Restore(ctx context.Context) error {
	_, err := d.DB.ExecContext(ctx, `ALTER TABLE domains_away RENAME TO domains`)
	return err
}
