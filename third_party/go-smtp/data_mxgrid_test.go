package smtp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestDataReaderKeepsBareCR covers the mxgrid patches (PATCHES.md).
func TestDataReaderKeepsBareCR(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\r\n.\rX\r\n.\r\n", "a\r\n\rX\r\n"},
		{"a\r\r\n..b\r\n.\r\n", "a\r\r\n.b\r\n"},
		{"a\r\r\n.\r\n", "a\r\r\n"},
		{"a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n"},
	} {
		r := &dataReader{r: bufio.NewReader(strings.NewReader(tc.in))}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// byteDataReader is dataReader.Read as it was before the bulk copy of a
// line's middle (PATCHES.md), one ReadByte per byte: the reference the
// differential tests and the benchmark compare against.
type byteDataReader dataReader

func (r *byteDataReader) Read(b []byte) (n int, err error) {
	if r.limited {
		if r.n <= 0 {
			r.limited = false
			defer func() { r.limited = true }()
			return readPastLimit(r.Read)
		}
		if int64(len(b)) > r.n {
			b = b[0:r.n]
		}
	}
	const (
		stateBeginLine = iota
		stateDot
		stateDotCR
		stateCR
		stateData
		stateEOF
	)
	for n < len(b) && r.state != stateEOF {
		var c byte
		c, err = r.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			break
		}
		switch r.state {
		case stateBeginLine:
			if c == '.' {
				r.state = stateDot
				continue
			}
			if c == '\r' {
				r.state = stateCR
				break
			}
			r.state = stateData
		case stateDot:
			if c == '\r' {
				r.state = stateDotCR
				continue
			}
			r.state = stateData
		case stateDotCR:
			if c == '\n' {
				r.state = stateEOF
				continue
			}
			_ = r.r.UnreadByte()
			c = '\r'
			r.state = stateCR
		case stateCR:
			if c == '\n' {
				r.state = stateBeginLine
				break
			}
			if c != '\r' {
				r.state = stateData
			}
		case stateData:
			if c == '\r' {
				r.state = stateCR
			}
		}
		b[n] = c
		n++
	}
	if err == nil && r.state == stateEOF {
		err = io.EOF
	}
	if r.limited {
		r.n -= int64(n)
	}
	return
}

// chunkReader hands out its data 1 to max bytes at a time, the sizes drawn
// from rng: a connection delivering a body in arbitrary segments.
type chunkReader struct {
	data []byte
	max  int
	rng  *rand.Rand
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	k := 1 + r.rng.Intn(r.max)
	if k > len(p) {
		k = len(p)
	}
	if k > len(r.data) {
		k = len(r.data)
	}
	n := copy(p, r.data[:k])
	r.data = r.data[n:]
	return n, nil
}

// readPlan is one way of delivering and reading a body: how the connection
// splits it, the bufio.Reader's size, the message size limit and the sizes
// of the buffers Read is given. Both readers of a differential run get the
// same plan.
type readPlan struct {
	src     int // 0 whole, 1 one byte, 2 half, 3 data with EOF, 4 chunks
	chunk   int // chunkReader's max
	bufSize int
	limit   int64 // 0: none
	dst     int   // fixed destination size; 0: random 1..64
	seed    int64
}

func newReadPlan(seed int64, inLen int) readPlan {
	rng := rand.New(rand.NewSource(seed))
	p := readPlan{
		src:     rng.Intn(5),
		chunk:   1 + rng.Intn(40),
		bufSize: []int{16, 17, 31, 64, 4096}[rng.Intn(5)],
		dst:     []int{0, 1, 2, 3, 7, 16, 4096}[rng.Intn(7)],
		seed:    seed,
	}
	if rng.Intn(3) == 0 {
		p.limit = int64(rng.Intn(inLen + 2))
	}
	return p
}

func (p readPlan) conn(in []byte) io.Reader {
	var r io.Reader = bytes.NewReader(in)
	switch p.src {
	case 1:
		r = iotest.OneByteReader(r)
	case 2:
		r = iotest.HalfReader(r)
	case 3:
		r = iotest.DataErrReader(r)
	case 4:
		r = &chunkReader{data: in, max: p.chunk, rng: rand.New(rand.NewSource(p.seed))}
	}
	return r
}

type readStep struct {
	data string
	err  error
}

func (s readStep) String() string { return fmt.Sprintf("%q %v", s.data, s.err) }

// run reads a body as smtp's Conn does: until an error; after
// ErrDataTooLarge the limit is lifted and the rest drained. It returns
// every Read's outcome and what was left unread after the data (the
// session's next commands).
func (p readPlan) run(in []byte, newReader func(*bufio.Reader, int64) io.Reader) ([]readStep, string) {
	br := bufio.NewReaderSize(p.conn(in), p.bufSize)
	r := newReader(br, p.limit)
	sizes := rand.New(rand.NewSource(p.seed + 1))
	var steps []readStep
	for {
		size := p.dst
		if size == 0 {
			size = 1 + sizes.Intn(64)
		}
		b := make([]byte, size)
		n, err := r.Read(b)
		steps = append(steps, readStep{string(b[:n]), err})
		if err == ErrDataTooLarge {
			switch r := r.(type) {
			case *dataReader:
				r.limited = false
			case *byteDataReader:
				r.limited = false
			}
			continue
		}
		if err != nil {
			break
		}
	}
	rest, _ := io.ReadAll(br)
	return steps, string(rest)
}

func newBulkReader(br *bufio.Reader, limit int64) io.Reader {
	return &dataReader{r: br, limited: limit > 0, n: limit}
}

func newByteReader(br *bufio.Reader, limit int64) io.Reader {
	return &byteDataReader{r: br, limited: limit > 0, n: limit}
}

// diffDataReader fails unless both readers return the same bytes and
// errors from every Read under the plan and leave the same bytes unread.
func diffDataReader(t *testing.T, in []byte, p readPlan) {
	t.Helper()
	got, gotRest := p.run(in, newBulkReader)
	want, wantRest := p.run(in, newByteReader)
	if !reflect.DeepEqual(got, want) || gotRest != wantRest {
		t.Fatalf("input %q, plan %+v:\nbulk reads %v, left %q\nbyte reads %v, left %q", in, p, got, gotRest, want, wantRest)
	}
}

// dataReaderInputs are bodies around every state of the reader: dots at
// line starts, bare CR and LF, ".\r" without "\n", a missing or early end
// marker, commands after it, lines longer than any buffer.
var dataReaderInputs = []string{
	"",
	".\r\n",
	"a\r\n.\r\n",
	"a\r\n.\r\nQUIT\r\n",
	"..\r\n...\r\n.a\r\n.\r\nRSET\r\n",
	"a\r\n.\rX\r\n.\r\n",
	"a\r\r\n..b\r\n.\r\n",
	"a\r\r\n.\r\n",
	"a\r\n.\r\r\n.\r\n",
	"\r\n.\r\n",
	"abc\nxyz\n.\n.\r\n",
	"abc\n.\r\n",
	"a\r\n.\r",
	"a\r\n.",
	"abc",
	"a\rb\rc\r\n\r\r\r.\r\n",
	strings.Repeat("x", 5000) + "\r\n.\r\nNOOP\r\n",
	strings.Repeat("y\r", 300) + "\r\n.\r\n",
}

// randomBody is a body of mostly letters with many CRs, LFs and dots, an
// end marker somewhere or nowhere, and sometimes commands after it.
func randomBody(rng *rand.Rand) []byte {
	const alphabet = "aaaaabcd\r\r\n\n...x "
	b := make([]byte, rng.Intn(300))
	for i := range b {
		b[i] = alphabet[rng.Intn(len(alphabet))]
	}
	if rng.Intn(4) != 0 {
		at := rng.Intn(len(b) + 1)
		b = append(b[:at:at], append([]byte("\r\n.\r\n"), b[at:]...)...)
	}
	return b
}

// TestDataReaderBulkMatchesByteReader: the bulk reader returns what the byte
// reader did, Read by Read, under every kind of delivery, buffer, limit and
// destination size, including an end marker on each side of a buffer
// boundary.
func TestDataReaderBulkMatchesByteReader(t *testing.T) {
	inputs := append([]string(nil), dataReaderInputs...)
	for pad := 0; pad < 40; pad++ {
		inputs = append(inputs, "a\r\n"+strings.Repeat("z", pad)+"\r\n.\r\nNEXT\r\n", strings.Repeat("q", pad)+"\r\n.\rX\r\n.\r\n")
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 1000; i++ {
		inputs = append(inputs, string(randomBody(rng)))
	}
	for i, in := range inputs {
		for seed := int64(0); seed < 10; seed++ {
			diffDataReader(t, []byte(in), newReadPlan(int64(i)*100+seed, len(in)))
		}
	}
}

func FuzzDataReader(f *testing.F) {
	for i, in := range dataReaderInputs {
		f.Add([]byte(in), int64(i))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed int64) {
		diffDataReader(t, in, newReadPlan(seed, len(in)))
	})
}

// benchBody is a size-byte message body as mail carries it: 76-character
// lines (base64), CRLF-terminated, a few starting with a dot.
func benchBody(size int) []byte {
	line := []byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n")
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		if i%20 == 0 {
			b.WriteByte('.')
		}
		b.Write(line)
	}
	return b.Bytes()[:size]
}

// benchSizes are the benchmark's message: bench-smtp.sh's 5 KB and a large
// one.
var benchSizes = []struct {
	name string
	size int
}{{"5KB", 5 << 10}, {"1MB", 1 << 20}}

// BenchmarkDataReader reads a body and its end marker from a bufio.Reader
// of go-smtp's size through 32 KiB reads, as the server's backend does.
func BenchmarkDataReader(b *testing.B) {
	for _, size := range benchSizes {
		body := benchBody(size.size)
		body = append(body[:len(body)-2:len(body)-2], "\r\n.\r\n"...)
		for _, impl := range []struct {
			name string
			new  func(*bufio.Reader, int64) io.Reader
		}{{"bulk", newBulkReader}, {"byte", newByteReader}} {
			b.Run(size.name+"/"+impl.name, func(b *testing.B) {
				src := bytes.NewReader(body)
				br := bufio.NewReader(src)
				buf := make([]byte, 32<<10)
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					src.Reset(body)
					br.Reset(src)
					r := impl.new(br, 0)
					for {
						if _, err := r.Read(buf); err == io.EOF {
							break
						} else if err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// TestMessageOfExactlyTheSizeLimit: a message of exactly MaxMessageBytes
// octets, the SIZE the server offers and the most BDAT takes, is taken
// through DATA too, and one octet more is refused. Upstream refused it
// 552, a permanent failure for mail the sender had been told fits: the
// reader returned ErrDataTooLarge as soon as the limit was reached,
// before it looked at the end-of-data line. What counts is the message,
// not its dot-stuffing.
func TestMessageOfExactlyTheSizeLimit(t *testing.T) {
	const limit = 1000
	// body is a message of n octets; its last line starts with a dot when
	// stuffed is set (sent as ".." on the wire, so one octet more there).
	body := func(n int, stuffed bool) string {
		last := "x\r\n"
		if stuffed {
			last = ".x\r\n"
		}
		head := "Subject: size\r\n\r\n"
		return head + strings.Repeat("y", n-len(head)-len(last)) + last
	}
	for _, tc := range []struct {
		name    string
		size    int
		bdat    bool
		stuffed bool
		want    string
	}{
		{name: "DATA one under", size: limit - 1, want: "250 "},
		{name: "DATA at the limit", size: limit, want: "250 "},
		{name: "DATA at the limit, last line dot-stuffed", size: limit, stuffed: true, want: "250 "},
		{name: "DATA one over", size: limit + 1, want: "552 "},
		{name: "DATA one over, last line dot-stuffed", size: limit + 1, stuffed: true, want: "552 "},
		{name: "BDAT at the limit", size: limit, bdat: true, want: "250 "},
		{name: "BDAT one over", size: limit + 1, bdat: true, want: "552 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := NewServer(BackendFunc(func(*Conn) (Session, error) { return acceptingSession{}, nil }))
			s.Domain = "localhost"
			s.MaxMessageBytes = limit
			go s.Serve(l)
			defer s.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			// reply reads one reply and returns its last line.
			reply := func() string {
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						t.Fatalf("reading a reply: %v", err)
					}
					if len(line) < 4 || line[3] != '-' {
						return line
					}
				}
			}
			msg := body(tc.size, tc.stuffed)
			if len(msg) != tc.size {
				t.Fatalf("test body of %d octets, want %d", len(msg), tc.size)
			}
			reply()
			for _, cmd := range []string{"EHLO c.test", "MAIL FROM:<a@example.org> SIZE=" + fmt.Sprint(limit), "RCPT TO:<b@example.org>"} {
				fmt.Fprintf(c, "%s\r\n", cmd)
				if got := reply(); !strings.HasPrefix(got, "250 ") {
					t.Fatalf("%s: %q", cmd, got)
				}
			}
			if tc.bdat {
				fmt.Fprintf(c, "BDAT %d LAST\r\n%s", len(msg), msg)
			} else {
				fmt.Fprint(c, "DATA\r\n")
				if got := reply(); !strings.HasPrefix(got, "354 ") {
					t.Fatalf("DATA: %q", got)
				}
				wire := strings.ReplaceAll(msg, "\r\n.", "\r\n..")
				fmt.Fprintf(c, "%s.\r\n", wire)
			}
			if got := reply(); !strings.HasPrefix(got, tc.want) {
				t.Errorf("message of %d octets: %q, want %s", tc.size, got, tc.want)
			}
			// The body was read to its end: the next command is one.
			fmt.Fprint(c, "NOOP\r\n")
			if got := reply(); !strings.HasPrefix(got, "250 ") {
				t.Errorf("NOOP after the message: %q", got)
			}
		})
	}
}
