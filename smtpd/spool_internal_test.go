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
	for _, s := range []string{"", "a\r\nb\r\n", "\r", "\n", "a\rb\nc\r\n", "\r\r\n\n", "x\r", ".\n.\r\n"} {
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
