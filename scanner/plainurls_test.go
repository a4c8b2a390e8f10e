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
