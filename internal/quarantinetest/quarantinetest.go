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
