package spammap

import (
	"context"
	"time"

	"github.com/mxgrid/mxgrid/store"
)

// StoreEvents reads the map's events from the store's events table.
type StoreEvents struct{ Store *store.Store }

var _ EventSource = StoreEvents{}

// RecentEvents streams the store's events, keeping only what the map needs.
func (s StoreEvents) RecentEvents(ctx context.Context, limit int, since time.Time, fn func(Event) error) error {
	return s.Store.RecentSources(ctx, limit, since, func(e store.Source) error {
		return fn(Event(e))
	})
}
