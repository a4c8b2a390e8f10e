package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
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
		{`{"` + strings.Repeat("k", maxKeyBytes) + `":1,"` + strings.Repeat("K", maxKeyBytes) + `":2}`, strings.Repeat("K", maxKeyBytes)},
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

// TestAPIOverlongKeyEndsTheBody: a key longer than any field name is
// refused as soon as it is, briefly. The decoder refused it as an unknown
// field quoting it whole, four bytes per control character: an import
// body of one 30 MiB key was answered in 150 MB (2.6 GB allocated).
func TestAPIOverlongKeyEndsTheBody(t *testing.T) {
	f := newAPIFixture(t)
	for _, tc := range []struct {
		method, path, body string
		size               int
	}{
		{"POST", fmt.Sprintf("/api/v1/domains/%d/recipients/import", f.domA.ID), `{"recipients":["bob"],"%s":1}`, 16 << 20},
		{"PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), `{"policy":{"tag_score":5,"%s":1}}`, 60 << 10},
		{"PATCH", fmt.Sprintf("/api/v1/domains/%d", f.domA.ID), `{"policy":{"tag_score":5,"%s":1}}`, maxKeyBytes + 1},
	} {
		body := fmt.Sprintf(tc.body, strings.Repeat("\x7f", tc.size))
		code, out := f.do("own", tc.method, tc.path, body)
		if code != http.StatusBadRequest || len(out) > 1024 {
			t.Errorf("%s %s with a key of %d bytes: %d, answer of %d bytes, want 400 in under 1 KiB: %.200q",
				tc.method, tc.path, tc.size, code, len(out), out)
		}
	}
	if d, err := f.svc.GetDomain(context.Background(), f.op, f.domA.ID); err != nil || d.Policy.TagScore != nil {
		t.Errorf("domain after refused patches: %+v, %v", d.Policy, err)
	}
	if _, err := f.svc.GetRecipient(context.Background(), f.op, f.domA.ID, "bob"); err == nil {
		t.Error("the refused import added bob")
	}
}

// FuzzKeyCheck: for a body that is one JSON value, keyCheck notes invalid
// UTF-8, and for one of valid UTF-8, the duplicate key and the outer null
// keys that the decoder's own tokens show (referenceKeys).
func FuzzKeyCheck(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, `{"a":"{\"a\":1,\"a\":2}","b":"\\","c":"]}"}`,
		`{"x":[{"k":1},{"k":1,"\u212a":2}]}`, `{ "routes" :` + "\n\t" + ` null , "name" : "null" }`,
		`{"n\u0061me":null,"policy":{"tag_score":null}}`, `[{"a":null}]`, `{"a\"b":1,"a\u0022b":2}`, "{\"\xff\":1}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if !json.Valid([]byte(body)) {
			return
		}
		k := &keyCheck{r: strings.NewReader(body)}
		if _, err := io.ReadAll(k); err != nil {
			return // a key past maxKeyBytes
		}
		// Outside strings the decoder takes no byte past ASCII.
		if valid := utf8.ValidString(body); k.notUTF8 == valid {
			t.Fatalf("keyCheck: notUTF8 %v for a body whose UTF-8 is valid: %v", k.notUTF8, valid)
		} else if !valid {
			return // refused as such: the decoder's tokens read U+FFFD for each bad byte, keyCheck reads the bytes
		}
		if dup, nulls := referenceKeys(t, body); k.dup != dup || !slices.Equal(k.nulls, nulls) {
			t.Fatalf("keyCheck: dup %q, nulls %q; want %q, %q", k.dup, k.nulls, dup, nulls)
		}
	})
}

// referenceKeys reads body, one JSON value, by the decoder's tokens: the
// first key given twice in an object (folded as the decoder matches
// them), among the first maxObjectKeys each holds, and the outer
// object's keys given null.
func referenceKeys(t *testing.T, body string) (dup string, nulls []string) {
	type frame struct {
		keys    map[string]bool // nil for an array
		wantKey bool
	}
	var stack []*frame
	last := ""
	dec := json.NewDecoder(strings.NewReader(body))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return dup, nulls
		}
		if err != nil {
			t.Fatalf("a valid body: %v", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok && top != nil && top.keys != nil && top.wantKey {
			top.wantKey, last = false, ""
			if len(top.keys) < maxObjectKeys {
				last = s
				if folded := strings.ToLower(strings.ToUpper(s)); dup == "" && top.keys[folded] {
					dup = s
				} else if dup == "" {
					top.keys[folded] = true
				}
			}
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		case nil:
			if len(stack) == 1 && top.keys != nil && last != "" {
				nulls = append(nulls, last)
			}
		}
		// A value ended: an object's next token is a key.
		if len(stack) > 0 {
			stack[len(stack)-1].wantKey = true
		}
	}
}
