package message

import (
	"errors"
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
			// Read by parseParamsLenient itself: parseHeaderWithParams
			// now gives it at most 2*MaxHeaderParams parameters.
			f, params, ok := parseParamsLenient(tc.value)
			runtime.ReadMemStats(&after)
			if f != "text/plain" || !ok || len(params) != tc.params {
				t.Fatalf("got %q, %d parameters, ok %v; want text/plain and %d", f, len(params), ok, tc.params)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > tc.maxAlloc {
				t.Errorf("reading a %d KB field allocated %d KB, want < %d", len(tc.value)>>10, got>>10, tc.maxAlloc>>10)
			}
		})
	}
}

// A field is read up to MaxHeaderParams parameters: each costs a map
// entry or two, and an RFC 2231 one in Latin-1 a charset decoder, so a
// 24 MB message of parts whose Content-Type was 20,000 of them took 2.2 s
// and 1.6 GB to read. Past the limit, the parameters mail readers look
// up by name (a boundary, a charset, a file name) are still read, or a
// multipart's parts, or an attachment's name, would hide behind padding.
func TestParamsReadUpToLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("multipart/mixed")
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&b, "; k%d*=iso-8859-1''%%41", i)
	}
	b.WriteString("; boundary=b; Name*=iso-8859-1''a%2Eexe; x=y")
	value := b.String()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f, params, err := parseHeaderWithParams(value)
	runtime.ReadMemStats(&after)
	if f != "multipart/mixed" || !errors.Is(err, ErrTooManyParams) {
		t.Fatalf("got %q, err %v; want multipart/mixed and ErrTooManyParams", f, err)
	}
	if params["boundary"] != "b" || params["name"] != "a.exe" || params["k0"] != "A" || len(params) != MaxHeaderParams+2 {
		t.Errorf("got %d parameters, boundary %q, name %q, k0 %q; want %d, b, a.exe and A",
			len(params), params["boundary"], params["name"], params["k0"], MaxHeaderParams+2)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(len(value)) {
		t.Errorf("reading a %d KB field allocated %d KB, want less than its size", len(value)>>10, got>>10)
	}
}
