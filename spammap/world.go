package spammap

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"golang.org/x/text/language"
)

// countriesTopoJSON is Natural Earth's 1:110m Admin 0 countries as TopoJSON,
// unmodified from the npm package world-atlas 2.0.2 (see WORLD-DATA.md).
// Keeping the upstream file byte-for-byte lets anyone verify it by checksum;
// projection and simplification happen once when the World is loaded.
//
//go:embed countries-110m.json
var countriesTopoJSON []byte

// The map's frame. The viewBox is 1000 units wide whatever the output size,
// so the stored fragment is independent of the requested width and height.
// Latitudes are cropped to 84°N..57°S: Antarctica sends no mail, and the
// space it would take is better spent on the populated continents.
const (
	viewWidth  = 1000.0
	northLat   = 84.0
	southLat   = -57.0
	antarctica = "010"
	// simplifyTolerance is in degrees: 0.12° is a third of a viewBox unit,
	// under a pixel at the usual 600–1200 px widths, and it removes about
	// half of the vertices.
	simplifyTolerance = 0.12
)

// World is the projected base map: country outlines as SVG path data in a
// viewBox of Width × Height. It is immutable once loaded.
type World struct {
	Width, Height float64
	// Countries in the order of the source file, so output is deterministic.
	Countries []CountryShape
	// Sphere is the outline of the projected globe between the cropped
	// latitudes: the ocean.
	Sphere string
	scale  float64
	yTop   float64
	xHalf  float64
}

// CountryShape is one country's outline. Several shapes may share a code
// (Natural Earth draws Kosovo, Somaliland and Northern Cyprus apart).
type CountryShape struct {
	// Code is the ISO 3166-1 alpha-2 code, as GeoIP databases report it.
	Code string
	Name string
	// Path is SVG path data in viewBox units.
	Path string
}

// noNumericCode maps Natural Earth features without an ISO numeric id to the
// alpha-2 code GeoIP databases use for them (MaxMind and DB-IP report Kosovo
// as XK; the other two are disputed territories geolocated to the state
// they are internationally recognised as part of).
var noNumericCode = map[string]string{
	"Kosovo":     "XK",
	"Somaliland": "SO",
	"N. Cyprus":  "CY",
}

type topology struct {
	Transform struct {
		Scale     [2]float64 `json:"scale"`
		Translate [2]float64 `json:"translate"`
	} `json:"transform"`
	Objects struct {
		Countries struct {
			Geometries []struct {
				Type       string          `json:"type"`
				ID         string          `json:"id"`
				Arcs       json.RawMessage `json:"arcs"`
				Properties struct {
					Name string `json:"name"`
				} `json:"properties"`
			} `json:"geometries"`
		} `json:"countries"`
	} `json:"objects"`
	Arcs [][][2]float64 `json:"arcs"`
}

// naturalEarth is the Natural Earth projection (Šavrič, Jenny, Patterson,
// Petrovič, Hurni 2011), the polynomial d3-geo's geoNaturalEarth1 uses: less
// distortion near the poles than equirectangular, and it looks like a globe.
func naturalEarth(lon, lat float64) (x, y float64) {
	l := lon * math.Pi / 180
	p := lat * math.Pi / 180
	p2 := p * p
	p4 := p2 * p2
	x = l * (0.8707 - 0.131979*p2 + p4*(-0.013791+p4*(0.003971*p2-0.001529*p4)))
	y = p * (1.007226 + p2*(0.015085+p4*(-0.044475+0.028874*p2-0.005916*p4)))
	return x, y
}

// LoadWorld decodes, projects and simplifies the embedded outlines.
func LoadWorld() (*World, error) {
	var topo topology
	if err := json.Unmarshal(countriesTopoJSON, &topo); err != nil {
		return nil, fmt.Errorf("spammap: decode world outlines: %w", err)
	}
	xHalf, _ := naturalEarth(180, 0)
	_, yTop := naturalEarth(0, northLat)
	_, yBottom := naturalEarth(0, southLat)
	scale := viewWidth / (2 * xHalf)
	w := &World{
		Width:  viewWidth,
		Height: math.Round((yTop-yBottom)*scale*10) / 10,
		scale:  scale,
		yTop:   yTop,
		xHalf:  xHalf,
	}

	// Decode each arc once (quantized, delta-encoded per the TopoJSON spec
	// §2.1.3) and simplify it in degrees. Arcs are shared by neighbouring
	// countries, so simplifying arcs, with their end points fixed, keeps
	// borders identical on both sides: no slivers or gaps.
	arcs := make([][]point, len(topo.Arcs))
	t := topo.Transform
	for i, arc := range topo.Arcs {
		var qx, qy float64
		pts := make([]point, len(arc))
		for j, d := range arc {
			qx += d[0]
			qy += d[1]
			pts[j] = point{qx*t.Scale[0] + t.Translate[0], qy*t.Scale[1] + t.Translate[1]}
		}
		arcs[i] = simplify(pts, simplifyTolerance)
	}

	for _, g := range topo.Objects.Countries.Geometries {
		if g.ID == antarctica {
			continue
		}
		var polygons [][][]int
		switch g.Type {
		case "Polygon":
			var rings [][]int
			if err := json.Unmarshal(g.Arcs, &rings); err != nil {
				return nil, fmt.Errorf("spammap: decode %s: %w", g.Properties.Name, err)
			}
			polygons = [][][]int{rings}
		case "MultiPolygon":
			if err := json.Unmarshal(g.Arcs, &polygons); err != nil {
				return nil, fmt.Errorf("spammap: decode %s: %w", g.Properties.Name, err)
			}
		default:
			return nil, fmt.Errorf("spammap: %s: unexpected geometry %q", g.Properties.Name, g.Type)
		}
		code, err := alpha2(g.ID, g.Properties.Name)
		if err != nil {
			return nil, err
		}
		var path []byte
		for _, rings := range polygons {
			for _, ring := range rings {
				pts, err := stitch(arcs, ring)
				if err != nil {
					return nil, fmt.Errorf("spammap: %s: %w", g.Properties.Name, err)
				}
				for _, r := range unwrap(pts) {
					path = appendRing(path, w.projectAll(r))
				}
			}
		}
		if len(path) == 0 {
			continue
		}
		w.Countries = append(w.Countries, CountryShape{Code: code, Name: g.Properties.Name, Path: string(path)})
	}

	// The globe's outline: the meridians ±180° between the cropped latitudes.
	var sphere []point
	for lat := southLat; lat <= northLat; lat++ {
		sphere = append(sphere, point{-180, lat})
	}
	for lat := northLat; lat >= southLat; lat-- {
		sphere = append(sphere, point{180, lat})
	}
	w.Sphere = string(appendRing(nil, w.projectAll(sphere)))
	return w, nil
}

func alpha2(id, name string) (string, error) {
	if code, ok := noNumericCode[name]; ok {
		return code, nil
	}
	r, err := language.ParseRegion(id)
	if err != nil || !r.IsCountry() {
		return "", fmt.Errorf("spammap: %s: no ISO 3166 country for id %q", name, id)
	}
	return r.String(), nil
}

// Project maps a latitude and longitude in degrees to viewBox coordinates.
func (w *World) Project(lat, lon float64) (x, y float64) {
	px, py := naturalEarth(lon, lat)
	return (px + w.xHalf) * w.scale, (w.yTop - py) * w.scale
}

// point is a longitude (x) and latitude (y) in degrees, or a position in
// the viewBox once projected.
type point struct{ x, y float64 }

func (w *World) projectAll(pts []point) []point {
	out := make([]point, len(pts))
	for i, p := range pts {
		out[i].x, out[i].y = w.Project(p.y, p.x)
	}
	return out
}

// unwrap handles rings that cross the antimeridian (Russia's Chukotka,
// Fiji): Natural Earth stores them with a jump from +180° to −180°, which
// would draw a line across the whole map. Such a ring is returned twice,
// made continuous once on each side of the map; each copy runs past the
// edge of the globe, and the drawing clips both to the globe's outline.
func unwrap(ring []point) [][]point {
	crosses := false
	for i := 1; i < len(ring); i++ {
		if math.Abs(ring[i].x-ring[i-1].x) > 180 {
			crosses = true
			break
		}
	}
	if !crosses {
		return [][]point{ring}
	}
	east := make([]point, len(ring))
	west := make([]point, len(ring))
	for i, p := range ring {
		east[i], west[i] = p, p
		if p.x < 0 {
			east[i].x += 360
		} else {
			west[i].x -= 360
		}
	}
	return [][]point{east, west}
}

// stitch joins a ring's arcs; a negative index ~i is arc i reversed
// (TopoJSON §2.2.2). Each arc starts where the previous one ended, so the
// shared point is kept once.
func stitch(arcs [][]point, ring []int) ([]point, error) {
	var pts []point
	for _, ai := range ring {
		rev := ai < 0
		if rev {
			ai = ^ai
		}
		if ai >= len(arcs) {
			return nil, fmt.Errorf("arc %d out of range", ai)
		}
		a := arcs[ai]
		start := 0
		if len(pts) > 0 {
			start = 1
		}
		for k := start; k < len(a); k++ {
			if rev {
				pts = append(pts, a[len(a)-1-k])
			} else {
				pts = append(pts, a[k])
			}
		}
	}
	return pts, nil
}

// appendRing writes a closed ring as relative SVG path commands in tenths of
// a unit. Deltas are taken between rounded absolute positions, so rounding
// never accumulates; points that round onto the previous one are dropped,
// and rings that collapse below three points (specks at this scale) vanish.
func appendRing(dst []byte, pts []point) []byte {
	q := make([][2]int, 0, len(pts))
	for _, p := range pts {
		c := [2]int{int(math.Round(p.x * 10)), int(math.Round(p.y * 10))}
		if len(q) > 0 && q[len(q)-1] == c {
			continue
		}
		q = append(q, c)
	}
	if len(q) > 1 && q[0] == q[len(q)-1] {
		q = q[:len(q)-1]
	}
	if len(q) < 3 {
		return dst
	}
	dst = append(dst, 'M')
	dst = appendTenths(dst, q[0][0])
	dst = append(dst, ' ')
	dst = appendTenths(dst, q[0][1])
	dst = append(dst, 'l')
	for i := 1; i < len(q); i++ {
		dx, dy := q[i][0]-q[i-1][0], q[i][1]-q[i-1][1]
		if i > 1 && dx >= 0 {
			dst = append(dst, ' ')
		}
		dst = appendTenths(dst, dx)
		if dy >= 0 {
			dst = append(dst, ' ')
		}
		dst = appendTenths(dst, dy)
	}
	return append(dst, 'z')
}

// appendTenths formats v/10 with at most one decimal: 123 → "12.3",
// 120 → "12", -5 → "-.5".
func appendTenths(dst []byte, v int) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	whole, frac := v/10, v%10
	if whole != 0 || frac == 0 {
		dst = strconv.AppendInt(dst, int64(whole), 10)
	}
	if frac != 0 {
		dst = append(dst, '.', byte('0'+frac))
	}
	return dst
}

// simplify is Douglas–Peucker with the end points fixed (iterative, so a
// long coastline cannot deepen the stack).
func simplify(pts []point, tol float64) []point {
	if len(pts) < 3 {
		return pts
	}
	keep := make([]bool, len(pts))
	keep[0], keep[len(pts)-1] = true, true
	stack := [][2]int{{0, len(pts) - 1}}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		a, b := pts[s[0]], pts[s[1]]
		best, bestD := -1, tol
		for i := s[0] + 1; i < s[1]; i++ {
			if d := segmentDistance(pts[i], a, b); d > bestD {
				best, bestD = i, d
			}
		}
		if best >= 0 {
			keep[best] = true
			stack = append(stack, [2]int{s[0], best}, [2]int{best, s[1]})
		}
	}
	out := make([]point, 0, len(pts))
	for i, p := range pts {
		if keep[i] {
			out = append(out, p)
		}
	}
	return out
}

func segmentDistance(p, a, b point) float64 {
	dx, dy := b.x-a.x, b.y-a.y
	l2 := dx*dx + dy*dy
	if l2 == 0 {
		return math.Hypot(p.x-a.x, p.y-a.y)
	}
	t := ((p.x-a.x)*dx + (p.y-a.y)*dy) / l2
	t = max(0, min(1, t))
	return math.Hypot(p.x-(a.x+t*dx), p.y-(a.y+t*dy))
}
