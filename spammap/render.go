package spammap

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Map is one generation, rendered. The leader renders it once and stores
// it; every node serves these bytes, and derives the size and theme variants
// from them with pure functions, so the same query gives the same bytes (and
// ETag) on every node.
type Map struct {
	Scope       string
	GeneratedAt time.Time
	// ETag identifies the generation: a hash of the three artefacts.
	ETag string
	// Events is how many events the map aggregates.
	Events int
	// JSON is /map.json exactly.
	JSON []byte
	// Drawing is the map's SVG content without its <svg> element, in
	// classes that the theme's stylesheet colours.
	Drawing []byte
	// Body is the page's content (including the SVG) without the document
	// head, which carries the theme and size.
	Body []byte
	// view is the drawing's viewBox: the World's size.
	viewW, viewH float64
	// brand is the white label the page's stylesheet applies; nil on the
	// global map, whose page is then exactly what it was before brands.
	brand *Brand
}

// Theme is the colour scheme of a rendering.
type Theme string

// Themes.
const (
	Light Theme = "light"
	Dark  Theme = "dark"
)

// View is a variant of the map: an output size in CSS pixels (0: the
// default) and a theme ("" is Light).
type View struct {
	Width, Height int
	Theme         Theme
}

type palette struct {
	scheme                               string
	bg, fg, muted, line                  string
	ocean, land, border                  string
	shades                               [5]string
	hot, hotStroke, legendCircle, accent string
	hotOpacity, legendTitle              string
	emptyText                            string
}

var palettes = map[Theme]palette{
	Light: {
		scheme: "light",
		bg:     "#ffffff", fg: "#0f172a", muted: "#64748b", line: "#e2e8f0",
		ocean: "#e8eff7", land: "#d3dae3", border: "#ffffff",
		shades: [5]string{"#fdebd9", "#fcd0aa", "#f9b07a", "#f48c4f", "#e8692e"},
		hot:    "#c81e1e", hotStroke: "#6b0f0f", legendCircle: "#c81e1e", accent: "#e8692e",
		hotOpacity: ".72", emptyText: "#475569", legendTitle: "#475569",
	},
	Dark: {
		scheme: "dark",
		bg:     "#0b1220", fg: "#e5e9f0", muted: "#8b98ad", line: "#1e293b",
		ocean: "#0f1b2e", land: "#25344b", border: "#0b1220",
		shades: [5]string{"#3b2f4a", "#54304a", "#74334a", "#983a45", "#be463f"},
		hot:    "#ffb347", hotStroke: "#ffe7c2", legendCircle: "#ffb347", accent: "#be463f",
		hotOpacity: ".8", emptyText: "#cbd5e1", legendTitle: "#aab6c8",
	},
}

// Render draws an aggregate over the world.
func Render(w *World, agg *Aggregate) (*Map, error) {
	js, err := json.Marshal(agg)
	if err != nil {
		return nil, fmt.Errorf("spammap: encode map json: %w", err)
	}
	svg := renderSVG(w, agg)
	body, err := renderBody(w, agg, svg)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	for _, part := range [][]byte{js, svg, body} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return &Map{
		Scope:       agg.Scope,
		GeneratedAt: agg.GeneratedAt,
		ETag:        hex.EncodeToString(h.Sum(nil)[:16]),
		Events:      agg.Events,
		JSON:        js,
		Drawing:     svg,
		Body:        body,
		viewW:       w.Width,
		viewH:       w.Height,
		brand:       agg.Brand,
	}, nil
}

var accentRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// brandAccent is the brand's colour if it is one: it is written into CSS,
// where anything but a colour could end the rule.
func brandAccent(b *Brand) string {
	if b == nil || !accentRE.MatchString(b.Accent) {
		return ""
	}
	return b.Accent
}

// maxCircles bounds the drawing (and its bytes) to the busiest locations;
// the rest are single events at this scale and stay in /map.json.
const maxCircles = 3000

// radius is the circle for a location's count, in viewBox units: log10, so a
// city with a thousand times the spam is three steps bigger, not a blot that
// hides a continent; absolute, so maps from different hours compare.
func radius(count int) float64 {
	return min(1.6+2.2*math.Log10(float64(count)), 14)
}

// shade is the country's fill level 1..5, on a log scale relative to the
// country with the most events.
func shade(count, maxCount int) int {
	if count <= 0 {
		return 0
	}
	if maxCount <= 1 {
		return 5
	}
	return 1 + int(4.999*math.Log(float64(count))/math.Log(float64(maxCount)))
}

func renderSVG(w *World, agg *Aggregate) []byte {
	var b bytes.Buffer
	b.Grow(64 << 10)
	// The clip cuts the antimeridian copies of Chukotka and Fiji at the
	// globe's edge (see unwrap).
	fmt.Fprintf(&b, `<clipPath id="globe"><path d="%s"/></clipPath><path class="sphere" d="%s"/>`, w.Sphere, w.Sphere)

	counts := make(map[string]int, len(agg.Countries))
	maxCountry := 0
	for _, c := range agg.Countries {
		counts[c.Code] = c.Count
		maxCountry = max(maxCountry, c.Count)
	}
	b.WriteString(`<g class="land" clip-path="url(#globe)">`)
	for _, c := range w.Countries {
		n := counts[c.Code]
		if s := shade(n, maxCountry); s > 0 {
			fmt.Fprintf(&b, `<path class="s%d" d="%s"><title>%s: %s events</title></path>`, s, c.Path, html.EscapeString(c.Name), grouped(n))
		} else {
			fmt.Fprintf(&b, `<path d="%s"><title>%s</title></path>`, c.Path, html.EscapeString(c.Name))
		}
	}
	b.WriteString(`</g>`)

	// Big circles first, so the small ones stay visible on top of them.
	b.WriteString(`<g class="hot">`)
	for _, l := range agg.Locations[:min(len(agg.Locations), maxCircles)] {
		x, y := w.Project(l.Lat, l.Lon)
		label := l.Country
		if l.City != "" {
			label = l.City + ", " + l.Country
		}
		fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="%s"><title>%s: %s</title></circle>`,
			fmtFloat(x), fmtFloat(y), fmtFloat(radius(l.Count)), html.EscapeString(label), grouped(l.Count))
	}
	b.WriteString(`</g>`)

	if agg.Events == 0 {
		cx, cy := w.Width/2, w.Height/2
		fmt.Fprintf(&b, `<g class="empty"><text x="%s" y="%s" class="big">No spam sources recorded yet</text>`+
			`<text x="%s" y="%s">The map fills in as the cluster refuses spam and viruses.</text></g>`,
			fmtFloat(cx), fmtFloat(cy-6), fmtFloat(cx), fmtFloat(cy+22))
	} else {
		writeLegend(&b, w, agg, maxCountry)
	}
	fmt.Fprintf(&b, `<text class="attr" x="%s" y="%s">%s</text>`,
		fmtFloat(w.Width-12), fmtFloat(w.Height-10), html.EscapeString(agg.Attribution))
	return b.Bytes()
}

// writeLegend puts the scales over the southern Pacific, where there is
// nothing else to draw, at the same scale as the map's circles.
func writeLegend(b *bytes.Buffer, w *World, agg *Aggregate, maxCountry int) {
	maxLoc := 0
	for _, l := range agg.Locations {
		maxLoc = max(maxLoc, l.Count)
	}
	x0, y0 := 66.0, w.Height-104
	b.WriteString(`<g class="legend">`)
	fmt.Fprintf(b, `<text class="title" x="%s" y="%s">Spam per location</text>`, fmtFloat(x0), fmtFloat(y0))
	x, base := x0, y0+28
	for n := 1; ; n *= 10 {
		r := radius(n)
		label := compact(n)
		fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="%s"/><text x="%s" y="%s">%s</text>`,
			fmtFloat(x+r), fmtFloat(base-5), fmtFloat(r), fmtFloat(x+2*r+4), fmtFloat(base), label)
		x += 2*r + 14 + 9*float64(len(label))
		if n*10 > maxLoc || n >= 1_000_000 {
			break
		}
	}
	y := base + 28
	fmt.Fprintf(b, `<text class="title" x="%s" y="%s">Spam per country</text>`, fmtFloat(x0), fmtFloat(y))
	y += 24
	for i := range 5 {
		fmt.Fprintf(b, `<rect class="s%d" x="%s" y="%s" width="20" height="11"/>`, i+1, fmtFloat(x0+float64(i)*21), fmtFloat(y-10))
	}
	fmt.Fprintf(b, `<text x="%s" y="%s">1 – %s</text>`, fmtFloat(x0+112), fmtFloat(y), compact(maxCountry))
	b.WriteString(`</g>`)
}

var bodyTemplate = template.Must(template.New("body").Parse(
	`<main id="map">` +
		`{{with .Brand}}<div class="brand">{{if .Logo}}<img src="{{.Logo}}" alt="" height="22">{{end}}<span>{{.Name}}</span></div>{{end}}` +
		`<header><h1>Where spam comes from</h1><p>{{.Summary}}</p></header>` +
		`<figure><svg viewBox="0 0 {{.W}} {{.H}}" preserveAspectRatio="xMidYMid meet" role="img" aria-label="World map of spam and virus sources">{{.SVG}}</svg></figure>` +
		`<section class="below">` +
		`{{if .Top}}<ol class="top" aria-label="Top countries">{{range .Top}}<li><span class="rank">{{.Rank}}</span><span class="name" title="{{.Name}}">{{.Name}}</span>` +
		`<svg class="bar" viewBox="0 0 100 6" preserveAspectRatio="none" aria-hidden="true"><rect class="track" width="100" height="6" rx="3"/><rect width="{{.Bar}}" height="6" rx="3"/></svg>` +
		`<span class="n">{{.Share}}</span></li>{{end}}</ol>` +
		`{{else}}<p class="none">No countries to rank yet.</p>{{end}}` +
		`</section>` +
		`<footer><span>{{.Generated}}</span><span>{{.Attribution}}</span></footer>` +
		`</main>`))

type topRow struct {
	Rank  int
	Name  string
	Bar   string
	Share string
}

func renderBody(w *World, agg *Aggregate, svg []byte) ([]byte, error) {
	var top []topRow
	for i, c := range agg.Countries[:min(10, len(agg.Countries))] {
		top = append(top, topRow{
			Rank:  i + 1,
			Name:  c.Name,
			Bar:   fmtFloat(math.Max(2, 100*float64(c.Count)/float64(agg.Countries[0].Count))),
			Share: percent(c.Count, agg.Events),
		})
	}
	data := struct {
		Summary, Generated, Attribution string
		W, H                            string
		SVG                             template.HTML
		Top                             []topRow
		Brand                           *Brand
	}{
		Brand:       agg.Brand,
		Summary:     summary(agg),
		Generated:   generated(agg.GeneratedAt),
		Attribution: agg.Attribution,
		W:           fmtFloat(w.Width),
		H:           fmtFloat(w.Height),
		// The fragment is ours and escapes every text it holds.
		SVG: template.HTML(svg),
		Top: top,
	}
	var b bytes.Buffer
	if err := bodyTemplate.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("spammap: render page: %w", err)
	}
	return b.Bytes(), nil
}

func generated(at time.Time) string {
	if at.IsZero() {
		return "Waiting for the first map"
	}
	return "Generated " + at.UTC().Format("2 Jan 2006 15:04 UTC")
}

// summary is the header's one line: how many events over what time.
func summary(agg *Aggregate) string {
	if agg.Events == 0 {
		return "No events yet"
	}
	from, to := agg.Window.From.UTC(), agg.Window.To.UTC()
	noun := "events"
	if agg.Events == 1 {
		noun = "event"
	}
	span := from.Format("2 Jan 15:04") + " – " + to.Format("2 Jan 15:04") + " UTC"
	if from.YearDay() == to.YearDay() && from.Year() == to.Year() {
		span = from.Format("2 Jan 15:04") + "–" + to.Format("15:04") + " UTC"
	}
	return grouped(agg.Events) + " " + noun + " · " + span
}

// A view's page and image are returned in parts, to be written one after
// the other: the generation's rendered bytes are a part of every view's
// answer, never copied into one. An answer is held until its client has
// read it, and slow readers of a copy each held one.

// SVG is the standalone image for a view.
func (m *Map) SVG(v View) [][]byte {
	width, height := v.size(m.viewW, m.viewH)
	head := fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %s %s" width="%d" height="%d" role="img" aria-label="World map of spam and virus sources"><style>%s</style>`,
		fmtFloat(m.viewW), fmtFloat(m.viewH), width, height, mapCSS(v.palette(), true))
	return [][]byte{[]byte(head), m.Drawing, []byte(`</svg>`)}
}

// Page is the embeddable HTML document for a view, and the CSP source that
// allows its one stylesheet (the page has no script and loads nothing).
func (m *Map) Page(v View) (page [][]byte, styleSrc string) {
	css := pageCSS(v, m.brand)
	sum := sha256.Sum256([]byte(css))
	p := v.palette()
	head := `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
		`<meta name="viewport" content="width=device-width,initial-scale=1">` +
		`<meta name="color-scheme" content="` + p.scheme + `">` +
		`<link rel="icon" href="data:,"><title>Where spam comes from</title><style>` +
		css + `</style></head><body>`
	return [][]byte{[]byte(head), m.Body, []byte(`</body></html>`)}, "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

func (v View) palette() palette {
	if p, ok := palettes[v.Theme]; ok {
		return p
	}
	return palettes[Light]
}

// size fills in a missing dimension from the map's aspect ratio.
func (v View) size(viewW, viewH float64) (int, int) {
	switch {
	case v.Width > 0 && v.Height > 0:
		return v.Width, v.Height
	case v.Width > 0:
		return v.Width, int(math.Round(float64(v.Width) * viewH / viewW))
	case v.Height > 0:
		return int(math.Round(float64(v.Height) * viewW / viewH)), v.Height
	}
	return int(viewW), int(math.Round(viewH))
}

const fontStack = `system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif`

// mapCSS colours the drawing. standalone adds the attribution, which the
// page shows in its footer instead.
func mapCSS(p palette, standalone bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `.sphere{fill:%s;stroke:%s;stroke-width:.8}`, p.ocean, p.line)
	fmt.Fprintf(&b, `.land path{fill:%s;stroke:%s;stroke-width:.5;stroke-linejoin:round}`, p.land, p.border)
	for i, s := range p.shades {
		fmt.Fprintf(&b, `.land .s%d,.legend .s%d{fill:%s}`, i+1, i+1, s)
	}
	fmt.Fprintf(&b, `.hot circle{fill:%s;fill-opacity:%s;stroke:%s;stroke-width:.8;stroke-opacity:.9}`, p.hot, p.hotOpacity, p.hotStroke)
	fmt.Fprintf(&b, `text{font-family:%s;fill:%s}`, fontStack, p.muted)
	fmt.Fprintf(&b, `.legend text{font-size:16px}.legend .title{font-size:17px;font-weight:600;fill:%s}.legend circle{fill:%s;fill-opacity:%s;stroke:%s;stroke-width:.6}`, p.legendTitle, p.legendCircle, p.hotOpacity, p.hotStroke)
	fmt.Fprintf(&b, `.empty text{text-anchor:middle;font-size:15px;fill:%s}.empty .big{font-size:24px;font-weight:600;fill:%s}`, p.emptyText, p.fg)
	if standalone {
		b.WriteString(`.attr{font-size:12px;text-anchor:end}`)
	} else {
		b.WriteString(`.attr{display:none}`)
	}
	return b.String()
}

func pageCSS(v View, brand *Brand) string {
	p := v.palette()
	accent := brandAccent(brand)
	if accent != "" {
		p.accent = accent
	}
	w, h := "100vw", "100vh"
	if v.Width > 0 {
		w = strconv.Itoa(v.Width) + "px"
	}
	if v.Height > 0 {
		h = strconv.Itoa(v.Height) + "px"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `*{box-sizing:border-box;margin:0;padding:0}html,body{background:%s;color:%s}`, p.bg, p.fg)
	fmt.Fprintf(&b, `body{font:13px/1.35 %s;overflow:hidden;-webkit-font-smoothing:antialiased}`, fontStack)
	fmt.Fprintf(&b, `#map{display:flex;flex-direction:column;width:%s;height:%s;padding:12px 14px 9px;gap:8px}`, w, h)
	fmt.Fprintf(&b, `header{display:flex;align-items:baseline;justify-content:space-between;gap:12px;min-width:0}`+
		`h1{font-size:15px;font-weight:650;letter-spacing:-.01em;white-space:nowrap}`+
		`header p{color:%s;font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;font-variant-numeric:tabular-nums}`, p.muted)
	b.WriteString(`figure{flex:1 1 auto;min-height:0;display:flex}figure>svg{width:100%;height:100%;display:block}`)
	fmt.Fprintf(&b, `.below{border-top:1px solid %s;padding-top:7px}`, p.line)
	b.WriteString(`.top{list-style:none;display:grid;grid-template-columns:1fr 1fr;grid-template-rows:repeat(5,auto);grid-auto-flow:column;column-gap:22px;row-gap:2px;font-size:12px}` +
		`.top li{display:grid;grid-template-columns:16px minmax(0,1fr) 56px 42px;align-items:center;gap:7px}` +
		`.name{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}.bar{width:56px;height:6px;display:block}`)
	fmt.Fprintf(&b, `.rank,.n{color:%s;text-align:right;font-variant-numeric:tabular-nums}.bar rect{fill:%s}.bar .track{fill:%s}.none{color:%s;font-size:12px}`,
		p.muted, p.accent, p.line, p.muted)
	fmt.Fprintf(&b, `footer{display:flex;justify-content:space-between;gap:12px;color:%s;font-size:11px;white-space:nowrap}footer span{overflow:hidden;text-overflow:ellipsis}`, p.muted)
	// Small frames drop the ranking first, then squeeze it to one column.
	b.WriteString(`@media (max-height:330px){.below{display:none}}@media (max-width:440px){.top{grid-template-columns:1fr;grid-template-rows:none;grid-auto-flow:row}.top li:nth-child(n+6){display:none}header p{display:none}}`)
	if brand != nil {
		b.WriteString(`.brand{display:flex;align-items:center;gap:8px;font-weight:650;font-size:13px;min-height:22px}.brand img{display:block;max-width:160px;object-fit:contain}`)
		if accent != "" {
			fmt.Fprintf(&b, `#map{border-top:3px solid %s}`, accent)
		}
	}
	b.WriteString(mapCSS(p, false))
	return b.String()
}

// fmtFloat prints a coordinate with at most one decimal, the precision the
// outlines are stored at.
func fmtFloat(f float64) string {
	return string(appendTenths(nil, int(math.Round(f*10))))
}

// grouped prints 1234567 as "1,234,567".
func grouped(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + grouped(-n)
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// compact prints 1500 as "1.5k" and 2000000 as "2M", for the legend.
func compact(n int) string {
	switch {
	case n >= 1_000_000:
		return trimZero(float64(n)/1e6) + "M"
	case n >= 1000:
		return trimZero(float64(n)/1e3) + "k"
	}
	return strconv.Itoa(n)
}

func trimZero(f float64) string {
	if f >= 100 {
		return strconv.Itoa(int(math.Round(f)))
	}
	return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64)
}

func percent(n, total int) string {
	if total == 0 {
		return "0%"
	}
	p := 100 * float64(n) / float64(total)
	if p < 10 {
		return strconv.FormatFloat(math.Round(p*10)/10, 'f', 1, 64) + "%"
	}
	return strconv.Itoa(int(math.Round(p))) + "%"
}
