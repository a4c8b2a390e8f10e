package message

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// A Content-Type that mime.ParseMediaType refuses is read again by
// parseParamsLenient, which rebuilds the parameters it keeps into a value
// the strict parser can read. Built by appending to a string, that value
// was copied whole for every parameter: a 489 KB field of "; pN=v x"
// allocated 17 GB and took 5 s to read, twice per MIME part.
func TestLenientParamsCostLinearTime(t *testing.T) {
	var b strings.Builder
	b.WriteString("text/plain")
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&b, "; p%d=v x", i) // a blank in an unquoted value: refused strictly
	}
	v := b.String()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, params, err := parseHeaderWithParams(v)
	runtime.ReadMemStats(&after)
	if err == nil || len(params) != 10000 || params["p9999"] != "v" {
		t.Fatalf("got %d parameters, p9999=%q, err %v; want 10000, \"v\" and the strict parser's error", len(params), params["p9999"], err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("reading a %d KB Content-Type of 10,000 parameters allocated %d MB, want < 16", len(v)>>10, got>>20)
	}
}
