package panel

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/admin"
	"github.com/mxgrid/mxgrid/store"
	"github.com/mxgrid/mxgrid/tenant"
)

// discardWriter answers into nothing: the test counts the handler's
// allocations, not a recorder's copy of the body.
type discardWriter struct {
	hdr  http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.hdr }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// TestLogoRequestsShareOneRead: /panel/logo/{slug} is public and a logo is
// up to 256 KiB. Requests at once and within a minute share one read of
// it; a new logo is served once that minute is over. Before, each request
// read it: ~540 KB allocated per request for a maximal logo, 20 requests
// at once ~11 MB.
func TestLogoRequestsShareOneRead(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r, pr := f.resellerR(t)
	logo := pngBytes(t)
	big := append(logo, make([]byte, admin.MaxLogoBytes-len(logo))...)
	if err := f.svc.SetLogo(ctx, pr, r.ID, big); err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	f.p.now = func() time.Time { return clock }
	mux := http.NewServeMux()
	f.p.Mount(mux.Handle)
	get := func() *discardWriter {
		w := &discardWriter{hdr: http.Header{}, code: http.StatusOK}
		mux.ServeHTTP(w, httptest.NewRequest("GET", "/panel/logo/r", nil))
		return w
	}
	const requests = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	for range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := get(); w.code != http.StatusOK || w.hdr.Get("Content-Length") != strconv.Itoa(len(big)) {
				t.Errorf("logo: %d, Content-Length %s", w.code, w.hdr.Get("Content-Length"))
			}
		}()
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	total := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d requests at once allocated %d bytes", requests, total)
	if total > 5*admin.MaxLogoBytes {
		t.Errorf("%d requests at once allocated %d bytes, want under %d: each read the logo", requests, total, 5*admin.MaxLogoBytes)
	}
	if err := f.svc.SetLogo(ctx, pr, r.ID, logo); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name  string
		after time.Duration
		want  int
	}{
		{"within the minute", 59 * time.Second, len(big)},
		{"after it", time.Minute, len(logo)},
	} {
		clock = clock.Add(step.after)
		if got := get().hdr.Get("Content-Length"); got != strconv.Itoa(step.want) {
			t.Errorf("%s: Content-Length %s, want %d", step.name, got, step.want)
		}
		clock = clock.Add(-step.after)
	}
}

// TestLogoRevalidatedAfterSlugReuse: a logo is named by its bytes and
// asked again at each use, so a slug freed and taken by another reseller
// shows the new reseller's logo, not the one a browser or a cache in front
// of the node kept. It was served public for an hour by slug alone.
func TestLogoRevalidatedAfterSlugReuse(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	clock := time.Now()
	f.p.now = func() time.Time { return clock }
	mux := http.NewServeMux()
	f.p.Mount(mux.Handle)
	get := func(etag string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/panel/logo/r", nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	first := pngBytes(t)
	r, pr := f.resellerR(t)
	if err := f.svc.SetLogo(ctx, pr, r.ID, first); err != nil {
		t.Fatal(err)
	}
	rec := get("")
	etag := rec.Header().Get("ETag")
	if rec.Code != http.StatusOK || etag == "" || rec.Header().Get("Cache-Control") != "no-cache" || !bytes.Equal(rec.Body.Bytes(), first) {
		t.Fatalf("logo: %d, ETag %q, Cache-Control %q", rec.Code, etag, rec.Header().Get("Cache-Control"))
	}
	if rec := get(etag); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("revalidated unchanged: %d with %d bytes, want 304", rec.Code, rec.Body.Len())
	}

	if err := f.svc.DeleteReseller(ctx, f.op, r.ID); err != nil {
		t.Fatal(err)
	}
	second := append(pngBytes(t), 0)
	r2, pr2 := f.resellerR(t)
	if err := f.svc.SetLogo(ctx, pr2, r2.ID, second); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(logoFresh)
	if rec := get(etag); rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), second) {
		t.Errorf("the slug's new reseller's logo, revalidated with the old one's tag: %d, %d bytes, want 200 and its %d", rec.Code, rec.Body.Len(), len(second))
	}
}

func TestNoneMatch(t *testing.T) {
	const etag = `"abc"`
	for _, tc := range []struct {
		field string
		want  bool
	}{
		{"", false},
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`"x", "abc"`, true},
		{`"x",W/"abc" `, true},
		{"*", true},
		{`"abcd"`, false},
		{`abc`, false},
		{`"x"`, false},
	} {
		if got := noneMatch(tc.field, etag); got != tc.want {
			t.Errorf("noneMatch(%q) = %v, want %v", tc.field, got, tc.want)
		}
	}
}

// countingPanelStore counts the reads of a reseller by slug and of a logo.
type countingPanelStore struct {
	admin.PanelStore
	reads atomic.Int32
}

func (c *countingPanelStore) ResellerBySlug(ctx context.Context, slug string) (tenant.Reseller, error) {
	c.reads.Add(1)
	return c.PanelStore.ResellerBySlug(ctx, slug)
}

func (c *countingPanelStore) GetLogo(ctx context.Context, resellerID int64) (admin.Logo, error) {
	c.reads.Add(1)
	return c.PanelStore.GetLogo(ctx, resellerID)
}

// TestLogoMissesLimitedPerClient: /panel/logo/{slug} is public, and a slug
// no reseller has (or one without a logo) is held by no cache: a client
// cycling through made-up slugs had a store read made per request, over
// the connections the mail path shares. Past 50 logos that do not exist
// an address is answered 429 with Retry-After and nothing is read;
// another address still gets its logo.
func TestLogoMissesLimitedPerClient(t *testing.T) {
	counting := &countingPanelStore{}
	f := newFixture(t, func(_ *store.Store, so *admin.ServiceOptions) {
		counting.PanelStore = so.Panel
		so.Panel = counting
	})
	r, pr := f.resellerR(t)
	if err := f.svc.SetLogo(context.Background(), pr, r.ID, pngBytes(t)); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	f.p.Mount(mux.Handle)
	from := func(addr, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = addr + ":40000"
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	counting.reads.Store(0)
	var last *httptest.ResponseRecorder
	for i := range 200 {
		last = from("192.0.2.1", "/panel/logo/made-up-"+strconv.Itoa(i))
	}
	if n := counting.reads.Load(); n > 60 {
		t.Errorf("200 made-up slugs from one address: %d store reads, want at most 60", n)
	}
	if last.Code != http.StatusTooManyRequests || last.Header().Get("Retry-After") == "" {
		t.Errorf("200th made-up slug: %d (Retry-After %q), want 429 with Retry-After", last.Code, last.Header().Get("Retry-After"))
	}
	if rec := from("192.0.2.2", "/panel/logo/r"); rec.Code != http.StatusOK {
		t.Errorf("a logo from another address: %d", rec.Code)
	}
}
