package dkim

import (
	"io"
	"strings"
)

// Canonicalization is a canonicalization algorithm.
type Canonicalization string

const (
	CanonicalizationSimple  Canonicalization = "simple"
	CanonicalizationRelaxed                  = "relaxed"
)

type canonicalizer interface {
	CanonicalizeHeader(s string) string
	CanonicalizeBody(w io.Writer) io.WriteCloser
}

var canonicalizers = map[Canonicalization]canonicalizer{
	CanonicalizationSimple:  new(simpleCanonicalizer),
	CanonicalizationRelaxed: new(relaxedCanonicalizer),
}

// crlfFixer fixes any lone LF without a preceding CR.
type crlfFixer struct {
	cr bool
}

func (cf *crlfFixer) Fix(b []byte) []byte {
	res := make([]byte, 0, len(b))
	for _, ch := range b {
		prevCR := cf.cr
		cf.cr = false
		switch ch {
		case '\r':
			cf.cr = true
		case '\n':
			if !prevCR {
				res = append(res, '\r')
			}
		}
		res = append(res, ch)
	}
	return res
}

type simpleCanonicalizer struct{}

func (c *simpleCanonicalizer) CanonicalizeHeader(s string) string {
	return s
}

// lineEnds holds back the line ends a body canonicalizer has not written
// yet, as a count: a run of empty lines is written only once something
// follows it. Upstream kept the run in a buffer, which the simple
// canonicalizer copied and searched at every write (time quadratic in the
// run: 4 MB of empty lines cost seconds of CPU and gigabytes of garbage
// per signature) and the relaxed one held whole.
type lineEnds struct {
	crlfs int
	// cr: a CR after them, whose LF may come next.
	cr bool
	// rest: what followed a CR that no LF did (relaxed only, and never in
	// a body already normalised to CRLF), verbatim.
	rest []byte
}

// crlfRun is written as many times as a run of line ends needs.
var crlfRun = []byte(strings.Repeat(crlf, 2048))

// add holds back one CR or LF.
func (e *lineEnds) add(ch byte) {
	switch {
	case len(e.rest) > 0:
		e.rest = append(e.rest, ch)
	case e.cr && ch == '\n':
		e.crlfs++
		e.cr = false
	case e.cr:
		e.rest = append(e.rest, '\r', ch)
		e.cr = false
	case ch == '\r':
		e.cr = true
	default:
		e.rest = append(e.rest, ch)
	}
}

func (e *lineEnds) pending() bool { return e.crlfs > 0 || e.cr || len(e.rest) > 0 }

// flush writes what is held back, in order, and forgets it.
func (e *lineEnds) flush(w io.Writer) error {
	for e.crlfs > 0 {
		n := len(crlfRun) / 2
		if e.crlfs < n {
			n = e.crlfs
		}
		if _, err := w.Write(crlfRun[:2*n]); err != nil {
			return err
		}
		e.crlfs -= n
	}
	if e.cr {
		e.cr = false
		if _, err := w.Write([]byte{'\r'}); err != nil {
			return err
		}
	}
	if len(e.rest) > 0 {
		if _, err := w.Write(e.rest); err != nil {
			return err
		}
		e.rest = e.rest[:0]
	}
	return nil
}

type simpleBodyCanonicalizer struct {
	w         io.Writer
	ends      lineEnds
	crlfFixer crlfFixer
}

func (c *simpleBodyCanonicalizer) Write(b []byte) (int, error) {
	written := len(b)
	b = c.crlfFixer.Fix(b)
	for len(b) > 0 {
		// CRLFs are held back; so is a CR until the next byte shows
		// whether it starts one. Anything else is written, after what
		// was held back.
		if c.ends.cr && b[0] != '\n' {
			// The CR held back is data, not a line end.
			if err := c.ends.flush(c.w); err != nil {
				return written, err
			}
		}
		if b[0] == '\r' || b[0] == '\n' {
			c.ends.add(b[0])
			b = b[1:]
			continue
		}
		end := 0
		for end < len(b) && b[end] != '\r' {
			end++
		}
		if err := c.ends.flush(c.w); err != nil {
			return written, err
		}
		if _, err := c.w.Write(b[:end]); err != nil {
			return written, err
		}
		b = b[end:]
	}
	return written, nil
}

func (c *simpleBodyCanonicalizer) Close() error {
	// Flush the run if it ends with a single \r (without a matching \n)
	if c.ends.cr {
		if err := c.ends.flush(c.w); err != nil {
			return err
		}
	}
	c.ends = lineEnds{}
	if _, err := c.w.Write([]byte(crlf)); err != nil {
		return err
	}
	return nil
}

func (c *simpleCanonicalizer) CanonicalizeBody(w io.Writer) io.WriteCloser {
	return &simpleBodyCanonicalizer{w: w}
}

type relaxedCanonicalizer struct{}

func (c *relaxedCanonicalizer) CanonicalizeHeader(s string) string {
	k, v, ok := strings.Cut(s, ":")
	if !ok {
		return strings.TrimSpace(strings.ToLower(s)) + ":" + crlf
	}

	k = strings.TrimSpace(strings.ToLower(k))
	v = strings.Join(strings.FieldsFunc(v, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}), " ")
	return k + ":" + v + crlf
}

type relaxedBodyCanonicalizer struct {
	w         io.Writer
	ends      lineEnds
	wsp       bool
	written   bool
	crlfFixer crlfFixer
}

func (c *relaxedBodyCanonicalizer) Write(b []byte) (int, error) {
	written := len(b)

	b = c.crlfFixer.Fix(b)

	canonical := make([]byte, 0, len(b))
	for _, ch := range b {
		if ch == ' ' || ch == '\t' {
			c.wsp = true
		} else if ch == '\r' || ch == '\n' {
			c.wsp = false
			c.ends.add(ch)
		} else {
			if c.ends.pending() {
				if _, err := c.w.Write(canonical); err != nil {
					return written, err
				}
				canonical = canonical[:0]
				if err := c.ends.flush(c.w); err != nil {
					return written, err
				}
			}
			if c.wsp {
				canonical = append(canonical, ' ')
				c.wsp = false
			}

			canonical = append(canonical, ch)
		}
	}

	if !c.written && len(canonical) > 0 {
		c.written = true
	}

	_, err := c.w.Write(canonical)
	return written, err
}

func (c *relaxedBodyCanonicalizer) Close() error {
	if c.written {
		if _, err := c.w.Write([]byte(crlf)); err != nil {
			return err
		}
	}
	return nil
}

func (c *relaxedCanonicalizer) CanonicalizeBody(w io.Writer) io.WriteCloser {
	return &relaxedBodyCanonicalizer{w: w}
}

type limitedWriter struct {
	W io.Writer
	N int64
}

func (w *limitedWriter) Write(b []byte) (int, error) {
	if w.N <= 0 {
		return len(b), nil
	}

	skipped := 0
	if int64(len(b)) > w.N {
		b = b[:w.N]
		skipped = int(int64(len(b)) - w.N)
	}

	n, err := w.W.Write(b)
	w.N -= int64(n)
	return n + skipped, err
}
