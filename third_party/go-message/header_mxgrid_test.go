package message

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// A Content-Type that mime.ParseMediaType refuses is read again by
// parseParamsLenient. It rebuilt the parameters it keeps into a value for
// the strict parser by appending to a string, copying that value whole
// for every parameter: a 489 KB field of "; pN=v x" allocated 17 GB and
// took 5 s to read, twice per MIME part. And it split the list into a
// slice of every parameter first: a field of a million semicolons was a
// million strings, 80 MB allocated for one 1 MB part header.
func TestLenientParamsCostLinearTime(t *testing.T) {
	var many strings.Builder
	many.WriteString("text/plain")
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&many, "; p%d=v x", i) // a blank in an unquoted value: refused strictly
	}
	for _, tc := range []struct {
		name, value string
		params      int
		maxAlloc    uint64
	}{
		{"10,000 parameters", many.String(), 10000, 16 << 20},
		{"a million semicolons", "text/plain" + strings.Repeat(";", 1<<20) + " charset=x", 1, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			f, params, err := parseHeaderWithParams(tc.value)
			runtime.ReadMemStats(&after)
			if f != "text/plain" || err == nil || len(params) != tc.params {
				t.Fatalf("got %q, %d parameters, err %v; want text/plain, %d and the strict parser's error", f, len(params), err, tc.params)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > tc.maxAlloc {
				t.Errorf("reading a %d KB field allocated %d KB, want < %d", len(tc.value)>>10, got>>10, tc.maxAlloc>>10)
			}
		})
	}
}
