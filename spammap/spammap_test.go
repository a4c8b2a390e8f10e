package spammap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

func loadWorld(t testing.TB) *World {
	t.Helper()
	w, err := LoadWorld()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// events is an EventSource over a slice, newest first as the store gives.
type events []Event

func (es events) RecentEvents(ctx context.Context, limit int, since time.Time, fn func(Event) error) error {
	for i, e := range es {
		if i == limit || (!since.IsZero() && e.Time.Before(since)) {
			return nil
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func TestWorldOutlines(t *testing.T) {
	w := loadWorld(t)
	byCode := map[string]int{}
	for _, c := range w.Countries {
		byCode[c.Code]++
		if !strings.HasPrefix(c.Path, "M") || !strings.HasSuffix(c.Path, "z") {
			t.Errorf("%s: path %.20q… is not closed rings", c.Name, c.Path)
		}
	}
	for _, code := range []string{"US", "BR", "CN", "RU", "DE", "XK", "FJ", "AU"} {
		if byCode[code] == 0 {
			t.Errorf("no outline for %s", code)
		}
	}
	if byCode["AQ"] != 0 {
		t.Error("Antarctica drawn; it is cropped")
	}
	if w.Width != 1000 || w.Height < 400 || w.Height > 470 {
		t.Errorf("viewBox %v×%v; want 1000 wide, about 2.3:1", w.Width, w.Height)
	}
	// Projection: the centre of the map is 0°,0° horizontally; west is
	// left, north is up; ±180° at the equator touch the edges.
	x0, _ := w.Project(0, 0)
	xw, _ := w.Project(0, -180)
	xe, _ := w.Project(0, 180)
	_, yn := w.Project(60, 0)
	_, ys := w.Project(-30, 0)
	if math.Abs(x0-500) > 0.01 || math.Abs(xw) > 0.01 || math.Abs(xe-1000) > 0.01 || yn >= ys {
		t.Errorf("projection: x(0)=%v x(-180)=%v x(180)=%v y(60N)=%v y(30S)=%v", x0, xw, xe, yn, ys)
	}
	// No ring may jump across the map (the antimeridian bug): in relative
	// path commands a horizontal step longer than half the map is one.
	step := regexp.MustCompile(`(-?\d*\.?\d+)`)
	for _, c := range w.Countries {
		if c.Code != "RU" && c.Code != "FJ" {
			continue
		}
		for _, seg := range strings.Split(c.Path, "l")[1:] {
			nums := step.FindAllString(strings.TrimSuffix(strings.SplitN(seg, "z", 2)[0], "z"), -1)
			for i := 0; i+1 < len(nums); i += 2 {
				var dx float64
				json.Unmarshal([]byte(strings.Replace(nums[i], "-.", "-0.", 1)), &dx)
				if math.Abs(dx) > 300 {
					t.Fatalf("%s: a segment spans %v units", c.Name, dx)
				}
			}
		}
	}
}

func TestAppendTenths(t *testing.T) {
	for _, tt := range []struct {
		in   int
		want string
	}{{0, "0"}, {5, ".5"}, {-5, "-.5"}, {120, "12"}, {123, "12.3"}, {-1234, "-123.4"}} {
		if got := string(appendTenths(nil, tt.in)); got != tt.want {
			t.Errorf("appendTenths(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

var t0 = time.Date(2026, 3, 13, 10, 0, 0, 0, time.UTC)

func ev(minAgo int, ip, country, city string, lat, lon float64) Event {
	return Event{Time: t0.Add(-time.Duration(minAgo) * time.Minute), IP: netip.MustParseAddr(ip), Located: city != "",
		Country: country, CountryName: map[string]string{"DE": "Germany", "BR": "Brazil"}[country], City: city, Lat: lat, Lon: lon, ASN: 64500}
}

func TestCollect(t *testing.T) {
	w := loadWorld(t)
	src := events{
		ev(1, "81.2.69.10", "DE", "Frankfurt am Main", 50.11, 8.68),
		ev(2, "81.2.69.200", "DE", "Frankfurt am Main", 50.13, 8.70),
		ev(3, "89.160.20.7", "BR", "São Paulo", -23.55, -46.63),
		ev(4, "2a02:ec0:1:2::1", "DE", "Frankfurt am Main", 50.11, 8.68),
		ev(5, "::ffff:175.16.199.9", "FR", "", 0, 0), // country-only answer
		ev(90, "81.2.69.11", "DE", "Berlin", 52.52, 13.40),
	}
	cfg := DefaultConfig()
	tests := []struct {
		name          string
		points        int
		window        time.Duration
		wantEvents    int
		wantLocated   int
		wantLocations []Location
		wantCountries []CountryCount
		wantNetworks  []Network
		wantFrom      time.Time
	}{
		{
			name: "all", points: 100, wantEvents: 6, wantLocated: 5,
			wantLocations: []Location{
				{Lat: 50.12, Lon: 8.69, Count: 3, Country: "DE", City: "Frankfurt am Main"},
				{Lat: -23.55, Lon: -46.63, Count: 1, Country: "BR", City: "São Paulo"},
				{Lat: 52.52, Lon: 13.4, Count: 1, Country: "DE", City: "Berlin"},
			},
			wantCountries: []CountryCount{{"DE", "Germany", 4}, {"BR", "Brazil", 1}, {"FR", "France", 1}},
			wantNetworks: []Network{
				{Prefix: "81.2.69.0/24", Count: 3, Country: "DE", ASN: 64500},
				{Prefix: "89.160.20.0/24", Count: 1, Country: "BR", ASN: 64500},
				{Prefix: "175.16.199.0/24", Count: 1, Country: "FR", ASN: 64500},
				{Prefix: "2a02:ec0:1::/48", Count: 1, Country: "DE", ASN: 64500},
			},
			wantFrom: t0.Add(-90 * time.Minute),
		},
		{
			name: "points limit keeps the newest", points: 2, wantEvents: 2, wantLocated: 2,
			wantLocations: []Location{{Lat: 50.12, Lon: 8.69, Count: 2, Country: "DE", City: "Frankfurt am Main"}},
			wantCountries: []CountryCount{{"DE", "Germany", 2}},
			wantNetworks:  []Network{{Prefix: "81.2.69.0/24", Count: 2, Country: "DE", ASN: 64500}},
			wantFrom:      t0.Add(-2 * time.Minute),
		},
		{
			name: "window drops older events", points: 100, window: time.Hour, wantEvents: 5, wantLocated: 4,
			wantLocations: []Location{
				{Lat: 50.12, Lon: 8.69, Count: 3, Country: "DE", City: "Frankfurt am Main"},
				{Lat: -23.55, Lon: -46.63, Count: 1, Country: "BR", City: "São Paulo"},
			},
			wantCountries: []CountryCount{{"DE", "Germany", 3}, {"BR", "Brazil", 1}, {"FR", "France", 1}},
			wantNetworks: []Network{
				{Prefix: "81.2.69.0/24", Count: 2, Country: "DE", ASN: 64500},
				{Prefix: "89.160.20.0/24", Count: 1, Country: "BR", ASN: 64500},
				{Prefix: "175.16.199.0/24", Count: 1, Country: "FR", ASN: 64500},
				{Prefix: "2a02:ec0:1::/48", Count: 1, Country: "DE", ASN: 64500},
			},
			wantFrom: t0.Add(-5 * time.Minute),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.Points, c.Window = tt.points, tt.window
			agg, err := Collect(context.Background(), src, c, GlobalScope, t0, w)
			if err != nil {
				t.Fatal(err)
			}
			if agg.Events != tt.wantEvents || agg.Located != tt.wantLocated {
				t.Errorf("events %d located %d; want %d %d", agg.Events, agg.Located, tt.wantEvents, tt.wantLocated)
			}
			assertJSONEqual(t, "locations", agg.Locations, tt.wantLocations)
			assertJSONEqual(t, "countries", agg.Countries, tt.wantCountries)
			assertJSONEqual(t, "networks", agg.Networks, tt.wantNetworks)
			if !agg.Window.From.Equal(tt.wantFrom) || !agg.Window.To.Equal(t0.Add(-time.Minute)) {
				t.Errorf("window %v – %v; want %v – %v", agg.Window.From, agg.Window.To, tt.wantFrom, t0.Add(-time.Minute))
			}
		})
	}
}

func assertJSONEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func TestCollectPropagatesSourceError(t *testing.T) {
	boom := errors.New("database gone")
	_, err := Collect(context.Background(), failing{boom}, DefaultConfig(), GlobalScope, t0, loadWorld(t))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v; want it to wrap %v", err, boom)
	}
}

type failing struct{ err error }

func (f failing) RecentEvents(context.Context, int, time.Time, func(Event) error) error { return f.err }

func TestRender(t *testing.T) {
	w := loadWorld(t)
	src := events{
		ev(1, "81.2.69.10", "DE", "Frankfurt <am> Main", 50.11, 8.68),
		ev(3, "89.160.20.7", "BR", "São Paulo", -23.55, -46.63),
	}
	cfg := DefaultConfig()
	cfg.Attribution = `Data © "Example" <GeoIP> & co`
	agg, err := Collect(context.Background(), src, cfg, GlobalScope, t0, w)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Render(w, agg)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Render(w, agg)
	if m.ETag != again.ETag || !bytes.Equal(m.Body, again.Body) {
		t.Fatal("rendering the same aggregate twice differs")
	}
	parts, styleSrc := m.Page(View{Theme: Dark, Width: 600, Height: 430})
	page, svg := bytes.Join(parts, nil), bytes.Join(m.SVG(View{Width: 600}), nil)
	for _, tt := range []struct {
		name, doc, want string
	}{
		{"page escapes city", string(page), "Frankfurt &lt;am&gt; Main, DE: 1"},
		{"page escapes attribution", string(page), "Data © &#34;Example&#34; &lt;GeoIP&gt; &amp; co"},
		{"page shows top country", string(page), `<span class="name" title="Germany">Germany</span>`},
		{"page shows the span", string(page), "2 events · 13 Mar 09:57–09:59 UTC"},
		{"page shows generated at", string(page), "Generated 13 Mar 2026 10:00 UTC"},
		{"page dark theme", string(page), `content="dark"`},
		{"page size", string(page), "width:600px;height:430px"},
		{"svg is standalone", string(svg), `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000 `},
		{"svg keeps aspect from width", string(svg), `width="600" height="26`},
		{"svg carries attribution", string(svg), `<text class="attr"`},
		{"svg shades countries", string(svg), `class="s5"`},
	} {
		if !strings.Contains(tt.doc, tt.want) {
			t.Errorf("%s: %q not found", tt.name, tt.want)
		}
	}
	if !strings.HasPrefix(styleSrc, "'sha256-") {
		t.Errorf("style source %q", styleSrc)
	}
	for _, doc := range [][]byte{page, svg, m.JSON} {
		for _, ip := range []string{"81.2.69.10", "89.160.20.7"} {
			if bytes.Contains(doc, []byte(ip)) {
				t.Errorf("output shows raw address %s", ip)
			}
		}
		for _, external := range []string{"http://", "https://", "//fonts", "<script", "url(http"} {
			if bytes.Contains(bytes.ReplaceAll(doc, []byte("http://www.w3.org/2000/svg"), nil), []byte(external)) {
				t.Errorf("output references %q", external)
			}
		}
	}
}

func TestRenderEmpty(t *testing.T) {
	w := loadWorld(t)
	agg, err := Collect(context.Background(), events{}, DefaultConfig(), GlobalScope, t0, w)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Render(w, agg)
	if err != nil {
		t.Fatal(err)
	}
	parts, _ := m.Page(View{})
	page := bytes.Join(parts, nil)
	for _, want := range []string{"No spam sources recorded yet", "No events yet", "No countries to rank yet", "<path d=\"M"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("empty page lacks %q", want)
		}
	}
	var js map[string]any
	if err := json.Unmarshal(m.JSON, &js); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"locations", "countries", "networks"} {
		if l, ok := js[k].([]any); !ok || len(l) != 0 {
			t.Errorf("%s = %v; want an empty list, not null", k, js[k])
		}
	}
}

func TestScales(t *testing.T) {
	for _, tt := range []struct{ count, max, want int }{
		{0, 100, 0}, {1, 1, 5}, {1, 1000, 1}, {1000, 1000, 5}, {31, 1000, 3},
	} {
		if got := shade(tt.count, tt.max); got != tt.want {
			t.Errorf("shade(%d, %d) = %d, want %d", tt.count, tt.max, got, tt.want)
		}
	}
	if radius(1) >= radius(10) || radius(10) >= radius(1000) || radius(1e9) > 14 {
		t.Error("radius is not increasing and bounded")
	}
	for _, tt := range []struct {
		n          int
		grp, cmpct string
	}{{7, "7", "7"}, {1234, "1,234", "1.2k"}, {250000, "250,000", "250k"}, {5000000, "5,000,000", "5M"}} {
		if g, c := grouped(tt.n), compact(tt.n); g != tt.grp || c != tt.cmpct {
			t.Errorf("%d: grouped %q compact %q; want %q %q", tt.n, g, c, tt.grp, tt.cmpct)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	with := func(f func(*Config)) Config { c := DefaultConfig(); f(&c); return c }
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"default", ok, ""},
		{"window", with(func(c *Config) { c.Window = 24 * time.Hour }), ""},
		{"frame ancestors", with(func(c *Config) {
			c.FrameAncestors = []string{"'self'", "https://example.com", "https://*.example.org", "https:"}
		}), ""},
		{"zero points", with(func(c *Config) { c.Points = 0 }), "points:"},
		{"negative window", with(func(c *Config) { c.Window = -time.Second }), "window:"},
		{"short interval", with(func(c *Config) { c.Interval = time.Second }), "interval:"},
		{"header injection", with(func(c *Config) { c.FrameAncestors = []string{"https://a.example; script-src *"} }), "frame_ancestors[0]:"},
		{"empty ancestor", with(func(c *Config) { c.FrameAncestors = []string{""} }), "frame_ancestors[0]:"},
		{"no attribution", with(func(c *Config) { c.Attribution = " " }), "attribution:"},
		// XML 1.0 has no escape for most of them: /map.svg was not
		// well-formed, and browsers drew an error instead of the map.
		{"control character in attribution", with(func(c *Config) { c.Attribution = "DB-IP \x01" }), "attribution:"},
		{"line break in attribution", with(func(c *Config) { c.Attribution = "DB-IP\nCC BY 4.0" }), "attribution:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.HasPrefix(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v; want error starting %q", err, tt.wantErr)
			}
		})
	}
}
