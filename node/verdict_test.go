package node_test

import (
	"bytes"
	"errors"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/testenv"
)

// TestDefaultPipelineOverSMTP sends the committed corpus sample through a
// node with its real default checks (model, rules, built-in antivirus):
// refused spam never reaches the customer, tagged mail carries the X-Spam
// headers, and ham arrives byte for byte below our prepended fields.
func TestDefaultPipelineOverSMTP(t *testing.T) {
	sink := nodetest.StartSink(t)
	cfg := nodetest.Config(t)
	cfg.Domains = append(cfg.Domains, nodetest.Domain("example.org", sink.Addr))
	n := nodetest.Start(t, cfg, nil)

	counts := map[string]int{}
	for _, kind := range []string{"spam", "ham"} {
		files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "testdata", "corpus", kind, "*.eml"))
		if err != nil || len(files) < 10 {
			t.Fatalf("%s sample: %d files, %v", kind, len(files), err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			msg := asSent(data)
			before := len(sink.Messages())
			err = smtp.SendMail(n.SMTPAddr(), nil, "sender@sender.test", []string{"bob@example.org"}, msg)
			var reply *textproto.Error
			switch {
			case err == nil:
			case errors.As(err, &reply) && reply.Code == 550 && strings.HasPrefix(reply.Msg, "5.7.1"):
				counts[kind+" rejected"]++
				if len(sink.Messages()) != before {
					t.Errorf("%s: refused but delivered", filepath.Base(f))
				}
				continue
			default:
				t.Fatalf("%s: %v", filepath.Base(f), err)
			}
			got := sink.Messages()[before].Data
			// Sender authentication is on by default; with no DNS it
			// still reports, as temperror, on every relayed message.
			if !bytes.Contains(got, []byte("\r\nAuthentication-Results: mx.test; spf=temperror")) {
				t.Errorf("%s: relayed without our Authentication-Results", filepath.Base(f))
			}
			if bytes.Contains(got, []byte("\r\nX-Spam-Flag: YES\r\n")) {
				counts[kind+" tagged"]++
				for _, h := range []string{"X-Spam-Status: Yes, score=", "X-Spam-Score: ", "X-Spam-Symbols: "} {
					if !bytes.Contains(got, []byte(h)) {
						t.Errorf("%s: tagged without %q", filepath.Base(f), h)
					}
				}
				continue
			}
			counts[kind+" delivered"]++
			if body, err := nodetest.StripPrepended(got, "Received", "Authentication-Results"); err != nil || !bytes.Equal(body, msg) {
				t.Errorf("%s: delivered message changed below our Received field", filepath.Base(f))
			}
		}
	}
	t.Logf("sample verdicts: %v", counts)
	if counts["ham rejected"] != 0 || counts["ham tagged"] > 1 {
		t.Errorf("ham refused or tagged: %v", counts)
	}
	if counts["spam rejected"] == 0 || counts["spam tagged"] == 0 || counts["spam delivered"] > 3 {
		t.Errorf("spam sample not caught as expected (some rejected, some tagged, at most 3 missed): %v", counts)
	}
}

// asSent is the message as an MTA would send it: no mbox "From " line,
// CRLF line endings.
func asSent(data []byte) []byte {
	if bytes.HasPrefix(data, []byte("From ")) {
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
}
