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
	return s.Store.RecentEvents(ctx, limit, since, func(e store.StoredEvent) error {
		return fn(toEvent(e))
	})
}

func toEvent(e store.StoredEvent) Event {
	return Event{Time: e.Time, IP: e.IP, Located: e.Located, Country: e.Country, CountryName: e.CountryName,
		City: e.City, Lat: e.Lat, Lon: e.Lon, ASN: e.ASN, ASOrg: e.ASOrg}
}
