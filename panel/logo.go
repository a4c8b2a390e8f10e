package panel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mxgrid/mxgrid/admin"
)

// logoFresh is how long a node serves a logo it has read: a new logo shows
// within a minute (browsers keep one for an hour anyway).
const logoFresh = time.Minute

// maxLogosHeld bounds the bytes of the logos a node holds (64 of the
// largest); past it they are dropped and read again on demand.
const maxLogosHeld = 64 * admin.MaxLogoBytes

// logoCache holds the logos /panel/logo/{slug} served lately. The URL is
// public and each logo is up to admin.MaxLogoBytes: read per request, any
// number of requests at once each held their own copy (twice: the
// driver's and the scan's). Requests for a logo not held wait for one
// read.
type logoCache struct {
	mu     sync.Mutex
	held   map[string]heldLogo
	bytes  int
	flight singleflight.Group
}

type heldLogo struct {
	at   time.Time
	logo admin.Logo
	// etag names the logo's bytes, whoever's they are: a slug freed and
	// taken by another reseller names another logo.
	etag string
}

// get is slug's logo, read with read when not held since logoFresh.
func (c *logoCache) get(ctx context.Context, slug string, now time.Time, read func(context.Context) (admin.Logo, error)) (heldLogo, error) {
	c.mu.Lock()
	h, ok := c.held[slug]
	c.mu.Unlock()
	if ok && !now.Before(h.at) && now.Sub(h.at) < logoFresh {
		return h, nil
	}
	v, err, _ := c.flight.Do(slug, func() (any, error) {
		// The read is every waiting request's: one leaving does not fail
		// the others (the store bounds it by its timeout).
		l, err := read(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if old, ok := c.held[slug]; ok {
			c.bytes -= len(old.logo.Data)
		}
		if c.held == nil || c.bytes+len(l.Data) > maxLogosHeld {
			c.held, c.bytes = make(map[string]heldLogo), 0
		}
		sum := sha256.Sum256(l.Data)
		h := heldLogo{at: now, logo: l, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		c.held[slug] = h
		c.bytes += len(l.Data)
		return h, nil
	})
	if err != nil {
		return heldLogo{}, err
	}
	return v.(heldLogo), nil
}
