package scanner

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// AppendPlainURLs gives what FindURLs gives, whether it can take the
// links from the parser's list (the message's own Text, searched deep
// enough) or must search: another text, a deeper limit than the parser's,
// a Message built by hand.
func TestAppendPlainURLsIsFindURLs(t *testing.T) {
	var many strings.Builder
	many.WriteString("From: a@example.org\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n")
	for i := range 350 {
		fmt.Fprintf(&many, "see https://plain%d.example/x\r\n", i)
	}
	many.WriteString("--b\r\nContent-Type: text/html\r\n\r\n")
	for i := range 400 {
		fmt.Fprintf(&many, `<a href="https://html%d.example/">x</a>`, i)
	}
	many.WriteString("\r\n--b--\r\n")
	type tc struct {
		name string
		msg  *Message
	}
	tests := []tc{
		{"HTML links leave the parser fewer than the limit", Parse([]byte(many.String()))},
		{"built by hand", &Message{Text: "go to https://hand.example/ now"}},
	}
	files, err := filepath.Glob("testdata/realworld/*/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tests = append(tests, tc{filepath.Base(f), Parse(raw)})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.msg
			for _, text := range []string{m.Text, m.Text[:len(m.Text)/2]} {
				for _, limit := range []int{1, 200, maxURLs + 1} {
					got := m.AppendPlainURLs(nil, text, limit)
					if want := FindURLs(text, limit); !reflect.DeepEqual(got, want) && len(got)+len(want) > 0 {
						t.Errorf("limit %d, %d bytes of text: %d links, FindURLs %d", limit, len(text), len(got), len(want))
					}
				}
			}
		})
	}
}

// findURLsReference is FindURLs as it was before urlAnchors: the next
// occurrence of each prefix kept, and the first of them taken.
func findURLsReference(text string, limit int) []URL {
	prefixes := [...]string{"http://", "https://", "www.", "HTTP://", "HTTPS://", "WWW.", "Http://", "Www.", "://"}
	var out []URL
	var next [len(prefixes)]int
	for k, p := range prefixes {
		next[k] = indexFrom(text, p, 0)
	}
	for i := 0; i < len(text) && len(out) < limit; {
		start := -1
		for k, p := range prefixes {
			if next[k] >= 0 && next[k] < i {
				next[k] = indexFrom(text, p, i)
			}
			if next[k] >= 0 && (start < 0 || next[k] < start) {
				start = next[k]
			}
		}
		if start < 0 {
			break
		}
		if strings.HasPrefix(text[start:], "://") {
			scheme := start
			for scheme > i && start-scheme <= len("https") && isASCIILetter(text[scheme-1]) {
				scheme--
			}
			start = scheme
		}
		end := start
		for end < len(text) && !isURLStop(text[end]) {
			end++
		}
		if u, ok := parseURL(strings.TrimRight(text[start:end], ".,;:!?)'\"")); ok {
			u.Plain = true
			out = append(out, u)
			if t, ok := redirectTarget(u); ok && len(out) < limit {
				out = append(out, t)
			}
		}
		if end == start {
			end++
		}
		i = end
	}
	return out
}

// FuzzFindURLsMatchesReference: the prefixes found through their three
// anchors start the links the search for each prefix found.
func FuzzFindURLsMatchesReference(f *testing.F) {
	for _, s := range []string{
		"see https://a.example/x and www.b.example, WWW.C.EXAMPLE; Www.d.example",
		"hTTps://mixed.example/ xhttp://glued.example ://bare HTTPS://UP.EXAMPLE/ Http://t.example",
		"wwww.x.example wWw.no.example ww.no www. www.. WWW.WWW.example://x",
		"https://https://double.example/ http:///x :// ://:// https:/ www.a.b://c",
		"a://b.example https://www.google.com/url?q=https://evil.example/ end",
	} {
		f.Add(s, 3)
		f.Add(s, 500)
	}
	f.Fuzz(func(t *testing.T, text string, limit int) {
		limit = 1 + int(uint(limit)%600)
		if got, want := FindURLs(text, limit), findURLsReference(text, limit); !reflect.DeepEqual(got, want) {
			t.Fatalf("FindURLs(%q, %d) = %v, reference %v", text, limit, got, want)
		}
	})
}
