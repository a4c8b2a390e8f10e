package smtpd

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzNewlineWriter: normalising a body while it streams to the spool, in
// writes cut anywhere, gives the bytes and the bare count normalizeNewlines
// gives the body held in memory (bare CR/LF handling is hardening against
// SMTP smuggling: the two paths must not differ).
func FuzzNewlineWriter(f *testing.F) {
	for _, s := range []string{"", "a\r\nb\r\n", "\r", "\n", "a\rb\nc\r\n", "\r\r\n\n", "x\r", ".\n.\r\n", "a\r\r\r\nb", "a\r\rb\r"} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		want, wantBare := normalizeNewlines(bytes.Clone(in))
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		nw := &newlineWriter{w: bw}
		step := int(cut)%7 + 1
		for i := 0; i < len(in); i += step {
			nw.Write(in[i:min(i+step, len(in))])
		}
		if err := nw.flush(); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		if !bytes.Equal(out.Bytes(), want) || nw.bare != wantBare || nw.n != int64(len(want)) {
			t.Fatalf("streamed %q (bare %d, n %d), in memory %q (bare %d)", out.Bytes(), nw.bare, nw.n, want, wantBare)
		}
	})
}

// normalizeByteByByte is the plain reference normalizeNewlines is checked
// against, written the other way round: a CR followed by CRs and a LF is
// dropped, any other CR becomes CRLF, an LF right after a CR was already
// written with it, any other LF becomes CRLF.
func normalizeByteByByte(b []byte) ([]byte, int) {
	var out []byte
	bare := 0
	for i, c := range b {
		switch {
		case c == '\r':
			next := i + 1
			for next < len(b) && b[next] == '\r' {
				next++
			}
			endsLine := next < len(b) && b[next] == '\n'
			if !endsLine || next == i+1 {
				out = append(out, '\r', '\n')
			}
			if !endsLine || next > i+1 {
				bare++
			}
		case c == '\n' && i > 0 && b[i-1] == '\r':
		case c == '\n':
			out = append(out, '\r', '\n')
			bare++
		default:
			out = append(out, c)
		}
	}
	return out, bare
}

// FuzzNormalizeNewlines: the bulk count that lets a clean body through
// untouched agrees with the byte-by-byte reference on every input.
func FuzzNormalizeNewlines(f *testing.F) {
	for _, s := range []string{"", "a\r\nb\r\n", "\r", "\n", "\r\n", "\n\r", "a\rb\nc\r\n", "\r\r\n\n", ".\n.\r\n", "\r\n\r", "a\r\r\r\nb", "a\r\rb\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, bare := normalizeNewlines(bytes.Clone(in))
		want, wantBare := normalizeByteByByte(in)
		if !bytes.Equal(got, want) || bare != wantBare {
			t.Fatalf("normalizeNewlines(%q) = %q, %d bare; want %q, %d", in, got, bare, want, wantBare)
		}
		if bare == 0 && !bytes.Equal(got, in) {
			t.Fatalf("clean body %q changed to %q", in, got)
		}
	})
}
