package rules

import (
	"bytes"
	"image"
	_ "image/gif" // pictures in mail: GIF, JPEG and PNG
	_ "image/jpeg"
	_ "image/png"

	"github.com/mxgrid/mxgrid/scanner"
)

// Bounds of the QR code search: a code meant to be scanned from a screen
// fits in a megapixel, and so must all the pictures of a message
// together (decoding and reading one costs about 25 ms).
const (
	maxQRPictures  = 4
	maxQRDataBytes = 2 << 20
	maxQRPixels    = 1 << 20
	// maxQRFinders bounds the finder patterns kept of one picture: a
	// code has three, a page of codes a few dozen, and threeAlike tries
	// every triple (a picture tiled with thousands of finder-like squares
	// of mixed sizes, which form no code, was billions of tries).
	maxQRFinders = 64
)

// showsQRCode: one of m's pictures (an image part, inline or attached) is
// a QR code. Only the pictures are looked at, never fetched: a remote
// image is not in the message.
func showsQRCode(m *scanner.Message) bool {
	n, budget := 0, maxQRPixels
	for i := range m.Leaves {
		l := &m.Leaves[i]
		switch l.ContentType {
		case "image/png", "image/gif", "image/jpeg", "image/jpg":
		default:
			continue
		}
		if n++; n > maxQRPictures || len(l.Data) > maxQRDataBytes {
			continue
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(l.Data))
		if err != nil || cfg.Width < 21 || cfg.Height < 21 || cfg.Width*cfg.Height > budget {
			continue
		}
		budget -= cfg.Width * cfg.Height
		if hasQRCode(l.Data) {
			return true
		}
	}
	return false
}

// hasQRCode reports whether the picture in data shows three QR finder
// patterns: the nested squares in three corners of every QR code, which
// any line through their centre crosses as dark, light, dark, light and
// dark runs in the proportions 1:1:3:1:1. This is how QR readers find a
// code before decoding it; the code itself is not decoded.
func hasQRCode(data []byte) bool {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width < 21 || cfg.Height < 21 || cfg.Width*cfg.Height > maxQRPixels {
		return false
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return false
	}
	g := newGreyMap(img)
	var centres []finder
	columns := map[int][]centre{} // each column's finder centres, read once
	for y := 0; y < g.h && len(centres) < maxQRFinders; y++ {
		runs := g.runs(func(i int) bool { return g.dark(i, y) }, g.w)
		for _, c := range finderCentres(runs) {
			down, ok := columns[c.pos]
			if !ok {
				down = finderCentres(g.runs(func(j int) bool { return g.dark(c.pos, j) }, g.h))
				columns[c.pos] = down
			}
			for _, v := range down {
				if v.pos-int(v.module) <= y && y <= v.pos+int(v.module) && near(int(v.module*100), c.module*100, c.module*50) {
					centres = addFinder(centres, finder{c.pos, v.pos, (c.module + v.module) / 2})
				}
			}
		}
	}
	return threeAlike(centres)
}

// threeAlike: three of fs lie as the finder patterns of one code do: at
// the corners of a right isosceles triangle whose legs span at least
// 14 modules (a code is at least 21 modules wide), all three of about
// one module size. Random shades (a photo's grain) make the odd 1:1:3:1:1
// run, never three in that shape.
func threeAlike(fs []finder) bool {
	for i := range fs {
		for j := range fs {
			for k := j + 1; k < len(fs); k++ {
				if i != j && i != k && corner(fs[i], fs[j], fs[k]) {
					return true
				}
			}
		}
	}
	return false
}

// corner: a is the right angle of a right isosceles triangle a, b, c.
func corner(a, b, c finder) bool {
	m := a.module
	for _, o := range [...]finder{b, c} {
		if !near(int(o.module*100), m*100, m*50) {
			return false
		}
	}
	abx, aby := float64(b.x-a.x), float64(b.y-a.y)
	acx, acy := float64(c.x-a.x), float64(c.y-a.y)
	ab, ac := abx*abx+aby*aby, acx*acx+acy*acy
	if ab < 14*14*m*m || ac < 14*14*m*m {
		return false
	}
	// Legs of one length (within a fifth) at a right angle (cosine
	// under a tenth).
	dot := abx*acx + aby*acy
	return ab < 1.44*ac && ac < 1.44*ab && dot*dot < 0.01*ab*ac
}

// greyMap is a picture reduced to dark and light pixels around its mean
// luminance.
type greyMap struct {
	w, h      int
	lum       []uint8
	threshold int
}

func newGreyMap(img image.Image) *greyMap {
	b := img.Bounds()
	g := &greyMap{w: b.Dx(), h: b.Dy(), lum: make([]uint8, b.Dx()*b.Dy())}
	// The kinds the decoders return are read from their pixel arrays: At
	// boxes a colour per pixel, three times slower.
	switch p := img.(type) {
	case *image.Gray:
		for y := range g.h {
			copy(g.lum[y*g.w:(y+1)*g.w], p.Pix[y*p.Stride:])
		}
	case *image.YCbCr:
		for y := range g.h {
			copy(g.lum[y*g.w:(y+1)*g.w], p.Y[y*p.YStride:])
		}
	case *image.NRGBA:
		for y := range g.h {
			row := p.Pix[y*p.Stride:]
			for x := range g.w {
				g.lum[y*g.w+x] = luma(uint32(row[4*x]), uint32(row[4*x+1]), uint32(row[4*x+2]))
			}
		}
	case *image.RGBA:
		for y := range g.h {
			row := p.Pix[y*p.Stride:]
			for x := range g.w {
				g.lum[y*g.w+x] = luma(uint32(row[4*x]), uint32(row[4*x+1]), uint32(row[4*x+2]))
			}
		}
	case *image.Paletted:
		var pal [256]uint8
		for i, c := range p.Palette {
			r, gr, bl, _ := c.RGBA()
			pal[i] = luma(r>>8, gr>>8, bl>>8)
		}
		for y := range g.h {
			for x, i := range p.Pix[y*p.Stride : y*p.Stride+g.w] {
				g.lum[y*g.w+x] = pal[i]
			}
		}
	default:
		for y := range g.h {
			for x := range g.w {
				r, gr, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				g.lum[y*g.w+x] = luma(r>>8, gr>>8, bl>>8)
			}
		}
	}
	sum := 0
	for _, l := range g.lum {
		sum += int(l)
	}
	g.threshold = sum / len(g.lum)
	return g
}

// luma is the brightness of an 8-bit RGB colour (ITU-R BT.601).
func luma(r, g, b uint32) uint8 { return uint8((299*r + 587*g + 114*b) / 1000) }

func (g *greyMap) dark(x, y int) bool { return int(g.lum[y*g.w+x]) < g.threshold }

// pixelRun is a stretch of pixels of one shade along a line.
type pixelRun struct {
	dark       bool
	start, len int
}

// runs splits a line of n pixels, dark(i) giving each one's shade, into
// runs.
func (g *greyMap) runs(dark func(int) bool, n int) []pixelRun {
	var out []pixelRun
	for i := 0; i < n; i++ {
		d := dark(i)
		if len(out) > 0 && out[len(out)-1].dark == d {
			out[len(out)-1].len++
			continue
		}
		out = append(out, pixelRun{dark: d, start: i, len: 1})
	}
	return out
}

// centre is where along a line a finder pattern's middle lies, and the
// width of one module there.
type centre struct {
	pos    int
	module float64
}

// finderCentres returns the centres of the 1:1:3:1:1 dark-light-dark-
// light-dark sequences among runs, with the tolerance QR readers allow
// (half a module for each single module, one and a half for the centre).
func finderCentres(runs []pixelRun) []centre {
	var out []centre
	for i := 0; i+5 <= len(runs); i++ {
		r := runs[i : i+5]
		if !r[0].dark {
			continue
		}
		total := 0
		for _, x := range r {
			total += x.len
		}
		m := float64(total) / 7
		if m < 2 {
			continue
		}
		ok := near(r[0].len, m, m/2) && near(r[1].len, m, m/2) && near(r[2].len, 3*m, 1.5*m) &&
			near(r[3].len, m, m/2) && near(r[4].len, m, m/2)
		if ok {
			out = append(out, centre{r[2].start + r[2].len/2, m})
		}
	}
	return out
}

func near(n int, want, tol float64) bool {
	d := float64(n) - want
	return d < tol && -d < tol
}

// finder is a finder pattern found across and down.
type finder struct {
	x, y   int
	module float64
}

// addFinder adds f to fs unless it is one already there, seen again on
// the next line: within three modules of it.
func addFinder(fs []finder, f finder) []finder {
	if len(fs) >= maxQRFinders {
		return fs
	}
	for _, o := range fs {
		dx, dy := float64(o.x-f.x), float64(o.y-f.y)
		if lim := 3 * max(o.module, f.module); dx*dx+dy*dy < lim*lim {
			return fs
		}
	}
	return append(fs, f)
}
