package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
)

var errConnBroken = errors.New("connection broken")

// recordingConn records each write it is given, as a connection would see
// them, and fails once it has taken failAfter bytes (never if negative).
type recordingConn struct {
	writes    []string
	taken     int
	failAfter int
}

func (c *recordingConn) Write(p []byte) (int, error) {
	if c.failAfter >= 0 && c.taken+len(p) > c.failAfter {
		n := c.failAfter - c.taken
		c.taken += n
		c.writes = append(c.writes, string(p[:n]))
		return n, errConnBroken
	}
	c.taken += len(p)
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

// writePlan is one way of writing a body: how it is split into Write
// calls, the bufio.Writer's size and where the connection breaks. Both
// writers of a differential run get the same plan.
type writePlan struct {
	maxWrite  int // Write calls of 1..maxWrite bytes; 0: one call
	bufSize   int
	failAfter int // -1: never
	seed      int64
}

func newWritePlan(seed int64, inLen int) writePlan {
	rng := rand.New(rand.NewSource(seed))
	p := writePlan{
		maxWrite:  []int{0, 1, 2, 3, 7, 64, 5000}[rng.Intn(7)],
		bufSize:   []int{16, 17, 31, 64, 4096}[rng.Intn(5)],
		failAfter: -1,
		seed:      seed,
	}
	if rng.Intn(3) == 0 {
		p.failAfter = rng.Intn(2*inLen + 8)
	}
	return p
}

type writeStep struct {
	n   int
	err error
}

// run writes in through the dot writer newWriter makes, then closes it,
// and returns every call's outcome and the connection's writes.
func (p writePlan) run(in []byte, newWriter func(*bufio.Writer) io.WriteCloser) ([]writeStep, []string) {
	conn := &recordingConn{failAfter: p.failAfter}
	w := newWriter(bufio.NewWriterSize(conn, p.bufSize))
	sizes := rand.New(rand.NewSource(p.seed + 1))
	var steps []writeStep
	for len(in) > 0 {
		k := len(in)
		if p.maxWrite > 0 {
			if k = 1 + sizes.Intn(p.maxWrite); k > len(in) {
				k = len(in)
			}
		}
		n, err := w.Write(in[:k])
		steps = append(steps, writeStep{n, err})
		in = in[k:]
	}
	steps = append(steps, writeStep{-1, w.Close()})
	return steps, conn.writes
}

func newBulkDotWriter(bw *bufio.Writer) io.WriteCloser { return &dotWriter{w: bw} }

// textprotoDotWriter is the writer Client.Data used before (PATCHES.md),
// one WriteByte per byte, with a dot sent before a line's first octet that
// is a control as before one that is a dot: the reference.
func textprotoDotWriter(bw *bufio.Writer) io.WriteCloser {
	return &controlStuffing{bw: bw, dot: textproto.NewWriter(bw).DotWriter(), atStart: true}
}

// controlStuffing feeds its DotWriter one octet at a time, and writes a dot
// to the buffer before an octet that starts a line (the body's first, or
// one after an LF, bare or not) when stuffedControl takes it, as the
// DotWriter writes its own before a leading dot: an error sticks in the
// buffer and the next octet's write returns it.
type controlStuffing struct {
	bw      *bufio.Writer
	dot     io.WriteCloser
	atStart bool
}

func (c *controlStuffing) Write(b []byte) (n int, err error) {
	for n < len(b) {
		if c.atStart && stuffedControl(b[n]) {
			c.bw.WriteByte('.')
		}
		var m int
		m, err = c.dot.Write(b[n : n+1])
		n += m
		if err != nil {
			return n, err
		}
		c.atStart = b[n-1] == '\n'
	}
	return n, nil
}

func (c *controlStuffing) Close() error { return c.dot.Close() }

// diffDotWriter fails unless both writers return the same counts and
// errors from every Write and Close under the plan and hand the connection
// the same writes.
func diffDotWriter(t *testing.T, in []byte, p writePlan) {
	t.Helper()
	got, gotConn := p.run(in, newBulkDotWriter)
	want, wantConn := p.run(in, textprotoDotWriter)
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotConn, wantConn) {
		t.Fatalf("input %q, plan %+v:\nbulk %v, conn %q\ntextproto %v, conn %q", in, p, got, gotConn, want, wantConn)
	}
}

// dotWriterInputs are bodies around every state of the writer: dots at line
// starts, bare CR and LF, "\r\r\n", no final line end, lines longer than
// any buffer.
var dotWriterInputs = []string{
	"",
	".",
	"a",
	"a\r\n",
	"a\r",
	"a\n",
	".\r\n",
	"..\r\n.a\r\n...\r\n",
	"a\r\n.\r\nb\r\n",
	"a\n.\nb",
	"a\r\r\n.b",
	"a\rb\r\r\rc\r\n",
	"\r\n\r\n.",
	"a\r\n.\r",
	strings.Repeat("x", 5000) + "\r\n.\r\n",
	strings.Repeat("y\r", 300) + ".",
	strings.Repeat(".\n", 300),
	"\x00.\r\n",
	"a\r\n\x00.\r\nb\r\n\x01\x00.\x00\r\n",
	"\x7f\n\x1f.\r\x00.\r\n\t.\r\n \x00\r\n",
	strings.Repeat("\x00.\n", 300),
}

// TestDotWriterMatchesTextproto: the bulk writer behaves as textproto's
// DotWriter, call by call and write by write, however the body is split,
// whatever the buffer size and wherever the connection breaks.
func TestDotWriterMatchesTextproto(t *testing.T) {
	inputs := append([]string(nil), dotWriterInputs...)
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 1000; i++ {
		b := randomBody(rng)
		if rng.Intn(2) == 0 {
			b = bytes.ReplaceAll(b, []byte("\r\n.\r\n"), nil)
		}
		if rng.Intn(2) == 0 {
			b = bytes.ReplaceAll(b, []byte("x"), []byte("\x00"))
		}
		inputs = append(inputs, string(b))
	}
	for i, in := range inputs {
		for seed := int64(0); seed < 10; seed++ {
			diffDotWriter(t, []byte(in), newWritePlan(int64(i)*100+seed, len(in)))
		}
	}
}

func FuzzDotWriter(f *testing.F) {
	for i, in := range dotWriterInputs {
		f.Add([]byte(in), int64(i))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed int64) {
		diffDotWriter(t, in, newWritePlan(seed, len(in)))
	})
}

func (s writeStep) String() string { return fmt.Sprintf("%d %v", s.n, s.err) }

// BenchmarkDotWriter writes a body through a dot writer into a bufio.Writer
// of the client's default size in 32 KiB writes, as the relay copies a
// message, and closes it.
func BenchmarkDotWriter(b *testing.B) {
	for _, size := range benchSizes {
		body := benchBody(size.size)
		for _, impl := range []struct {
			name string
			new  func(*bufio.Writer) io.WriteCloser
		}{{"bulk", newBulkDotWriter}, {"textproto", func(bw *bufio.Writer) io.WriteCloser { return textproto.NewWriter(bw).DotWriter() }}} {
			b.Run(size.name+"/"+impl.name, func(b *testing.B) {
				bw := bufio.NewWriter(io.Discard)
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					w := impl.new(bw)
					for rest := body; len(rest) > 0; {
						k := 32 << 10
						if k > len(rest) {
							k = len(rest)
						}
						if _, err := w.Write(rest[:k]); err != nil {
							b.Fatal(err)
						}
						rest = rest[k:]
					}
					if err := w.Close(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
