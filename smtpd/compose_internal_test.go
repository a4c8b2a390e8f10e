package smtpd

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgrid/mxgrid/internal/bytebudget"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/scanner"
)

// composeSession is a session as far as compose reads one.
func composeSession(log *slog.Logger) *session {
	return &session{
		srv:      &Server{cfg: Config{Hostname: "mx.bench.test"}, log: log, parser: scanner.NewParser(nil).ForSMTP()},
		conn:     &smtp.Conn{},
		clientIP: netip.MustParseAddr("192.0.2.1"),
		log:      log,
		queueID:  newQueueID(),
		rcpts:    []string{"rcpt@example.org"},
	}
}

// TestComposeRoomForTheHeaderOnlyToRewriteIt: the buffer our fields are
// written into has room for the message's header only when the header is
// written back; a clean one is relayed from the original, and room for it
// was as many bytes allocated for nothing per message.
func TestComposeRoomForTheHeaderOnlyToRewriteIt(t *testing.T) {
	long := strings.Repeat("X-Long: "+strings.Repeat("y", 70)+"\r\n", 100)
	for _, tc := range []struct {
		name    string
		raw     string
		rewrite bool
	}{
		{"clean header", long + "Subject: hi\r\n\r\nbody\r\n", false},
		{"a sender's X-Spam-Status", long + "X-Spam-Status: No\r\n\r\nbody\r\n", true},
		{"header ended by a line that is no field", long + "body\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss := composeSession(slog.New(slog.NewTextHandler(io.Discard, nil)))
			m := ss.srv.parser.Parse([]byte(tc.raw))
			head, off := ss.compose(m, scanner.Verdict{}, scanner.Policy{TagScore: 5, RejectScore: 10})
			if rewritten := off != 0 || m.HeaderUnterminated; rewritten != tc.rewrite {
				t.Fatalf("header rewritten %v, want %v", rewritten, tc.rewrite)
			}
			if strings.Contains(string(head), "X-Spam-Status") {
				t.Error("the sender's X-Spam-Status relayed")
			}
			if room := cap(head) - len(head); !tc.rewrite && room >= m.BodyOffset {
				t.Errorf("%d bytes of room left behind our %d for a header not written (%d bytes)", room, len(head), m.BodyOffset)
			}
		})
	}
}

// BenchmarkReadParseCompose is a 5 KB message's way through the session
// around the checks, as scripts/bench-smtp.sh has smtp-source send it: the
// body read, parsed, and the fields we prepend composed. One op is one
// message.
//
//	go test ./smtpd -run '^$' -bench ReadParseCompose -benchmem
func BenchmarkReadParseCompose(b *testing.B) {
	raw := testenv.SMTPSourceMessage()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sp, err := newSpool(filepath.Join(b.TempDir(), "spool"), 1<<20, 0, prometheus.NewRegistry(), log)
	if err != nil {
		b.Fatal(err)
	}
	ss := composeSession(log)
	v := scanner.Verdict{AuthResults: []string{"spf=none smtp.mailfrom=bench.test", "dkim=none", "dmarc=none header.from=bench.test"}}
	budget := bytebudget.New(1 << 30)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		res := reservation{budget: budget}
		body, err := readBody(bytes.NewReader(raw), &res, holdFactor, sp)
		if err != nil {
			b.Fatal(err)
		}
		m := body.parse(ss.srv.parser)
		if head, off := ss.compose(m, v, scanner.Policy{TagScore: 5, RejectScore: 10}); len(head) == 0 || off != 0 {
			b.Fatalf("compose = %d bytes, offset %d", len(head), off)
		}
		res.release()
	}
}

// TestRelayedReadsHeadThenRest: the message as it leaves is our fields,
// then the received message from the offset, for any reads a copy makes
// (iotest.TestReader: small reads, Read after EOF, ...).
func TestRelayedReadsHeadThenRest(t *testing.T) {
	for _, tc := range []struct{ head, rest string }{
		{"", ""},
		{"Received: x\r\n", ""},
		{"", "Subject: s\r\n\r\nbody\r\n"},
		{"Received: x\r\n", "Subject: s\r\n\r\nbody\r\n"},
	} {
		r := &relayed{head: []byte(tc.head), rest: strings.NewReader(tc.rest)}
		if err := iotest.TestReader(r, []byte(tc.head+tc.rest)); err != nil {
			t.Errorf("head %q, rest %q: %v", tc.head, tc.rest, err)
		}
	}
}

// FuzzTaggedSubjectField: whatever Subject field a sender writes (folded
// as RFC 5322 folds, blanks, 8-bit bytes), the tagged field keeps its
// value byte for byte at its end, its first line within 78 characters,
// and a reader unfolding it reads the tag, then the sender's words.
func FuzzTaggedSubjectField(f *testing.F) {
	for _, v := range []string{" quarterly report", " a|b", "|x", "quarterly", "", "   ", "\r\n folded", " a\t\t\t\tb",
		" " + strings.Repeat("w ", 60), " =?utf-8?q?x?=\r\n =?utf-8?q?y?=", " Gr\xfc\xdfe"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		// A field as the parser hands it over: line breaks are CRLF, each
		// followed by a blank (a fold), the field ended by CRLF.
		v = strings.NewReplacer("\r", "", "\n", "").Replace(v)
		v = strings.ReplaceAll(v, "|", "\r\n ")
		raw := []byte("Subject:" + v + "\r\n")
		read := func(field []byte) string {
			h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(append(append([]byte(nil), field...), "\r\n"...))))
			if err != nil {
				t.Skipf("%q is no header field: %v", field, err)
			}
			return strings.Join(strings.Fields(h.Get("Subject")), " ")
		}
		orig := read(raw)
		got := taggedSubjectField(raw, "[SPAM]")
		if !bytes.HasSuffix(got, []byte(v+"\r\n")) {
			t.Errorf("tagged %q does not end with the sender's value %q", got, v)
		}
		if first, _, _ := bytes.Cut(got, []byte("\r\n")); len(first) > 78 {
			t.Errorf("tagged %q: first line of %d characters", got, len(first))
		}
		if want := strings.TrimSpace("[SPAM] " + orig); read(got) != want {
			t.Errorf("tagged %q reads %q, want %q", got, read(got), want)
		}
	})
}
