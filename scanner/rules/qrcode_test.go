package rules

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"testing"
)

// qrLike draws what a QR code looks like to a reader: three finder
// patterns, timing lines and random modules, scale pixels a module, in
// a quiet zone.
func qrLike(seed uint64, scale int, finders int) []byte {
	const size, quiet = 25, 4
	rnd := rand.New(rand.NewPCG(seed, 1))
	var m [size][size]bool
	for r := range m {
		for c := range m[r] {
			m[r][c] = rnd.IntN(2) == 0
		}
	}
	corners := [][2]int{{0, 0}, {0, size - 7}, {size - 7, 0}}[:finders]
	for _, o := range corners {
		for r := -1; r < 8; r++ {
			for c := -1; c < 8; c++ {
				if rr, cc := o[0]+r, o[1]+c; rr >= 0 && rr < size && cc >= 0 && cc < size {
					ring := max(abs(r-3), abs(c-3))
					m[rr][cc] = ring != 2 && ring != 4
				}
			}
		}
	}
	n := (size + 2*quiet) * scale
	img := image.NewGray(image.Rect(0, 0, n, n))
	for y := range n {
		for x := range n {
			r, c := y/scale-quiet, x/scale-quiet
			v := uint8(255)
			if r >= 0 && r < size && c >= 0 && c < size && m[r][c] {
				v = 0
			}
			img.SetGray(x, y, color.Gray{Y: v})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// noise is a picture with no code: a photo's worth of random shades.
func noise(seed uint64) []byte {
	rnd := rand.New(rand.NewPCG(seed, 2))
	img := image.NewGray(image.Rect(0, 0, 400, 300))
	for i := range img.Pix {
		img.Pix[i] = uint8(rnd.IntN(256))
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

func TestHasQRCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want bool
	}{
		{"a code, 10 px a module", qrLike(1, 10, 3), true},
		{"a code, 4 px a module", qrLike(2, 4, 3), true},
		{"a code, 3 px a module", qrLike(3, 3, 3), true},
		{"two finder patterns only", qrLike(4, 10, 2), false},
		{"random shades", noise(5), false},
		{"not a picture", []byte("GIF89a garbage"), false},
	} {
		if got := hasQRCode(tc.data); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestQRCodeOnly: a message that shows a QR code and next to no words
// is the phish that hides its lure and link in the picture; a boarding
// pass says what its code is for.
func TestQRCodeOnly(t *testing.T) {
	code := qrLike(6, 8, 3)
	mail := func(html string, pic []byte) string {
		return okHeaders + "MIME-Version: 1.0\nContent-Type: multipart/related; boundary=b\n\n--b\nContent-Type: text/html\n\n" + html +
			"\n--b\nContent-Type: image/png\nContent-Transfer-Encoding: base64\nContent-ID: <q@x>\n\n" + base64.StdEncoding.EncodeToString(pic) + "\n--b--\n"
	}
	for _, tc := range []struct {
		name, raw string
		want      bool
	}{
		{"only the code", mail(`<img src="cid:q@x">`, code), true},
		{"a boarding pass", mail(`<h2>Boarding pass</h2><p>Passenger SILVA/ANA, flight TP 1946 Lisbon to Porto, Friday 18 December, boarding 17:25, seat 14C, booking reference X7QK2M. Show the QR code at security and at the gate, on your phone or printed.</p><img src="cid:q@x">`, code), false},
		{"only a photo", mail(`<img src="cid:q@x">`, noise(7)), false},
	} {
		_, got := run(t, nil, msg(tc.raw), nil)[QRCodeOnly]
		if got != tc.want {
			t.Errorf("%s: %s %v, want %v", tc.name, QRCodeOnly, got, tc.want)
		}
	}
}

// A picture cannot make threeAlike try more than maxQRFinders³ triples:
// finders past the bound are not kept, however far from the others.
func TestFindersKeptBounded(t *testing.T) {
	var fs []finder
	for i := range 10 * maxQRFinders {
		fs = addFinder(fs, finder{x: 100 * i, y: 0, module: 1})
	}
	if len(fs) != maxQRFinders {
		t.Fatalf("%d finders kept, want %d", len(fs), maxQRFinders)
	}
}
