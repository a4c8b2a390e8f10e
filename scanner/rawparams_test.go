package scanner

import (
	"errors"
	"math/rand"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// rawParamRegexp is what rawParams replaced, the reference it must match.
var rawParamRegexp = regexp.MustCompile(`;\s*([A-Za-z0-9_.-]+)(\*[0-9]+)?\*?\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)`)

func regexpRawParams(raw, key string, n int) []string {
	var out []string
	for _, m := range rawParamRegexp.FindAllStringSubmatch(raw, -1) {
		if len(out) < n && m[2] == "" && strings.EqualFold(m[1], key) {
			out = append(out, m[3])
		}
	}
	return out
}

func checkRawParamsAsRegexp(t *testing.T, raw string) {
	t.Helper()
	for _, key := range []string{"filename", "name", "a", "N"} {
		for _, n := range []int{maxRawNames, 2} {
			if got, want := rawParams(raw, key, n), regexpRawParams(raw, key, n); !reflect.DeepEqual(got, want) {
				t.Fatalf("rawParams(%q, %q, %d) = %q, the regexp finds %q", raw, key, n, got, want)
			}
		}
	}
}

var rawParamsSeeds = []string{
	`attachment; filename="a.txt"; filename=b.js`,
	`text/plain; name*0*=utf-8''a; name*1=b; name*=x; name**=y; name*5x=z`,
	`a; x = "q\"uo;ted" ; y="unterminated; z=3`,
	"a;\t\r\n\f name \n=\n\"v\\\n\"; b=\"\\\xff\"",
	`;;;=;a=;=b;"c"=d;e==f`,
	"; n\xe9=v; name=\"\xff\xfe\"",
}

func TestRawParamsAsRegexp(t *testing.T) {
	for _, s := range rawParamsSeeds {
		checkRawParamsAsRegexp(t, s)
	}
	r := rand.New(rand.NewSource(1))
	alphabet := []string{";", "=", `"`, `\`, " ", "\t", "\n", "*", "0", "7", "a", "N", ".", "-", "\xff", "é", "'"}
	for range 100000 {
		var b strings.Builder
		for range r.Intn(24) {
			b.WriteString(alphabet[r.Intn(len(alphabet))])
		}
		checkRawParamsAsRegexp(t, b.String())
	}
}

func FuzzRawParamsAsRegexp(f *testing.F) {
	for _, s := range rawParamsSeeds {
		f.Add(s)
	}
	f.Fuzz(checkRawParamsAsRegexp)
}

// BenchmarkRawParams: a part's Content-Type or Content-Disposition that
// does not parse is searched for every value of its file name. Go's regexp
// engine took 58 ms for a 1 MiB field of semicolons (a part header's whole
// allowance, in each part of a message: 1.4 s for a 24 MB message); one
// pass takes about 1 ms.
func BenchmarkRawParams(b *testing.B) {
	raw := "attachment" + strings.Repeat(";", 1<<20) + "; filename=a.js"
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if names := paramValues(nil, errors.New("does not parse"), raw, "filename"); !slices.Equal(names, []string{"a.js"}) {
			b.Fatalf("got %q, want a.js", names)
		}
	}
}
