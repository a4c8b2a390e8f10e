package smtp

import (
	"bufio"
	"bytes"
	"io"
	"net/textproto"
	"strings"
	"testing"
)

// writeReplyReference is upstream's writeResponse body: one PrintfLine,
// and so one flush, per line.
func writeReplyReference(t *textproto.Writer, code int, enhCode EnhancedCode, text []string) {
	text = strings.Split(strings.Join(text, "\n"), "\n")
	lastLineIndex := len(text) - 1
	for i := 0; i < lastLineIndex; i++ {
		t.PrintfLine("%d-%v", code, text[i])
	}
	if enhCode == NoEnhancedCode {
		t.PrintfLine("%d %v", code, text[lastLineIndex])
	} else {
		t.PrintfLine("%d %v.%v.%v %v", code, enhCode[0], enhCode[1], enhCode[2], text[lastLineIndex])
	}
}

// writeCounter counts the writes that reach it.
type writeCounter struct {
	bytes.Buffer
	writes int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

// compareReplies renders a reply both ways: the same bytes, and ours in
// one write when it fits the buffer.
func compareReplies(t *testing.T, code int, enh EnhancedCode, text []string) {
	t.Helper()
	var want bytes.Buffer
	writeReplyReference(textproto.NewWriter(bufio.NewWriter(&want)), code, enh, text)
	var got writeCounter
	w := bufio.NewWriter(&got)
	writeReply(w, code, enh, text)
	w.Flush()
	if got.String() != want.String() {
		t.Fatalf("writeReply(%d, %v, %q) = %q, want %q", code, enh, text, got.String(), want.String())
	}
	if got.Len() <= w.Size() && got.writes != 1 {
		t.Fatalf("writeReply(%d, %v, %q): %d writes, want 1", code, enh, text, got.writes)
	}
}

func TestWriteReplyOneWrite(t *testing.T) {
	for _, tc := range []struct {
		code int
		enh  EnhancedCode
		text []string
	}{
		{250, NoEnhancedCode, []string{"mx.example Hello", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE 26214400", "SMTPUTF8", "CHUNKING"}},
		{250, EnhancedCode{2, 0, 0}, []string{"ok"}},
		{550, EnhancedCode{5, 7, 1}, []string{"first\nsecond", "third"}},
		{421, EnhancedCode{4, 0, 0}, []string{""}},
		{220, NoEnhancedCode, []string{"mx.example ESMTP Service Ready"}},
		{354, NoEnhancedCode, nil},
	} {
		compareReplies(t, tc.code, tc.enh, tc.text)
	}
}

// A one-line reply, what every command but EHLO gets, allocates nothing
// (mxgrid patch).
func TestWriteReplyAllocatesNothing(t *testing.T) {
	w := bufio.NewWriter(io.Discard)
	text := []string{"2.0.0 Roger, accepting mail from <sender@example.org>"}
	if n := testing.AllocsPerRun(100, func() { writeReply(w, 250, EnhancedCode{2, 0, 0}, text) }); n != 0 {
		t.Errorf("writeReply allocated %.0f times, want 0", n)
	}
}

func FuzzWriteReplyMatchesReference(f *testing.F) {
	f.Add(250, 2, 0, 0, "mx.example Hello\nPIPELINING\nSIZE 1000")
	f.Add(550, -1, -1, -1, "no\n\nyes")
	f.Fuzz(func(t *testing.T, code, a, b, c int, text string) {
		compareReplies(t, code, EnhancedCode{a, b, c}, strings.Split(text, "\x00"))
	})
}
