package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/mxgrid/mxgrid/internal/apiclient"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/tenant"
)

// cli returns a runner of the binary against n's admin API with the token
// in tokFile: stdout, stderr and the exit code.
func cli(t *testing.T, n *nodetest.Node, tokFile string) func(args ...string) (string, string, int) {
	return func(args ...string) (string, string, int) {
		t.Helper()
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
}

// TestQuarantineCommands: the binary lists a held message, releases it
// once (the customer receives it), and a second release exits 1 with the
// API's reason.
func TestQuarantineCommands(t *testing.T) {
	tokFile := operatorTokenFile(t)
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
	mx := cli(t, n, tokFile)
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

// TestQuarantineReleaseAllowSender: `quarantine release --allow-sender`
// is the API's "release and allow sender": the message is delivered and
// its sender lands on the domain's allow list; a plain release leaves the
// list alone. The CLI had no way to ask for it.
func TestQuarantineReleaseAllowSender(t *testing.T) {
	tokFile := operatorTokenFile(t)
	sink := smtptest.StartSink(t)
	cfg := nodetest.Config(t)
	cfg.Admin.OperatorTokenFile = tokFile
	n := nodetest.Start(t, cfg, []scanner.Stage{{Check: nodetest.TagBand{}}})
	mx := cli(t, n, tokFile)

	// The allow list belongs to a domain in the store (a domain of the
	// config file has none the API can change).
	op, err := apiclient.New("http://"+n.HTTPAddr(), adminCLIToken, 10*time.Second, "test")
	if err != nil {
		t.Fatal(err)
	}
	res := postID(t, op, "/api/v1/resellers", map[string]any{"name": "R"})
	cust := postID(t, op, "/api/v1/customers", map[string]any{"name": "C", "reseller_id": res})
	dom := strconv.FormatInt(postID(t, op, "/api/v1/domains", map[string]any{"name": "allow.example", "customer_id": cust,
		"route": sink.Addr, "tls": "none", "policy": map[string]any{"tag_action": "quarantine"}}), 10)
	// The node applies the change within its sync and refuses the
	// domain's mail until then; from the first 250 on, its policy holds it.
	hold := func(t *testing.T, sender string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, reply := smtptest.Send(t, n.SMTPAddr(), sender, "bob@allow.example", []byte("Subject: TAGME\r\n\r\nx\r\n"))
			if code == 250 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("allow.example never accepted mail: %d %s", code, reply)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	for _, tt := range []struct {
		name, sender string
		flags        []string
		allowed      bool
	}{
		{"plain release", "news@one.example", nil, false},
		{"release and allow sender", "News@Two.example", []string{"--allow-sender"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hold(t, tt.sender)
			out, errOut, code := mx("quarantine", "list", "-search", tt.sender, "-state", "held", "-json")
			var held []struct{ ID int64 }
			if err := json.Unmarshal([]byte(out), &held); code != 0 || err != nil || len(held) == 0 {
				t.Fatalf("quarantine list: exit %d, %v\n%s%s", code, err, out, errOut)
			}
			delivered := len(sink.Messages())
			args := append([]string{"quarantine", "release", strconv.FormatInt(held[0].ID, 10)}, tt.flags...)
			if out, errOut, code := mx(args...); code != 0 || !strings.Contains(out, "released") {
				t.Fatalf("%s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
			}
			if got := len(sink.Messages()) - delivered; got != 1 {
				t.Fatalf("the release delivered %d messages, want 1", got)
			}
			out, errOut, code = mx("domain", "get", dom, "-json")
			var d struct {
				Policy struct {
					SenderAllow []string `json:"sender_allow"`
				} `json:"policy"`
			}
			if err := json.Unmarshal([]byte(out), &d); code != 0 || err != nil {
				t.Fatalf("domain get: exit %d, %v\n%s%s", code, err, out, errOut)
			}
			if got := slices.Contains(d.Policy.SenderAllow, strings.ToLower(tt.sender)); got != tt.allowed {
				t.Fatalf("sender on the allow list %v = %v, want %v", d.Policy.SenderAllow, got, tt.allowed)
			}
		})
	}
}

// TestQuarantineReleaseRefusalShowsOnlyVisibleText: the API's answer to
// a refused release quotes the customer's server, whose replies its
// tenant writes, and other answers quote others' text too. An ESC there
// reached the terminal of the operator running `mxgrid quarantine
// release` (a window title, a cleared screen, OSC 52 clipboard writes);
// the error is spelled out as tables are, one line kept per line.
func TestQuarantineReleaseRefusalShowsOnlyVisibleText(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, `{"error":"quarantine: delivery failed, the message stays held: 550 5.7.1 not today \u001b]0;pwned\u0007\u001b[2J"}`)
	}))
	defer api.Close()
	cmd := exec.Command(binary, "quarantine", "release", "7", "-token-file", operatorTokenFile(t))
	cmd.Env = append(os.Environ(), "MXGRID_API="+api.URL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("release: exit 0, want 1")
	}
	errOut := stderr.String()
	if strings.ContainsFunc(strings.TrimSuffix(errOut, "\n"), func(r rune) bool { return !unicode.IsGraphic(r) && r != '\n' }) {
		t.Errorf("stderr holds a character the terminal acts on: %q", errOut)
	}
	if !strings.Contains(errOut, `not today \x1b]0;pwned\a\x1b[2J`) {
		t.Errorf("stderr does not show the server's reply: %q", errOut)
	}
}

// TestQuarantineJSONShowsOnlyVisibleText: -json prints the API's answer,
// and a held message's preview carries its text as the sender wrote it.
// JSON escapes C0 controls, but not DEL, the C1 controls or the bidi
// overrides: a body with U+009B (CSI, which xterm and VTE act on in
// UTF-8) cleared the screen of the operator running `mxgrid quarantine
// get ID -json`, and U+202E ran the rest of the line backwards. They are
// written as JSON's \u escapes: the same JSON, the same values.
func TestQuarantineJSONShowsOnlyVisibleText(t *testing.T) {
	tokFile := operatorTokenFile(t)
	cfg := nodetest.Config(t)
	cfg.Admin.OperatorTokenFile = tokFile
	d := nodetest.Domain("example.org", smtptest.StartSink(t).Addr)
	q := tenant.TagQuarantine
	d.Policy.TagAction = &q
	cfg.Domains = append(cfg.Domains, d)
	n := nodetest.Start(t, cfg, []scanner.Stage{{Check: nodetest.TagBand{}}})
	const text = "Pay \u009b2J\u009b]0;pwned\u0007 now \u007f\u202efdp.exe"
	msg := "Subject: TAGME\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text + "\r\n"
	if code, reply := smtptest.Send(t, n.SMTPAddr(), "x@sender.example", "bob@example.org", []byte(msg)); code != 250 {
		t.Fatalf("send: %d %s", code, reply)
	}
	mx := cli(t, n, tokFile)
	out, errOut, code := mx("quarantine", "list", "-json")
	var held []struct{ ID int64 }
	if err := json.Unmarshal([]byte(out), &held); code != 0 || err != nil || len(held) != 1 {
		t.Fatalf("quarantine list: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	out, errOut, code = mx("quarantine", "get", strconv.FormatInt(held[0].ID, 10), "-json")
	var got struct {
		Preview struct{ Text string } `json:"preview"`
	}
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("quarantine get: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if got.Preview.Text != text {
		t.Errorf("preview text %q, want %q: -json must keep the values", got.Preview.Text, text)
	}
	if strings.ContainsFunc(strings.TrimSuffix(out, "\n"), func(r rune) bool { return !unicode.IsGraphic(r) }) {
		t.Errorf("stdout holds a character the terminal acts on: %q", out)
	}
}

// TestTablesKeepTheirColumnsWhateverTheSenderWrote: the tables are read
// by scripts (awk '{print $7}', strings.Fields) as much as by people, and
// a sender's quoted local part may hold blanks: MAIL FROM:<"x 1 0.10"@...>
// made three fields of the SENDER cell of `quarantine list`, so the one a
// script read as SCORE said 0.10"@... and the real score moved on. A
// script releasing what scored low released this spam. A cell but the
// row's last (a subject, which people read) spells its blanks out.
func TestTablesKeepTheirColumnsWhateverTheSenderWrote(t *testing.T) {
	tokFile := operatorTokenFile(t)
	cfg := nodetest.Config(t)
	cfg.Admin.OperatorTokenFile = tokFile
	cfg.Tracking.FlushInterval = 20 * time.Millisecond
	d := nodetest.Domain("example.org", smtptest.StartSink(t).Addr)
	q := tenant.TagQuarantine
	d.Policy.TagAction = &q
	cfg.Domains = append(cfg.Domains, d)
	n := nodetest.Start(t, cfg, []scanner.Stage{{Check: nodetest.TagBand{}}})
	const sender = `"x 1 0.10 held"@sender.example`
	if code, reply := smtptest.Send(t, n.SMTPAddr(), sender, "bob@example.org", []byte("Subject: Invoice 7 TAGME\r\n\r\nPay.\r\n")); code != 250 {
		t.Fatalf("send: %d %s", code, reply)
	}
	mx := cli(t, n, tokFile)
	tests := []struct {
		name     string
		args     []string
		header   []string
		senderAt int
	}{
		{"quarantine list", []string{"quarantine", "list"}, []string{"ID", "TIME", "STATE", "DOMAIN", "SENDER", "RECIPIENTS", "SCORE", "SUBJECT"}, 4},
		{"messages search", []string{"messages", "search", "-recipient", "bob@example.org"}, []string{"ID", "TIME", "STATUS", "CODE", "REASON", "SENDER", "RECIPIENT", "QUEUE", "SCORE"}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			// The message log is written a moment after the reply.
			for deadline := time.Now().Add(5 * time.Second); len(lines) < 2 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				out, errOut, code := mx(tt.args...)
				if code != 0 {
					t.Fatalf("exit %d\n%s%s", code, out, errOut)
				}
				lines = strings.Split(strings.TrimSpace(out), "\n")
			}
			if len(lines) != 2 {
				t.Fatalf("want a header and one row: %q", lines)
			}
			row := strings.Fields(lines[1])
			if len(row) < len(tt.header) {
				t.Fatalf("row %q has fewer fields than %q", row, tt.header)
			}
			// Every column but a last subject is one field.
			if tt.header[len(tt.header)-1] != "SUBJECT" && len(row) != len(tt.header) {
				t.Errorf("row %q: %d fields, want %d (%q)", lines[1], len(row), len(tt.header), tt.header)
			}
			if got, want := row[tt.senderAt], `"x\x201\x200.10\x20held"@sender.example`; got != want {
				t.Errorf("SENDER field %q, want %q (row %q)", got, want, lines[1])
			}
			score := row[slices.Index(tt.header, "SCORE")]
			if _, err := strconv.ParseFloat(score, 64); err != nil {
				t.Errorf("SCORE field %q is not the score (row %q)", score, lines[1])
			}
		})
	}
}
