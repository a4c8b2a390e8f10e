package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"runtime"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/scanner"
)

// referenceCanonicalBody is RFC 6376 3.4.3 (simple) and 3.4.4 (relaxed)
// written as the RFC reads, on the whole body at once: what the streaming
// canonicalizer must agree with.
func referenceCanonicalBody(body []byte, relaxed bool) []byte {
	lines := strings.Split(string(body), "\r\n")
	if relaxed {
		for i, l := range lines {
			l = strings.Join(strings.FieldsFunc(l, func(r rune) bool { return r == ' ' || r == '\t' }), " ")
			if strings.HasPrefix(lines[i], " ") || strings.HasPrefix(lines[i], "\t") {
				if l != "" {
					l = " " + l
				}
			}
			lines[i] = l
		}
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		if relaxed {
			return nil
		}
		return []byte("\r\n")
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

func canonicalizeStreaming(body []byte, relaxed bool, chunk int) []byte {
	var out bytes.Buffer
	bc := bodyCanonicalizer{w: bufio.NewWriter(&out), relaxed: relaxed}
	for len(body) > 0 {
		n := min(chunk, len(body))
		bc.Write(body[:n])
		body = body[n:]
	}
	bc.close()
	bc.w.Flush()
	return out.Bytes()
}

func TestBodyCanonicalizer(t *testing.T) {
	for _, tc := range []struct{ body, simple, relaxed string }{
		{"", "\r\n", ""},
		{"\r\n\r\n", "\r\n", ""},
		{"a", "a\r\n", "a\r\n"},
		{"a\r\nb\r\n\r\n\r\n", "a\r\nb\r\n", "a\r\nb\r\n"},
		{" a \t b \r\n\t\r\nc", " a \t b \r\n\t\r\nc\r\n", " a b\r\n\r\nc\r\n"},
		{"a\rb\nc\r", "a\rb\nc\r\r\n", "a\rb\nc\r\r\n"},
		{"  \r\n", "  \r\n", ""},
	} {
		for _, relaxed := range []bool{false, true} {
			want := tc.simple
			if relaxed {
				want = tc.relaxed
			}
			if got := string(canonicalizeStreaming([]byte(tc.body), relaxed, 1)); got != want {
				t.Errorf("%q relaxed=%v: %q, want %q", tc.body, relaxed, got, want)
			}
		}
	}
}

func FuzzBodyCanonicalizerMatchesReference(f *testing.F) {
	for _, s := range []string{"", "a\r\n\r\n", " a \t b \r\n\t\r\nc", "a\rb\nc\r", "\r\r\n\n \r\n"} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, body []byte, chunk uint8) {
		for _, relaxed := range []bool{false, true} {
			want := referenceCanonicalBody(body, relaxed)
			if got := canonicalizeStreaming(body, relaxed, int(chunk)+1); !bytes.Equal(got, want) {
				t.Fatalf("%q relaxed=%v in chunks of %d: %q, reference %q", body, relaxed, int(chunk)+1, got, want)
			}
		}
	})
}

// A spooled message's body is hashed as it is read, not held: the ARC
// check read it whole and split it into lines, outside the memory budget.
func TestBodyHashOfASpooledMessageHoldsNoBody(t *testing.T) {
	raw := []byte("From: a@example.org\r\nSubject: big\r\n\r\n" + strings.Repeat("a line of the body  \r\n", 400000))
	msg := scanner.NewParser(nil).ParseReaderAt(bytes.NewReader(raw), int64(len(raw)))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := bodyHash(msg, true)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	if want := sha256.Sum256(referenceCanonicalBody(body, true)); !bytes.Equal(got, want[:]) {
		t.Errorf("hash %x, reference %x", got, want)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("hashing a %d MB body allocated %d KB, want < 1 MB", len(body)>>20, n>>10)
	}
}
