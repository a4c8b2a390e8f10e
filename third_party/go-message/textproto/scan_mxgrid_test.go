package textproto

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// scanUntilBoundaryReference is scanUntilBoundary as upstream wrote it
// (with this copy's matchAfterPrefix): a line that starts as the
// delimiter and goes on ends what one call returns.
func scanUntilBoundaryReference(buf, dashBoundary, nlDashBoundary []byte, total int64, readErr error) (int, error) {
	if total == 0 {
		if bytes.HasPrefix(buf, dashBoundary) {
			switch matchAfterPrefix(buf, dashBoundary, readErr) {
			case -1:
				return len(dashBoundary), nil
			case 0:
				return 0, nil
			case +1:
				return 0, io.EOF
			}
		}
		if bytes.HasPrefix(dashBoundary, buf) {
			return 0, readErr
		}
	}
	if i := bytes.Index(buf, nlDashBoundary); i >= 0 {
		switch matchAfterPrefix(buf[i:], nlDashBoundary, readErr) {
		case -1:
			return i + len(nlDashBoundary), nil
		case 0:
			return i, nil
		case +1:
			return i, io.EOF
		}
	}
	if bytes.HasPrefix(nlDashBoundary, buf) {
		return 0, readErr
	}
	i := bytes.LastIndexByte(buf, nlDashBoundary[0])
	if i >= 0 && bytes.HasPrefix(nlDashBoundary, buf[i:]) {
		return i, nil
	}
	return len(buf), readErr
}

// scanAll calls scan as a part's reader does while it returns data and
// reads no more input: again on what is left, until it returns no data
// or an error. It returns the data and that error.
func scanAll(scan func([]byte, []byte, []byte, int64, error) (int, error), buf, dash, nlDash []byte, total int64, readErr error) (int, error) {
	n := 0
	for {
		k, err := scan(buf[n:], dash, nlDash, total+int64(n), readErr)
		n += k
		if err != nil || k == 0 {
			return n, err
		}
	}
}

// FuzzScanUntilBoundaryAsReference: a part's reader gets from
// scanUntilBoundary what it got from the reference, on any buffer: the
// same data before it must read more input, and the same error.
func FuzzScanUntilBoundaryAsReference(f *testing.F) {
	for _, s := range []string{"a\r\n--bx\r\nb\r\n--b\r\n", "--bx\r\n--b--\r\n", "x\r\n--b", "x\r\n--", "\r\n--b-", "\r\n--b--x\r\n--b \t",
		"a\n--b x\n--bb\n--b\n", "--b", "-", "", "\r\n--b\t\t\t"} {
		f.Add([]byte(s), "b", true, false, uint8(0))
		f.Add([]byte(s), "b", false, true, uint8(1))
		f.Add([]byte(s), "bb", false, false, uint8(2))
	}
	f.Fuzz(func(t *testing.T, buf []byte, boundary string, atStart, lf bool, errKind uint8) {
		if boundary == "" {
			return
		}
		nl := "\r\n"
		if lf {
			nl = "\n"
		}
		dash, nlDash := []byte("--"+boundary), []byte(nl+"--"+boundary)
		readErr := []error{nil, io.EOF, io.ErrUnexpectedEOF, bufio.ErrBufferFull}[errKind%4]
		var total int64
		if !atStart {
			total = 1
		}
		n, err := scanAll(scanUntilBoundary, buf, dash, nlDash, total, readErr)
		want, wantErr := scanAll(scanUntilBoundaryReference, buf, dash, nlDash, total, readErr)
		if n != want || err != wantErr {
			t.Fatalf("%q, boundary %q: %d bytes, %v; the reference %d, %v", buf, boundary, n, err, want, wantErr)
		}
	})
}

// TestLinesLikeTheDelimiterAreReadInBulk: a part of lines that start as
// the delimiter and go on ("--bx") is read in as few calls as any text,
// by the part and by the parts of multiparts around it. A call returned
// one such line, and each multipart around read its part's a line per
// call too: 20 MB of them ten multiparts deep cost 2 s of CPU.
func TestLinesLikeTheDelimiterAreReadInBulk(t *testing.T) {
	const lines = 10000
	var body strings.Builder
	for i := 1; i <= 3; i++ {
		body.WriteString("--" + strings.Repeat("b", i) + "\r\nContent-Type: multipart/mixed; boundary=\"" + strings.Repeat("b", i+1) + "\"\r\n\r\n")
	}
	body.WriteString("--bbbb\r\n\r\n" + strings.Repeat("--bbbbbx\r\n", lines))
	for i := 4; i >= 1; i-- {
		body.WriteString("--" + strings.Repeat("b", i) + "--\r\n")
	}
	r := NewMultipartReader(strings.NewReader(body.String()), "b")
	reads := 0
	var part *Part
	for depth := 1; depth <= 4; depth++ {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("part at depth %d: %v", depth, err)
		}
		part = p
		if depth < 4 {
			r = NewMultipartReader(countingReader{p, &reads}, strings.Repeat("b", depth+1))
		}
	}
	got, err := io.ReadAll(countingReader{part, &reads})
	if err != nil || len(got) != lines*len("--bbbbbx\r\n")-2 {
		t.Fatalf("read %d bytes, %v; want %d", len(got), err, lines*len("--bbbbbx\r\n")-2)
	}
	// Each reader fills its buffer at a time: 164 reads in all for the
	// 100 KB; a read per line and multipart was 70,047.
	if reads > 400 {
		t.Errorf("%d reads to read %d lines four multiparts deep", reads, lines)
	}
}

type countingReader struct {
	r io.Reader
	n *int
}

func (c countingReader) Read(p []byte) (int, error) {
	*c.n++
	return c.r.Read(p)
}
