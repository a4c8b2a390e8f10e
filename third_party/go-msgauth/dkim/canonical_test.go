package dkim

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

var simpleCanonicalizerBodyTests = []struct {
	original  []string
	canonical string
}{
	{
		[]string{""},
		"\r\n",
	},
	{
		[]string{"\r\n"},
		"\r\n",
	},
	{
		[]string{"\r\n\r\n\r\n"},
		"\r\n",
	},
	{
		[]string{"Hey\r\n\r\n"},
		"Hey\r\n",
	},
	{
		[]string{"Hey\r\nHow r u?\r\n\r\n\r\n"},
		"Hey\r\nHow r u?\r\n",
	},
	{
		[]string{"Hey\r\n\r\nHow r u?"},
		"Hey\r\n\r\nHow r u?\r\n",
	},
	{
		[]string{"What about\nLF endings?\n\n"},
		"What about\r\nLF endings?\r\n",
	},
	{
		[]string{"\r\n", "\r", "\n"},
		"\r\n",
	},
	{
		[]string{"\r\n", "\r"},
		"\r\n\r\r\n",
	},
	{
		[]string{"\r\n", "\r", "\n", "hey\n", "\n"},
		"\r\n\r\nhey\r\n",
	},
}

func TestSimpleCanonicalizer_CanonicalBody(t *testing.T) {
	c := new(simpleCanonicalizer)

	var b bytes.Buffer
	for _, test := range simpleCanonicalizerBodyTests {
		b.Reset()

		wc := c.CanonicalizeBody(&b)
		for _, chunk := range test.original {
			if _, err := wc.Write([]byte(chunk)); err != nil {
				t.Fatalf("Expected no error while writing to simple body canonicalizer, got: %v", err)
			}
		}

		if err := wc.Close(); err != nil {
			t.Errorf("Expected no error while closing simple body canonicalizer, got: %v", err)
		} else if s := b.String(); s != test.canonical {
			t.Errorf("Expected canonical body for %q to be %q, but got %q", test.original, test.canonical, s)
		}
	}
}

var relaxedCanonicalizerHeaderTests = []struct {
	original  string
	canonical string
}{
	{
		"SubjeCT: Your Name\r\n",
		"subject:Your Name\r\n",
	},
	{
		"Subject \t:\t Your Name\t \r\n",
		"subject:Your Name\r\n",
	},
	{
		"Subject \t:\t Kimi \t \r\n No \t\r\n Na Wa\r\n",
		"subject:Kimi No Na Wa\r\n",
	},
	{
		"Subject \t:\t Ki \tmi \t \r\n No \t\r\n Na Wa\r\n",
		"subject:Ki mi No Na Wa\r\n",
	},
}

func TestRelaxedCanonicalizer_CanonicalizeHeader(t *testing.T) {
	c := new(relaxedCanonicalizer)

	for _, test := range relaxedCanonicalizerHeaderTests {
		if s := c.CanonicalizeHeader(test.original); s != test.canonical {
			t.Errorf("Expected relaxed canonical header to be %q but got %q", test.canonical, s)
		}
	}
}

var relaxedCanonicalizerBodyTests = []struct {
	original  string
	canonical string
}{
	{
		"",
		"",
	},
	{
		"\r\n",
		"",
	},
	{
		"\r\n\r\n\r\n",
		"",
	},
	{
		"Hey\r\n\r\n",
		"Hey\r\n",
	},
	{
		"Hey\r\nHow r u?\r\n\r\n\r\n",
		"Hey\r\nHow r u?\r\n",
	},
	{
		"Hey\r\n\r\nHow r u?",
		"Hey\r\n\r\nHow r u?\r\n",
	},
	{
		"Hey \t you!",
		"Hey you!\r\n",
	},
	{
		"Hey \t \r\nyou!",
		"Hey\r\nyou!\r\n",
	},
	{
		"Hey\r\n \t you!\r\n",
		"Hey\r\n you!\r\n",
	},
	{
		"Hey\r\n \t \r\n \r\n",
		"Hey\r\n",
	},
}

func TestRelaxedCanonicalizer_CanonicalBody(t *testing.T) {
	c := new(relaxedCanonicalizer)

	var b bytes.Buffer
	for _, test := range relaxedCanonicalizerBodyTests {
		b.Reset()

		wc := c.CanonicalizeBody(&b)
		if _, err := wc.Write([]byte(test.original)); err != nil {
			t.Errorf("Expected no error while writing to relaxed body canonicalizer, got: %v", err)
		} else if err := wc.Close(); err != nil {
			t.Errorf("Expected no error while closing relaxed body canonicalizer, got: %v", err)
		} else if s := b.String(); s != test.canonical {
			t.Errorf("Expected canonical body for %q to be %q, but got %q", test.original, test.canonical, s)
		}
	}
}

func TestRelaxedCanonicalizer_CanonicalBody_splitCRLF(t *testing.T) {
	want := "line 1\r\nline 2\r\n"
	writes := [][]byte{
		[]byte("line 1\r"),
		[]byte("\nline 2"),
	}

	var b bytes.Buffer
	wc := new(relaxedCanonicalizer).CanonicalizeBody(&b)
	for _, b := range writes {
		if _, err := wc.Write(b); err != nil {
			t.Errorf("Expected no error while writing to relaxed body canonicalizer, got: %v", err)
		}
	}
	if err := wc.Close(); err != nil {
		t.Errorf("Expected no error while closing relaxed body canonicalizer, got: %v", err)
	} else if s := b.String(); s != want {
		t.Errorf("Expected canonical body to be %q, but got %q", want, s)
	}
}

// checkBodyAsUpstream writes body to both canonicalizers of each kind, in
// writes split at splits, and fails if their output differs.
func checkBodyAsUpstream(t *testing.T, body []byte, splits []int) {
	t.Helper()
	for _, kind := range []string{"simple", "relaxed"} {
		var got, want bytes.Buffer
		var patched, upstream io.WriteCloser
		if kind == "simple" {
			patched, upstream = new(simpleCanonicalizer).CanonicalizeBody(&got), &upstreamSimpleBody{w: &want}
		} else {
			patched, upstream = new(relaxedCanonicalizer).CanonicalizeBody(&got), &upstreamRelaxedBody{w: &want}
		}
		rest := body
		for _, n := range append(splits, len(body)) {
			if n > len(rest) {
				n = len(rest)
			}
			patched.Write(rest[:n])
			upstream.Write(rest[:n])
			rest = rest[n:]
		}
		patched.Close()
		upstream.Close()
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("%s canonicalization of %q (writes split at %v): %q, upstream %q", kind, body, splits, got.Bytes(), want.Bytes())
		}
	}
}

// TestBodyCanonicalizersAsUpstream: every split of bodies made of the
// bytes a canonicalizer treats apart.
func TestBodyCanonicalizersAsUpstream(t *testing.T) {
	for _, body := range []string{
		"", "\r", "\n", "\r\n", "\r\r\n", "\n\r", "a\r", "a\r\r", "a\r\n\r\n", "a\r\n\r\nb", "a \r\n \r\n\tb \r\n",
		"a\rb\r\n\r\n\r", "a\r\n\r\n\r\r\nb", "a\n\n\nb\n\n", " \r \n \r\n x\r\n\r\n", "a\r\r\r\n\n\rb\r\n",
	} {
		checkBodyAsUpstream(t, []byte(body), nil)
		for i := 0; i <= len(body); i++ {
			for j := 0; j <= len(body)-i; j++ {
				checkBodyAsUpstream(t, []byte(body), []int{i, j})
			}
		}
	}
}

func FuzzBodyCanonicalizersAsUpstream(f *testing.F) {
	f.Add([]byte("a\r\n\r\n\r\r\nb \r\n"), uint8(3), uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, first, second uint8) {
		checkBodyAsUpstream(t, body, []int{int(first), int(second)})
	})
}

// TestRunsOfEmptyLinesCostLittle: a body of 4 MB of empty lines, written
// as io.Copy writes it, is canonicalized at about one copy of it (the
// LF fixer's), not with the run held or copied at every write.
func TestRunsOfEmptyLinesCostLittle(t *testing.T) {
	body := bytes.Repeat([]byte("\r\n"), 2<<20)
	body = append(body, "end\r\n"...)
	for _, c := range []canonicalizer{new(simpleCanonicalizer), new(relaxedCanonicalizer)} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		wc := c.CanonicalizeBody(io.Discard)
		for b := body; len(b) > 0; {
			n := 32 << 10
			if n > len(b) {
				n = len(b)
			}
			wc.Write(b[:n])
			b = b[n:]
		}
		wc.Close()
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 3*uint64(len(body)) {
			t.Errorf("%T: %d bytes allocated for a body of %d", c, alloc, len(body))
		}
	}
}
