package textproto

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// trimAroundNewlinesReference is trimAroundNewlines as upstream wrote it.
func trimAroundNewlinesReference(v []byte) string {
	var b strings.Builder
	b.Grow(len(v))
	for {
		i := bytes.IndexByte(v, '\n')
		if i < 0 {
			writeContinuedReference(&b, v)
			break
		}
		writeContinuedReference(&b, v[:i])
		v = v[i+1:]
	}
	return b.String()
}

func writeContinuedReference(b *strings.Builder, l []byte) {
	if len(l) > 0 && l[len(l)-1] == '\r' {
		l = l[:len(l)-1]
	}
	l = trim(l)
	if len(l) == 0 {
		return
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.Write(l)
}

// FuzzUnfoldMatchesReference: appendUnfolded after a prefix leaves the
// prefix and appends what upstream's trimAroundNewlines returned; a field
// read by ReadHeader has that value and its raw bytes as read.
func FuzzUnfoldMatchesReference(f *testing.F) {
	for _, s := range []string{"", " a", " a\r\n b \r\n\tc", "\r\n", " \r\n \r\n x", "a\n\n b\r", "\t \t"} {
		f.Add("Subject:", s)
	}
	f.Fuzz(func(t *testing.T, prefix, v string) {
		want := trimAroundNewlinesReference([]byte(v))
		got := appendUnfolded([]byte(prefix), []byte(v))
		if string(got[:len(prefix)]) != prefix || string(got[len(prefix):]) != want {
			t.Fatalf("appendUnfolded(%q, %q) = %q, want the prefix and %q", prefix, v, got, want)
		}
		if s := trimAroundNewlines([]byte(v)); s != want {
			t.Fatalf("trimAroundNewlines(%q) = %q, want %q", v, s, want)
		}
		// One continued field, as readContinuedLineSlice would give it.
		if strings.ContainsAny(v, "\r\n:") || strings.HasPrefix(v, " ") {
			return
		}
		raw := "X-Test: " + v + "\r\n \t" + v + "\r\n"
		h, err := ReadHeader(bufio.NewReader(strings.NewReader(raw + "\r\n")))
		if err != nil {
			return
		}
		fields := h.Fields()
		if !fields.Next() {
			t.Fatalf("no field in %q", raw)
		}
		if got, want := fields.Value(), trimAroundNewlinesReference([]byte(" "+v+"\r\n \t"+v)); got != want {
			t.Fatalf("value of %q: %q, want %q", raw, got, want)
		}
		b, err := fields.Raw()
		if err != nil || string(b) != raw {
			t.Fatalf("raw of %q: %q, %v", raw, b, err)
		}
	})
}
