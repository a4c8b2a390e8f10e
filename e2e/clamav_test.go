package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/testenv"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/clamav"
)

// These tests run a whole node (SMTP front end, pipeline built from the
// config, relay) in front of a recording sink: what the sender hears and
// what the customer's server gets are both checked.

func clamavNode(t *testing.T, clamd string, onError scanner.OnError) (*nodetest.Node, *nodetest.Sink) {
	t.Helper()
	return nodetest.StartWithSink(t, func(cfg *config.Config) {
		cfg.Antivirus.Clamd.Clamd = clamd
		cfg.Antivirus.Clamd.OnError = onError
		cfg.Antivirus.Clamd.Timeout = 5 * time.Second
	})
}

func clamavReadyz(t *testing.T, n *nodetest.Node) (int, string) {
	t.Helper()
	return readyzCondition(t, n, clamav.HealthComponent)
}

// readyzCondition asks the management listener's /readyz and returns its
// status and component's condition as "level: reason" ("" when none).
func readyzCondition(t *testing.T, n *nodetest.Node, component string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + n.ManagementAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status     string `json:"status"`
		Conditions []struct {
			Component, Level, Reason string
		} `json:"conditions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	for _, c := range body.Conditions {
		if c.Component == component {
			return resp.StatusCode, c.Level + ": " + c.Reason
		}
	}
	return resp.StatusCode, ""
}

func TestSMTPVirusIsRefused(t *testing.T) {
	n, sink := clamavNode(t, testenv.Clamd(t), scanner.OnErrorAccept)
	tests := []struct {
		name      string
		msg       []byte
		wantCode  int
		wantReply string
	}{
		{"EICAR in a plain part", []byte("From: alice@sender.test\r\nSubject: t\r\n\r\n" + string(testenv.EICAR()) + "\r\n"), 554, "5.7.1 message contains a virus"},
		{"EICAR in a zip", testenv.Attachment("files.zip", testenv.Zipped(t, "eicar.com", testenv.EICAR())), 554, "5.7.1 message contains a virus"},
		{"clamd-only signature", []byte("From: alice@sender.test\r\nSubject: t\r\n\r\n" + testenv.ClamdTestString + "\r\n"), 554, "MxGrid.Test.String"},
		{"clean", testenv.Message100KB(), 250, "2.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(sink.Messages())
			code, text := smtpSend(t, n.SMTPAddr(), "alice@sender.test", "bob@example.org", string(tt.msg))
			if code != tt.wantCode || !strings.Contains(text, tt.wantReply) {
				t.Errorf("reply %d %s, want %d containing %q", code, text, tt.wantCode, tt.wantReply)
			}
			delivered := len(sink.Messages()) - before
			if want := map[bool]int{true: 1, false: 0}[tt.wantCode == 250]; delivered != want {
				t.Errorf("downstream got %d messages, want %d", delivered, want)
			}
		})
	}
}

func TestSMTPClamdDown(t *testing.T) {
	tests := []struct {
		onError    scanner.OnError
		wantCode   int
		wantReady  int
		wantHealth string
	}{
		{scanner.OnErrorAccept, 250, http.StatusOK, "degraded"},
		{scanner.OnErrorTempfail, 451, http.StatusServiceUnavailable, "not_ready"},
	}
	for _, tt := range tests {
		t.Run(string(tt.onError), func(t *testing.T) {
			addr, stop := testenv.StartClamd(t)
			n, sink := clamavNode(t, "tcp://"+addr, tt.onError)
			if code, text := smtpSend(t, n.SMTPAddr(), "alice@sender.test", "bob@example.org", string(testenv.Message100KB())); code != 250 {
				t.Fatalf("with clamd up: %d %s", code, text)
			}
			stop()
			code, text := smtpSend(t, n.SMTPAddr(), "alice@sender.test", "bob@example.org", string(testenv.Message100KB()))
			if code != tt.wantCode {
				t.Errorf("with clamd down: reply %d %s, want %d", code, text, tt.wantCode)
			}
			msgs := sink.Messages()
			if tt.onError == scanner.OnErrorAccept {
				if len(msgs) != 2 || !strings.Contains(string(msgs[1].Data), clamav.HeaderScan+": incomplete\r\n") {
					t.Errorf("accepted unscanned message lacks %s: incomplete (%d messages)", clamav.HeaderScan, len(msgs))
				}
			} else if len(msgs) != 1 {
				t.Errorf("downstream got %d messages, want only the one sent while clamd was up", len(msgs))
			}
			status, cond := clamavReadyz(t, n)
			if status != tt.wantReady || !strings.HasPrefix(cond, tt.wantHealth+": clamd at tcp://"+addr) {
				t.Errorf("/readyz = %d %q, want %d %s naming clamd", status, cond, tt.wantReady, tt.wantHealth)
			}
			t.Logf("/readyz: %d %s", status, cond)
		})
	}
}

// The stage list the node builds from config has the clamav stage only
// when clamd is configured.
func TestNodeWithoutClamd(t *testing.T) {
	n, _ := nodetest.StartWithSink(t, nil)
	if code, text := smtpSend(t, n.SMTPAddr(), "alice@sender.test", "bob@example.org", "From: alice@sender.test\r\nSubject: t\r\n\r\n"+string(testenv.EICAR())+"\r\n"); code != 554 {
		t.Errorf("built-in engine alone: reply %d %s, want 554", code, text)
	}
	if _, cond := clamavReadyz(t, n); cond != "" {
		t.Errorf("clamd reported without clamd configured: %s", cond)
	}
}
