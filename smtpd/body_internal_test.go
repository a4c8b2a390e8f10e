package smtpd

import (
	"bytes"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/internal/bytebudget"
)

// TestNormalisedGrowthIsPaidFor: a bare LF becomes CRLF, so a body of
// bare LFs doubles once normalised. The budget paid for it as received;
// the body held is the normalised one, which must be paid for too, or go
// to the spool like any body the budget or the threshold cannot hold.
// Before, an attacker sending bodies of bare LFs held about twice what
// smtp.memory_budget allowed.
func TestNormalisedGrowthIsPaidFor(t *testing.T) {
	const raw = 100 << 10 // bare LFs: 200 KiB once normalised
	for _, tc := range []struct {
		name      string
		budget    int64
		threshold int64
		spooled   bool
	}{
		{"the budget pays for the growth", 1 << 20, 1 << 20, false},
		{"the budget cannot: spooled", 600 << 10, 1 << 20, true},
		{"past the threshold once normalised: spooled", 1 << 20, 150 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp, err := newSpool(filepath.Join(t.TempDir(), "spool"), tc.threshold, 0, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			res := reservation{budget: bytebudget.New(tc.budget)}
			b, err := readBody(bytes.NewReader(bytes.Repeat([]byte("\n"), raw)), &res, holdFactor, sp)
			if err != nil {
				t.Fatal(err)
			}
			defer b.close()
			if b.size != 2*raw || b.bare != raw {
				t.Fatalf("size %d, bare %d; want %d, %d", b.size, b.bare, 2*raw, raw)
			}
			if b.spooled() != tc.spooled {
				t.Fatalf("spooled %v, want %v", b.spooled(), tc.spooled)
			}
			want := int64(0) // a spooled body pays when it is scanned
			if !tc.spooled {
				want = b.size * holdFactor
			}
			if res.held != want {
				t.Errorf("reserved %d, want %d (the body held is %d bytes)", res.held, want, b.size)
			}
		})
	}
}
