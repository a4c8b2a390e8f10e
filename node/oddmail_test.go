package node_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/smtpd"
)

// TestOddRealMailIsDeliveredAsSent: legitimate mail of the shapes real
// mailboxes hold and a filter meets rarely (testdata/oddmail, written for
// these tests: calendar invitations, S/MIME and OpenPGP signed and
// encrypted mail, TNEF, AppleDouble, bounces, forwards four deep, UTF-16,
// ISO-2022-JP, cp932 and other charsets, 8-bit header fields, bare LF, no
// final line end, a header and no body, lines past 998 octets) goes
// through a node with its real checks: 250, untagged, and relayed byte for
// byte behind our trace and authentication fields, which are well formed.
// A charset the parser did not know (cp932) got the message tagged.
func TestOddRealMailIsDeliveredAsSent(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "oddmail", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	n, sink := nodetest.StartWithSink(t, nil)
	ours := []string{"Received:", "Authentication-Results:"}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			before := len(sink.Messages())
			start := time.Now()
			code, text := smtptest.Send(t, n.SMTPAddr(), "alice@sender.example", "bob@example.org", raw)
			// Generous: a small message scans in milliseconds; this
			// catches a parse that goes quadratic, not a slow machine.
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %v", took)
			}
			if code != 250 {
				t.Fatalf("answered %d %s, want 250", code, text)
			}
			msgs := sink.Messages()
			if len(msgs) != before+1 {
				t.Fatalf("customer server got %d messages, want 1", len(msgs)-before)
			}
			got := msgs[len(msgs)-1].Data
			// Bare line ends arrive as CRLF (smtp.bare_newline: normalize),
			// and the last line ends in one.
			want := smtpd.NormalizeNewlines(raw)
			if !bytes.HasSuffix(want, []byte("\r\n")) {
				want = append(want, "\r\n"...)
			}
			if !bytes.HasSuffix(got, want) {
				t.Fatalf("relayed\n%q\nwant our fields, then the message as sent\n%q", got, want)
			}
			head := strings.TrimSuffix(string(got[:len(got)-len(want)]), "\r\n")
			for _, line := range strings.Split(head, "\r\n") {
				folded := strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")
				switch {
				case len(line) > 998:
					t.Errorf("our field's line of %d octets", len(line))
				case folded && strings.TrimSpace(line) == "":
					t.Errorf("our field has a line of blanks alone: %q", head)
				case !folded && !hasPrefixAny(line, ours):
					t.Errorf("prepended %q, want only %v (the message was tagged?)", line, ours)
				}
			}
		})
	}
}

func hasPrefixAny(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
