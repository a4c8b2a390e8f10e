package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/tenant"
)

// TestQuarantineCommands: the binary lists a held message, releases it
// once (the customer receives it), and a second release exits 1 with the
// API's reason.
func TestQuarantineCommands(t *testing.T) {
	tokFile := filepath.Join(t.TempDir(), "operator.token")
	if err := os.WriteFile(tokFile, []byte(adminCLIToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sink := smtptest.StartSink(t)
	cfg := nodetest.Config(t)
	cfg.Admin.OperatorTokenFile = tokFile
	d := nodetest.Domain("example.org", sink.Addr)
	q := tenant.TagQuarantine
	d.Policy.TagAction = &q
	cfg.Domains = append(cfg.Domains, d)
	n := nodetest.Start(t, cfg, []scanner.Stage{{Check: nodetest.TagBand{}}})
	if code, msg := smtptest.Send(t, n.SMTPAddr(), "x@sender.example", "bob@example.org", []byte("Subject: Invoice 7 TAGME\r\n\r\nPay.\r\n")); code != 250 {
		t.Fatalf("send: %d %s", code, msg)
	}
	mx := func(args ...string) (string, string, int) {
		cmd := exec.Command(binary, append(args, "-token-file", tokFile)...)
		cmd.Env = append(os.Environ(), "MXGRID_API=http://"+n.HTTPAddr())
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	out, errOut, code := mx("quarantine", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.Contains(lines[1], "held") || !strings.Contains(lines[1], "Invoice 7") {
		t.Fatalf("quarantine list: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	id := strings.Fields(lines[1])[0]
	if out, errOut, code := mx("quarantine", "release", id); code != 0 || !strings.Contains(out, "released") {
		t.Fatalf("release: exit %d\n%s%s", code, out, errOut)
	}
	if got := sink.Messages(); len(got) != 1 {
		t.Fatalf("the customer has %d messages, want 1", len(got))
	}
	if _, errOut, code := mx("quarantine", "release", id); code != 1 || !strings.Contains(errOut, "no longer held") {
		t.Fatalf("second release: exit %d, stderr %q", code, errOut)
	}
	if _, _, code := mx("quarantine", "create"); code != 2 {
		t.Fatalf("quarantine create: exit %d, want a usage error", code)
	}
	if len(sink.Messages()) != 1 {
		t.Fatal("the second release delivered again")
	}
}
