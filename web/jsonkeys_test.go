package web

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestKeyCheck: keys are compared per object, folded and unescaped;
// strings holding JSON's structural characters are values, not structure.
func TestKeyCheck(t *testing.T) {
	tests := []struct {
		body, dup string
	}{
		{`{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, ""},
		{`{"a":"{\"a\":1,\"a\":2}","b":"\\","c":"]}"}`, ""},
		{`{"a":[1,"a",{"b":1}],"b":2}`, ""},
		{`{"a":1,"a":2}`, "a"},
		{`{"x":{"tag":1,"TAG":2}}`, "TAG"},
		{`{"x":[{"k":1},{"k":1,"\u212a":2}]}`, "\u212a"},
		{`{"s":1,"\u017f":2}`, "\u017f"},
		{`{"a\"b":1,"a\u0022b":2}`, `a"b`},
		{`{"name":"x", "n\u0061me" : "y"}`, "name"},
		{`{"` + strings.Repeat("k", 300) + `":1,"` + strings.Repeat("k", 300) + `":2}`, ""}, // unknown to every body anyway
	}
	for _, tt := range tests {
		k := &keyCheck{r: strings.NewReader(tt.body)}
		if _, err := io.ReadAll(k); err != nil {
			t.Fatal(err)
		}
		if k.dup != tt.dup {
			t.Errorf("%s: dup %q, want %q", tt.body, k.dup, tt.dup)
		}
	}
}

// TestKeyCheckNulls: the outer object's keys given null are noted (the
// decoder would leave their fields as they were); a null inside a nested
// object, an array or a string is not.
func TestKeyCheckNulls(t *testing.T) {
	for _, tt := range []struct {
		body  string
		nulls []string
	}{
		{`{"name":"x","route":"h:25"}`, nil},
		{`{"customer_id":null}`, []string{"customer_id"}},
		{`{ "routes" :` + "\n\t" + ` null , "name" : "null" }`, []string{"routes"}},
		{`{"n\u0061me":null,"policy":{"tag_score":null}}`, []string{"name"}},
		{`{"policy":{"tag_score":null},"routes":[null],"name":"n"}`, nil},
		{`{"a":{"b":{"c":null}},"d":null}`, []string{"d"}},
	} {
		k := &keyCheck{r: strings.NewReader(tt.body)}
		if _, err := io.ReadAll(k); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(k.nulls, tt.nulls) {
			t.Errorf("%s: nulls %q, want %q", tt.body, k.nulls, tt.nulls)
		}
	}
}

// TestKeyCheckHoldsFewKeys: an object with more keys than any request
// body has fields keeps only the first maxObjectKeys, a dozen bytes each:
// a body of millions of distinct keys cost a map of them all (about five
// times the body) before the decoder refused the first.
func TestKeyCheckHoldsFewKeys(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; b.Len() < 4<<20; i++ {
		fmt.Fprintf(&b, `"k%x":0,`, i)
	}
	b.WriteString(`"last":0}`)
	body := b.String()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	k := &keyCheck{r: strings.NewReader(body)}
	if _, err := io.Copy(io.Discard, k); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("reading a %d MiB object of distinct keys allocated %d MiB, want under 1", len(body)>>20, got>>20)
	}
	// Duplicates among the first keys are still found.
	k = &keyCheck{r: strings.NewReader(`{"a":1,"b":2,"A":3,` + body[1:])}
	io.Copy(io.Discard, k)
	if k.dup != "A" {
		t.Errorf("dup %q, want A", k.dup)
	}
}
