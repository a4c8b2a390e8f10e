package antivirus

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/scanner"
)

// TestXZDictionaryIsNotAllocated: an .xz whose block declares a 1.5 GiB
// (or 4 GiB) dictionary. github.com/ulikunitz/xz allocates what the
// header declares; the engine gives a block no more dictionary than it
// may read out of the file, so the executable inside is found for the
// cost of a small one.
func TestXZDictionaryIsNotAllocated(t *testing.T) {
	for _, dict := range []byte{37, 40} {
		t.Run(fmt.Sprint(dict), func(t *testing.T) {
			raw := withAttachment("invoice.txz", "application/x-xz", testenv.XZDeclaring(t, tarOf(t, mem("setup.exe", peFile())), dict))
			res, allocated := checkAllocates(t, newCheck(t, nil), scanner.Parse([]byte(raw)))
			if !strings.Contains(res.Reject, "setup.exe") {
				t.Errorf("result %+v, want setup.exe refused", res)
			}
			if allocated > 8<<20 && !raceEnabled {
				t.Errorf("the scan allocated %d bytes", allocated)
			}
		})
	}
}

// TestZstdWindowIsNotAllocated: a frame declaring a window past the
// reference decoder's default limit (128 MiB) is reported unscanned
// without the window allocated, however much a message may expand: the
// library would allocate 256 MiB.
func TestZstdWindowIsNotAllocated(t *testing.T) {
	c := newCheck(t, func(c *Config) { c.ZipMaxExpanded, c.ZipExpandedInFlight = 4<<30, 4<<30 })
	for _, desc := range []byte{18 << 3, 20<<3 | 4} { // 256 MiB, 1.5 GiB
		t.Run(fmt.Sprint(desc), func(t *testing.T) {
			raw := withAttachment("invoice.tzst", "application/zstd", testenv.ZstdDeclaring(t, tarOf(t, mem("readme.txt", []byte("hi"))), desc))
			res, allocated := checkAllocates(t, c, scanner.Parse([]byte(raw)))
			if got := strings.Join(symbolNames(res), ","); got != SymbolArchiveLimit || !strings.Contains(res.Symbols[0].Detail, "zstd window") {
				t.Errorf("result %+v, want the window reported unscanned", res)
			}
			if allocated > 8<<20 && !raceEnabled {
				t.Errorf("the scan allocated %d bytes", allocated)
			}
		})
	}
}
