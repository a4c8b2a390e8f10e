package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/spammap/spammaptest"
)

var dottedQuad = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+(/\d+)?`)

// fixedMap serves one generation, like a scheduler between two polls.
type fixedMap struct {
	m        *spammap.Map
	interval time.Duration
	regen    atomic.Int32
	err      error
}

func (f *fixedMap) Current() *spammap.Map   { return f.m }
func (f *fixedMap) Interval() time.Duration { return f.interval }
func (f *fixedMap) Regenerate(context.Context) (*spammap.Map, error) {
	f.regen.Add(1)
	return f.m, f.err
}

// renderMap renders a generation from the synthetic corpus ending at end.
func renderMap(t testing.TB, world *spammap.World, n int, end time.Time) *spammap.Map {
	t.Helper()
	cfg := spammap.DefaultConfig()
	agg, err := spammap.Collect(context.Background(), spammaptest.Corpus{N: n, Seed: 3, End: end, Span: 6 * time.Hour},
		cfg, spammap.GlobalScope, end, world)
	if err != nil {
		t.Fatal(err)
	}
	m, err := spammap.Render(world, agg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestMapHandlers(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().UTC().Truncate(time.Hour)
	src := &fixedMap{m: renderMap(t, world, 5000, end), interval: time.Hour}
	h := MapHandlers(src, MapOptions{})

	tests := []struct {
		target      string
		status      int
		contentType string
		contains    []string
		csp         string
	}{
		{"/map", 200, "text/html; charset=utf-8", []string{"<!doctype html>", "Where spam comes from", "IP geolocation by DB-IP.com (CC BY 4.0)", "5,000 events"},
			"default-src 'none'; style-src 'sha256-"},
		{"/map?width=600&height=430&theme=dark", 200, "text/html; charset=utf-8", []string{`content="dark"`, "width:600px;height:430px"}, "frame-ancestors *"},
		{"/map.svg?width=800", 200, "image/svg+xml", []string{`<svg xmlns="http://www.w3.org/2000/svg"`, `width="800"`, "<circle"}, "default-src 'none'"},
		{"/map.json", 200, "application/json", []string{`"locations":[{"lat":`, `"networks":[{"prefix":"`, `"scope":"global"`}, "frame-ancestors 'none'"},
		{"/map?width=99", 400, "text/plain; charset=utf-8", []string{"width:"}, ""},
		{"/map.svg?height=abc", 400, "text/plain; charset=utf-8", []string{"height:"}, ""},
		{"/map?theme=pink", 400, "text/plain; charset=utf-8", []string{"theme:"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			res := get(t, h, "GET", tt.target, nil)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.status || res.Header.Get("Content-Type") != tt.contentType {
				t.Fatalf("status %d %q; want %d %q: %s", res.StatusCode, res.Header.Get("Content-Type"), tt.status, tt.contentType, body)
			}
			for _, want := range tt.contains {
				if !strings.Contains(string(body), want) {
					t.Errorf("body lacks %q", want)
				}
			}
			if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, tt.csp) {
				t.Errorf("CSP %q lacks %q", csp, tt.csp)
			}
			if tt.status != 200 {
				return
			}
			if res.Header.Get("ETag") == "" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v", res.Header)
			}
			// The next generation is due on the hour: caches keep it until then.
			cc := res.Header.Get("Cache-Control")
			if !strings.HasPrefix(cc, "public, max-age=") {
				t.Errorf("Cache-Control %q", cc)
			}
			// No address may show: every dotted quad is a /24 network.
			for _, m := range dottedQuad.FindAllStringSubmatch(string(body), -1) {
				if m[1] != "/24" {
					t.Errorf("body shows a raw address: %q", m[0])
				}
			}
		})
	}
}

// TestMapSameBytesAcrossNodes: two nodes that load the same stored
// generation answer every variant with the same body and ETag, and a
// client's cached copy revalidates against either.
func TestMapSameBytesAcrossNodes(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	leader := renderMap(t, world, 2000, time.Date(2026, 3, 13, 10, 0, 0, 0, time.UTC))
	// What a follower gets back from the store.
	follower := spammap.FromRecord(leader.Record(), world)
	a := MapHandlers(&fixedMap{m: leader, interval: time.Hour}, MapOptions{})
	b := MapHandlers(&fixedMap{m: follower, interval: time.Hour}, MapOptions{})
	for _, target := range []string{"/map", "/map?theme=dark&width=600&height=430", "/map.svg", "/map.svg?width=300", "/map.json"} {
		ra, rb := get(t, a, "GET", target, nil), get(t, b, "GET", target, nil)
		ba, _ := io.ReadAll(ra.Body)
		bb, _ := io.ReadAll(rb.Body)
		if string(ba) != string(bb) || ra.Header.Get("ETag") != rb.Header.Get("ETag") {
			t.Fatalf("%s: nodes differ (ETag %s vs %s)", target, ra.Header.Get("ETag"), rb.Header.Get("ETag"))
		}
		for _, inm := range []string{ra.Header.Get("ETag"), `"x", W/` + ra.Header.Get("ETag"), "*"} {
			res := get(t, b, "GET", target, map[string]string{"If-None-Match": inm})
			if res.StatusCode != http.StatusNotModified || res.Header.Get("ETag") == "" {
				t.Errorf("%s If-None-Match %s: status %d", target, inm, res.StatusCode)
			}
		}
		if res := get(t, b, "GET", target, map[string]string{"If-None-Match": `"stale"`}); res.StatusCode != 200 {
			t.Errorf("%s: stale ETag got %d", target, res.StatusCode)
		}
	}
	if get(t, a, "GET", "/map", nil).Header.Get("ETag") == get(t, a, "GET", "/map?theme=dark", nil).Header.Get("ETag") {
		t.Error("light and dark share an ETag")
	}
}

func TestMapFrameAncestors(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	src := &fixedMap{m: renderMap(t, world, 10, time.Now()), interval: time.Hour}
	h := MapHandlers(src, MapOptions{FrameAncestors: []string{"'self'", "https://status.example.com"}})
	csp := get(t, h, "GET", "/map", nil).Header.Get("Content-Security-Policy")
	if !strings.HasSuffix(csp, "; frame-ancestors 'self' https://status.example.com") {
		t.Errorf("CSP %q", csp)
	}
	if get(t, h, "GET", "/map", nil).Header.Get("X-Frame-Options") != "" {
		t.Error("X-Frame-Options would override frame-ancestors in old browsers")
	}
	// The panel's map page frames the reseller's map from this origin as
	// its preview: a list without 'self' left it a browser error.
	h = MapHandlers(src, MapOptions{FrameAncestors: []string{"https://www.example.com"}})
	csp = get(t, h, "GET", "/map", nil).Header.Get("Content-Security-Policy")
	if !strings.HasSuffix(csp, "; frame-ancestors 'self' https://www.example.com") {
		t.Errorf("CSP %q: the panel's preview may not frame the map", csp)
	}
}

func TestMapRegenerate(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	m := renderMap(t, world, 10, time.Date(2026, 3, 13, 10, 0, 0, 0, time.UTC))
	allow := func(next http.Handler) http.Handler { return next }
	deny := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusUnauthorized) })
	}
	tests := []struct {
		name      string
		operator  func(http.Handler) http.Handler
		err       error
		status    int
		wantCalls int32
	}{
		{"no auth configured refuses", nil, nil, http.StatusForbidden, 0},
		{"operator denies", deny, nil, http.StatusUnauthorized, 0},
		{"operator allows", allow, nil, http.StatusOK, 1},
		{"generation fails", allow, errors.New("db down"), http.StatusInternalServerError, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fixedMap{m: m, interval: time.Hour, err: tt.err}
			h := MapHandlers(src, MapOptions{Operator: tt.operator})
			res := get(t, h, "POST", "/api/v1/map/regenerate", nil)
			if res.StatusCode != tt.status || src.regen.Load() != tt.wantCalls {
				t.Fatalf("status %d, %d generations; want %d, %d", res.StatusCode, src.regen.Load(), tt.status, tt.wantCalls)
			}
			// An API route answers JSON, its errors too (but for the
			// test's own denying guard).
			if ct := res.Header.Get("Content-Type"); tt.status != http.StatusUnauthorized && ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if tt.status == http.StatusOK {
				var got regenerated
				if err := json.NewDecoder(res.Body).Decode(&got); err != nil || got.ETag != m.ETag || got.Events != 10 {
					t.Errorf("answer %+v, %v", got, err)
				}
			}
		})
	}
	if res := get(t, MapHandlers(&fixedMap{m: m}, MapOptions{Operator: allow}), "GET", "/api/v1/map/regenerate", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET regenerate: %d", res.StatusCode)
	}
}

func TestMaxAge(t *testing.T) {
	gen := time.Date(2026, 3, 13, 10, 0, 5, 0, time.UTC)
	for _, tt := range []struct {
		name      string
		generated time.Time
		now       time.Time
		want      int
	}{
		{"just generated: until the next hour", gen, gen, 3595},
		{"half way", gen, gen.Add(30 * time.Minute), 1795},
		{"overdue: a minute", gen, gen.Add(2 * time.Hour), 60},
		{"no generation yet: a minute", time.Time{}, gen, 60},
	} {
		if got := maxAge(tt.generated, time.Hour, tt.now); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestMapScopedErrors: a node rendering as many white-label maps as it may
// answers a scope it has not rendered yet 429 with Retry-After, as the
// other node-wide bounds do, not 503 as for a failure.
func TestMapScopedErrors(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	src := &fixedMap{m: renderMap(t, world, 10, time.Now()), interval: time.Hour}
	for _, c := range []struct {
		name       string
		found      bool
		err        error
		code       int
		retryAfter string
	}{
		{"busy", false, fmt.Errorf("render: %w", spammap.ErrBusy), http.StatusTooManyRequests, "5"},
		{"failed", false, errors.New("store down"), http.StatusServiceUnavailable, ""},
		{"unknown", false, nil, http.StatusNotFound, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := MapHandlers(src, MapOptions{Scoped: func(context.Context, string, string) (*spammap.Map, bool, error) {
				return nil, c.found, c.err
			}})
			for _, path := range []string{"/map?customer=k", "/map.svg?reseller=r", "/map.json?customer=k"} {
				res := get(t, h, "GET", path, nil)
				if res.StatusCode != c.code || res.Header.Get("Retry-After") != c.retryAfter {
					t.Errorf("%s: %d Retry-After %q, want %d %q", path, res.StatusCode, res.Header.Get("Retry-After"), c.code, c.retryAfter)
				}
			}
		})
	}
}

// TestMapQueryReadWhole: a map query that cannot be read whole, or gives a
// parameter the map reads twice, is refused. url.Values dropped the pair
// it could not read ("?reseller=a;b" served the global map) and the
// handlers read the first of two, so a cache or proxy keying on the last
// value ("?reseller=a&reseller=b") kept one reseller's map under the
// other's address.
func TestMapQueryReadWhole(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	m := renderMap(t, world, 10, time.Now())
	h := MapHandlers(&fixedMap{m: m, interval: time.Hour}, MapOptions{Scoped: func(context.Context, string, string) (*spammap.Map, bool, error) {
		return m, true, nil
	}})
	for _, target := range []string{
		"/map?reseller=a&reseller=b",
		"/map.svg?customer=k&customer=l",
		"/map.json?reseller=a&reseller=b",
		"/map.json?reseller=a;b",
		"/map?reseller=%zz",
		"/map.svg?width=600&width=4000",
		"/map?theme=dark&theme=light",
	} {
		if res := get(t, h, "GET", target, nil); res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", target, res.StatusCode)
		}
	}
	// Parameters the map does not read are an embedder's own (a cache
	// buster, a campaign tag): served as before.
	for _, target := range []string{"/map?reseller=a&utm_source=x&utm_source=y", "/map.json?v=1"} {
		if res := get(t, h, "GET", target, nil); res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d, want 200", target, res.StatusCode)
		}
	}
}

// discardWriter is a ResponseWriter that keeps nothing of the body.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// TestMapViewsShareTheRenderedBytes: a page or image of any size or theme
// is written from the generation's rendered bytes, not a copy of them per
// request. Each answer is held until its client has read it (up to the
// 90 s write timeout), so 1,024 slow readers of /map held a page each,
// 150 KB and up, whatever the map: 150 MB for nobody.
func TestMapViewsShareTheRenderedBytes(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	m := renderMap(t, world, 5000, time.Now().UTC().Truncate(time.Hour))
	h := MapHandlers(&fixedMap{m: m, interval: time.Hour}, MapOptions{})
	for _, target := range []string{"/map?width=600&theme=dark", "/map.svg?width=600"} {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		var before, after runtime.MemStats
		const n = 20
		runtime.ReadMemStats(&before)
		for range n {
			h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
		}
		runtime.ReadMemStats(&after)
		if per, drawing := (after.TotalAlloc-before.TotalAlloc)/n, uint64(len(m.Drawing)); per > drawing/4 {
			t.Errorf("%s: %d bytes allocated per request, the drawing alone is %d", target, per, drawing)
		}
	}
}

// TestMapScopeMissesLimitedPerClient: every /map?reseller=SLUG or
// ?customer=KEY is a store read over the connections the mail path shares,
// and a client cycling through made-up scopes had one made per request,
// as many a second as it could send. Past 50 scopes that do not exist an
// address is answered 429 with Retry-After and nothing is looked up; the
// global map is still served to it, and another address's scope is
// looked up.
func TestMapScopeMissesLimitedPerClient(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	m := renderMap(t, world, 10, time.Now())
	var lookups atomic.Int32
	h := MapHandlers(&fixedMap{m: m, interval: time.Hour}, MapOptions{Scoped: func(_ context.Context, _, key string) (*spammap.Map, bool, error) {
		lookups.Add(1)
		return m, key == "alpha", nil
	}})
	from := func(addr, target string) *http.Response {
		req := httptest.NewRequest("GET", target, nil)
		req.RemoteAddr = addr + ":40000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	var last *http.Response
	for i := range 200 {
		kind := []string{"reseller", "customer"}[i%2]
		last = from("192.0.2.1", fmt.Sprintf("/map.svg?%s=made-up-%d", kind, i))
	}
	if n := lookups.Load(); n > 60 {
		t.Errorf("200 made-up scopes from one address: %d lookups, want at most 60", n)
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Errorf("200th made-up scope: %d (Retry-After %q), want 429 with Retry-After", last.StatusCode, last.Header.Get("Retry-After"))
	}
	if res := from("192.0.2.1", "/map.svg"); res.StatusCode != http.StatusOK {
		t.Errorf("the global map to the limited address: %d", res.StatusCode)
	}
	before := lookups.Load()
	if res := from("192.0.2.2", "/map.svg?reseller=alpha"); res.StatusCode != http.StatusOK || lookups.Load() != before+1 {
		t.Errorf("another address's scope: %d, %d lookups", res.StatusCode, lookups.Load()-before)
	}
}
