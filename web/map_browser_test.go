package web

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/spammap"
	"github.com/mxgrid/mxgrid/spammap/spammaptest"
	"github.com/prometheus/client_golang/prometheus"
)

// -mapshot rewrites docs/map.png from the synthetic corpus:
//
//	MXGRID_TEST_CHROMIUM=/usr/bin/chromium go test ./web -run TestMapScreenshotForDocs -mapshot
var mapshot = flag.Bool("mapshot", false, "write docs/map.png")

// hotspot is a source location with n events.
type hotspot struct {
	country, name, city string
	lat, lon            float64
	n                   int
}

// hotspots streams each spot's events, newest first.
type hotspots []hotspot

func (hs hotspots) RecentEvents(ctx context.Context, limit int, since time.Time, fn func(spammap.Event) error) error {
	at := time.Date(2026, 3, 13, 9, 59, 0, 0, time.UTC)
	i := 0
	for si, h := range hs {
		for j := range h.n {
			if i == limit {
				return nil
			}
			i++
			at = at.Add(-time.Second)
			e := spammap.Event{Time: at, IP: netip.AddrFrom4([4]byte{100, byte(si), byte(j >> 8), byte(j)}), Located: true,
				Country: h.country, CountryName: h.name, City: h.city, Lat: h.lat, Lon: h.lon}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// browser starts headless Chromium for the test.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	path := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.NoFirstRun,
		chromedp.WindowSize(width, height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start the browser and its tab without a deadline (a deadline on the
	// first run would kill the browser when it expires).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// mapServer serves the map through the web server as serve mounts it, and
// a page at / that embeds it as a third-party site would.
func mapServer(t *testing.T, src MapSource, embed string) *httptest.Server {
	t.Helper()
	s := New(health.New(), prometheus.NewRegistry(), slog.New(slog.DiscardHandler), DefaultLimits())
	s.MountMap(src, MapOptions{})
	s.Handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><html><head><link rel="icon" href="data:,"><title>embed</title></head>`+
			`<body style="margin:0;background:#fff">`+embed+`</body></html>`)
	}))
	srv := httptest.NewServer(s.Handler()) // binds 127.0.0.1
	t.Cleanup(srv.Close)
	return srv
}

// TestMapInBrowser embeds /map in an iframe, as the README tells people to,
// and checks what Chromium draws: land and ocean where they are, a hotspot
// where the events are, no console error, and no request to anywhere but
// the node.
func TestMapInBrowser(t *testing.T) {
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	src := hotspots{
		{"BR", "Brazil", "São Paulo", -23.55, -46.63, 3000},
		{"RU", "Russia", "Moscow", 55.76, 37.62, 40},
		{"US", "United States", "Ashburn", 39.04, -77.49, 300},
	}
	agg, err := spammap.Collect(context.Background(), src, spammap.DefaultConfig(), spammap.GlobalScope,
		time.Date(2026, 3, 13, 10, 0, 0, 0, time.UTC), world)
	if err != nil {
		t.Fatal(err)
	}
	m, err := spammap.Render(world, agg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := browser(t, 640, 480)

	var (
		mu       sync.Mutex
		requests []string
		console  []chromedp.ConsoleMessage
	)
	chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			requests = append(requests, e.Request.URL)
			mu.Unlock()
		}
	})
	cctx, stopConsole := context.WithCancel(ctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for msg, err := range chromedp.Console(cctx) {
			if err != nil {
				return
			}
			mu.Lock()
			console = append(console, msg)
			mu.Unlock()
		}
	}()

	for _, tt := range []struct {
		theme       spammap.Theme
		land, ocean color.RGBA
		shades      []color.RGBA
	}{
		// Colours of the themes' palettes. A hotspot is a translucent warm
		// circle over a shaded country: it must be warm and unlike any fill.
		{spammap.Light, rgb(0xd3, 0xda, 0xe3), rgb(0xe8, 0xef, 0xf7),
			[]color.RGBA{rgb(0xfd, 0xeb, 0xd9), rgb(0xfc, 0xd0, 0xaa), rgb(0xf9, 0xb0, 0x7a), rgb(0xf4, 0x8c, 0x4f), rgb(0xe8, 0x69, 0x2e)}},
		{spammap.Dark, rgb(0x25, 0x34, 0x4b), rgb(0x0f, 0x1b, 0x2e),
			[]color.RGBA{rgb(0x3b, 0x2f, 0x4a), rgb(0x54, 0x30, 0x4a), rgb(0x74, 0x33, 0x4a), rgb(0x98, 0x3a, 0x45), rgb(0xbe, 0x46, 0x3f)}},
	} {
		t.Run(string(tt.theme), func(t *testing.T) {
			srv := mapServer(t, &fixedMap{m: m, interval: time.Hour},
				`<iframe id="f" src="/map?theme=`+string(tt.theme)+`" width="600" height="430" style="border:0;display:block"></iframe>`)
			tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := chromedp.Do(tctx, chromedp.Navigate(srv.URL+"/")); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Run(tctx, chromedp.Poll[bool](
				`(() => { const d = document.getElementById('f').contentDocument; return !!(d && d.readyState === 'complete' && d.querySelector('figure > svg .hot circle')); })()`)); err != nil {
				t.Fatalf("map did not render in the iframe: %v", err)
			}

			// Where, in the screenshot, are these map positions?
			places := []struct {
				name     string
				lat, lon float64
			}{
				{"São Paulo hotspot", -23.55, -46.63},
				{"Chad (land, no events)", 15, 19},
				{"Pacific (ocean)", -5, -140},
			}
			var pts [][2]float64
			for _, p := range places {
				x, y := world.Project(p.lat, p.lon)
				pts = append(pts, [2]float64{x, y})
			}
			px, err := chromedp.Run(tctx, chromedp.Evaluate[[][2]float64](fmt.Sprintf(`(() => {
				const f = document.getElementById('f'), r = f.getBoundingClientRect();
				const svg = f.contentDocument.querySelector('figure > svg'), m = svg.getScreenCTM();
				return %s.map(([x, y]) => { const p = new DOMPoint(x, y).matrixTransform(m); return [p.x + r.left, p.y + r.top]; });
			})()`, jsonPoints(pts))))
			if err != nil {
				t.Fatal(err)
			}
			shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(shot))
			if err != nil {
				t.Fatal(err)
			}
			// Kept with -artifacts, to look at what was checked.
			if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "map.png"), shot, 0o644); err != nil {
				t.Fatal(err)
			}
			hot := pixel(img, px[0])
			fills := append([]color.RGBA{tt.land, tt.ocean}, tt.shades...)
			if hot.R < 150 || int(hot.R)-int(hot.B) < 100 || slices.ContainsFunc(fills, func(c color.RGBA) bool { return distance(hot, c) < 40 }) {
				t.Errorf("%s at %v: colour %v is not a hotspot's", places[0].name, px[0], hot)
			}
			if c := pixel(img, px[1]); !near(c, tt.land) {
				t.Errorf("%s at %v: colour %v, want land %v", places[1].name, px[1], c, tt.land)
			}
			if c := pixel(img, px[2]); !near(c, tt.ocean) {
				t.Errorf("%s at %v: colour %v, want ocean %v", places[2].name, px[2], c, tt.ocean)
			}
			text, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.getElementById('f').contentDocument.body.innerText`))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"Where spam comes from", "Brazil", "IP geolocation by DB-IP.com (CC BY 4.0)", "Generated 13 Mar 2026 10:00 UTC"} {
				if !strings.Contains(text, want) {
					t.Errorf("page text lacks %q", want)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, u := range requests {
				if !strings.HasPrefix(u, srv.URL+"/") && !strings.HasPrefix(u, "data:") {
					t.Errorf("request left the node: %s", u)
				}
			}
			if !slices.Contains(requests, srv.URL+"/map?theme="+string(tt.theme)) {
				t.Errorf("requests %v lack the map; is the network listener blind?", requests)
			}
			requests = nil
		})
	}
	stopConsole()
	<-consoleDone
	for _, msg := range console {
		if msg.Type == chromedp.ConsoleError || msg.IsException() || msg.Type == chromedp.ConsoleWarning {
			t.Errorf("console %s: %s", msg.Type, msg.Text)
		}
	}
}

// TestMapScreenshotForDocs renders the README's screenshot from a
// synthetic corpus replay (250,000 events over a day) when -mapshot is set.
func TestMapScreenshotForDocs(t *testing.T) {
	if !*mapshot {
		t.Skip("set -mapshot to rewrite docs/map.png")
	}
	world, err := spammap.LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 3, 13, 10, 0, 0, 0, time.UTC)
	agg, err := spammap.Collect(context.Background(), spammaptest.Corpus{N: 250_000, Seed: 1, End: end, Span: 26 * time.Hour},
		spammap.DefaultConfig(), spammap.GlobalScope, end, world)
	if err != nil {
		t.Fatal(err)
	}
	m, err := spammap.Render(world, agg)
	if err != nil {
		t.Fatal(err)
	}
	srv := mapServer(t, &fixedMap{m: m, interval: time.Hour}, "")
	ctx := browser(t, 600, 430)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(600, 430, chromedp.EmulateScale(2)),
		chromedp.Navigate(srv.URL+"/map"), chromedp.WaitVisible(chromedp.CSS("#map"))); err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(testenv.RepoRoot(t), "docs", "map.png")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", out, len(shot))
}

func rgb(r, g, b uint8) color.RGBA { return color.RGBA{r, g, b, 255} }

func pixel(img image.Image, p [2]float64) color.RGBA {
	r, g, b, _ := img.At(int(p[0]), int(p[1])).RGBA()
	return rgb(uint8(r>>8), uint8(g>>8), uint8(b>>8))
}

// near allows for anti-aliasing and colour management.
func near(a, b color.RGBA) bool {
	d := func(x, y uint8) int { return max(int(x)-int(y), int(y)-int(x)) }
	return d(a.R, b.R) <= 8 && d(a.G, b.G) <= 8 && d(a.B, b.B) <= 8
}

func distance(a, b color.RGBA) int {
	d := func(x, y uint8) int { return max(int(x)-int(y), int(y)-int(x)) }
	return d(a.R, b.R) + d(a.G, b.G) + d(a.B, b.B)
}

func jsonPoints(pts [][2]float64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "[%g,%g]", p[0], p[1])
	}
	b.WriteByte(']')
	return b.String()
}
