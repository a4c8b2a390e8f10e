package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/clientip"
	"github.com/mxgrid/mxgrid/internal/ratelimit"
	"github.com/mxgrid/mxgrid/spammap"
)

// MapSource is the map a node serves: *spammap.Scheduler.
type MapSource interface {
	// Current is the generation to serve; never nil.
	Current() *spammap.Map
	// Interval is how long a generation is meant to be served.
	Interval() time.Duration
	// Regenerate builds, stores and serves a new generation now.
	Regenerate(ctx context.Context) (*spammap.Map, error)
}

// MapOptions configures the map's handlers.
type MapOptions struct {
	// FrameAncestors is map.frame_ancestors: the sites that may frame /map
	// (CSP frame-ancestors), and this origin, the panel's, unless 'none'
	// is among them. Empty allows any site.
	FrameAncestors []string
	// Operator guards POST /api/v1/map/regenerate (the admin API's operator
	// authentication). Nil refuses every request, so the endpoint is never
	// open before authentication is wired.
	Operator func(http.Handler) http.Handler
	// Scoped serves /map?reseller=SLUG and /map?customer=KEY: the scope's
	// white-label map, found false when the scope does not exist. Nil
	// answers 404 to scoped requests.
	Scoped func(ctx context.Context, kind, key string) (m *spammap.Map, found bool, err error)
	// Misses limits each client address's scopes that do not exist, the
	// node's other public lookups' too (Clients tells the address, nil
	// trusting no proxy); nil gives the handlers a budget of their own.
	Misses  *ratelimit.Misses
	Clients *clientip.Resolver
	Log     *slog.Logger
}

// Size bounds for ?width= and ?height=, in CSS pixels: below 160 nothing is
// legible, above 4096 is no screen's business.
const (
	minMapSize = 160
	maxMapSize = 4096
)

// MapRoutes are the patterns MapHandlers serves.
func MapRoutes() []string {
	return []string{"GET /map", "GET /map.svg", "GET /map.json", "POST /api/v1/map/regenerate"}
}

// MountMap mounts the map's handlers on the server.
func (s *Server) MountMap(src MapSource, opts MapOptions) {
	h := MapHandlers(src, opts)
	for _, p := range MapRoutes() {
		s.Handle(p, h)
	}
}

// MapHandlers serves the public map: /map (the embeddable page), /map.svg,
// /map.json, and the operator's POST /api/v1/map/regenerate.
//
// Every node serves the stored generation's bytes, and derives size and
// theme variants from them deterministically, so a response's strong ETag
// (a hash of its body) is the same on every node.
func MapHandlers(src MapSource, opts MapOptions) http.Handler {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Misses == nil {
		opts.Misses = ratelimit.NewMisses(nil)
	}
	if opts.Clients == nil {
		opts.Clients = clientip.New(nil)
	}
	h := &mapHandler{src: src, opts: opts, ancestors: "*"}
	if anc := opts.FrameAncestors; len(anc) > 0 {
		// The panel's map page previews the reseller's map in a frame of
		// this origin; 'none' means no frame at all, and * takes it in.
		if !slices.ContainsFunc(anc, func(s string) bool {
			return s == "*" || strings.EqualFold(s, "'self'") || strings.EqualFold(s, "'none'")
		}) {
			anc = append([]string{"'self'"}, anc...)
		}
		h.ancestors = strings.Join(anc, " ")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /map", h.page)
	mux.HandleFunc("GET /map.svg", h.svg)
	mux.HandleFunc("GET /map.json", h.json)
	regen := http.Handler(http.HandlerFunc(h.regenerate))
	if opts.Operator != nil {
		regen = opts.Operator(regen)
	} else {
		regen = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusForbidden, apiError{Error: "operator authentication is not configured"})
		})
	}
	mux.Handle("POST /api/v1/map/regenerate", regen)
	return mux
}

type mapHandler struct {
	src       MapSource
	opts      MapOptions
	ancestors string
}

func (h *mapHandler) page(w http.ResponseWriter, r *http.Request) {
	q, v, err := parseView(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m, scoped, ok := h.mapFor(w, r, q)
	if !ok {
		return
	}
	body, styleSrc := m.Page(v)
	// The page loads nothing: no script, no font, no image but itself (and
	// on a white-label map the reseller's logo from this host).
	// default-src 'none' makes the browser enforce it.
	img := "data:"
	if scoped {
		img = "data: 'self'"
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src "+styleSrc+
		"; img-src "+img+"; base-uri 'none'; form-action 'none'; frame-ancestors "+h.ancestors)
	h.serve(w, r, m, "text/html; charset=utf-8", body...)
}

func (h *mapHandler) svg(w http.ResponseWriter, r *http.Request) {
	q, v, err := parseView(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m, _, ok := h.mapFor(w, r, q)
	if !ok {
		return
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors "+h.ancestors)
	// Dashboards elsewhere may fetch the image and the data.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	h.serve(w, r, m, "image/svg+xml", m.SVG(v)...)
}

func (h *mapHandler) json(w http.ResponseWriter, r *http.Request) {
	q, err := mapQuery(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m, _, ok := h.mapFor(w, r, q)
	if !ok {
		return
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	h.serve(w, r, m, "application/json", m.JSON)
}

// mapFor is the global map, or with ?reseller= or ?customer= in q (r's
// query, mapQuery) that scope's map; scoped reports which. When ok is
// false the answer has been written.
func (h *mapHandler) mapFor(w http.ResponseWriter, r *http.Request, q url.Values) (m *spammap.Map, scoped, ok bool) {
	kind, key := "", ""
	for _, k := range []string{"reseller", "customer"} {
		if q.Has(k) {
			if kind != "" {
				http.Error(w, "give reseller or customer, not both", http.StatusBadRequest)
				return nil, false, false
			}
			kind, key = k, q.Get(k)
		}
	}
	if kind == "" {
		return h.src.Current(), false, true
	}
	if h.opts.Scoped == nil {
		http.Error(w, "no such map", http.StatusNotFound)
		return nil, true, false
	}
	client, now := h.opts.Clients.Of(r), time.Now()
	if wait := h.opts.Misses.Refused(client, "map", now); wait > 0 {
		w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
		http.Error(w, "too many maps that do not exist asked from this address, try again later", http.StatusTooManyRequests)
		return nil, true, false
	}
	m, found, err := h.opts.Scoped(r.Context(), kind, key)
	switch {
	case err != nil && r.Context().Err() != nil:
		// The client left; the render goes on without it.
		return nil, true, false
	case errors.Is(err, spammap.ErrBusy):
		w.Header().Set("Retry-After", "5")
		http.Error(w, "map busy, try again shortly", http.StatusTooManyRequests)
		return nil, true, false
	case err != nil:
		h.opts.Log.Error("map: scoped map", "kind", kind, "err", err)
		http.Error(w, "map unavailable, try again later", http.StatusServiceUnavailable)
		return nil, true, false
	case !found:
		h.opts.Misses.Missed(client, now)
		http.Error(w, "no such map", http.StatusNotFound)
		return nil, true, false
	}
	return m, true, true
}

// serve answers with the body made of parts, or 304 when the client has
// it. Caches may keep it until the next generation is due.
func (h *mapHandler) serve(w http.ResponseWriter, r *http.Request, m *spammap.Map, contentType string, parts ...[]byte) {
	sum, size := sha256.New(), 0
	for _, p := range parts {
		sum.Write(p)
		size += len(p)
	}
	etag := `"` + hex.EncodeToString(sum.Sum(nil)[:16]) + `"`
	hdr := w.Header()
	hdr.Set("ETag", etag)
	hdr.Set("Cache-Control", "public, max-age="+strconv.Itoa(maxAge(m.GeneratedAt, h.src.Interval(), time.Now())))
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		for _, p := range parts {
			if _, err := w.Write(p); err != nil {
				return
			}
		}
	}
}

// maxAge is the seconds until the next generation is due (generations fall
// on multiples of the interval), at least a minute so that an overdue map
// or the placeholder is not refetched on every view, at most the interval.
func maxAge(generated time.Time, interval time.Duration, now time.Time) int {
	const floor = 60
	if generated.IsZero() || interval <= 0 {
		return floor
	}
	next := generated.Truncate(interval).Add(interval)
	secs := int(next.Sub(now) / time.Second)
	return max(floor, min(secs, int(interval/time.Second)))
}

// etagMatch implements If-None-Match's weak comparison (RFC 9110 §13.1.2).
func etagMatch(header, etag string) bool {
	for c := range strings.SplitSeq(header, ",") {
		c = strings.TrimSpace(c)
		if c == "*" || strings.TrimPrefix(c, "W/") == etag {
			return true
		}
	}
	return false
}

type viewError string

func (e viewError) Error() string { return string(e) }

// mapParams are the query parameters the map reads.
var mapParams = []string{"reseller", "customer", "width", "height", "theme"}

// mapQuery is r's query, refused when it cannot be read whole or gives one
// of mapParams twice. url.Values drops a pair it cannot read (a bad escape,
// a ';'), and "?reseller=a;b" served the global map; the handlers read the
// first of two values, so a cache or proxy keying on the last kept one
// reseller's map under another's address. Other parameters are the
// embedder's own (a cache buster, a campaign tag) and are let be.
func mapQuery(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, viewError("query: " + err.Error())
	}
	for _, k := range mapParams {
		if len(q[k]) > 1 {
			return nil, viewError(k + ": given more than once")
		}
	}
	return q, nil
}

// parseView reads r's query (mapQuery) and in it ?width=, ?height= (CSS
// pixels) and ?theme=light|dark.
func parseView(r *http.Request) (url.Values, spammap.View, error) {
	var v spammap.View
	q, err := mapQuery(r)
	if err != nil {
		return nil, v, err
	}
	for _, p := range []struct {
		key string
		dst *int
	}{{"width", &v.Width}, {"height", &v.Height}} {
		s := q.Get(p.key)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < minMapSize || n > maxMapSize {
			return nil, v, viewError(p.key + ": want a whole number of pixels from " + strconv.Itoa(minMapSize) + " to " + strconv.Itoa(maxMapSize))
		}
		*p.dst = n
	}
	switch t := spammap.Theme(q.Get("theme")); t {
	case "", spammap.Light, spammap.Dark:
		v.Theme = t
	default:
		return nil, v, viewError("theme: want light or dark")
	}
	return q, v, nil
}

type regenerated struct {
	GeneratedAt time.Time `json:"generated_at"`
	ETag        string    `json:"etag"`
	Events      int       `json:"events"`
}

func (h *mapHandler) regenerate(w http.ResponseWriter, r *http.Request) {
	m, err := h.src.Regenerate(r.Context())
	if err != nil {
		h.opts.Log.Error("map: regenerate on request failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "map generation failed"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, regenerated{GeneratedAt: m.GeneratedAt, ETag: m.ETag, Events: m.Events})
}
