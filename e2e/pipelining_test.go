package e2e

import (
	"os/exec"
	"regexp"
	"slices"
	"testing"

	"github.com/mxgrid/mxgrid/internal/nodetest"
	"github.com/mxgrid/mxgrid/internal/testenv"
)

// TestPipeliningSender: swaks, a real client, sends MAIL, three RCPT (one
// for a domain we do not serve) and DATA in one group (RFC 2920). Each
// command gets its own reply, in order; the message reaches the customer's
// server once, for the two recipients accepted.
func TestPipeliningSender(t *testing.T) {
	swaks := testenv.Swaks(t)
	if swaks == "" {
		return
	}
	n, sink := nodetest.StartWithSink(t, nil)
	out, err := exec.Command(swaks, "--pipeline", "--server", n.SMTPAddr(), "--ehlo", "client.sender.test",
		"--from", "alice@sender.test", "--to", "a@example.org,c@unknown.test,b@example.org",
		"--header", "Subject: quarterly report", "--body", "Hello Bob,", "--timeout", "30").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	// swaks prints the group it sent (" -> ") and then the replies it read
	// ("<-  " accepted, "<** " refused), each reply's last line once.
	replies := regexp.MustCompile(`(?m)^<(?:-|\*\*) +(\d{3}) `).FindAllStringSubmatch(string(out), -1)
	var got []string
	for _, r := range replies {
		got = append(got, r[1])
	}
	// EHLO's, MAIL's, a@'s, c@unknown.test's, b@'s, DATA's, the message's.
	want := []string{"220", "250", "250", "250", "550", "250", "354", "250", "221"}
	if !slices.Equal(got, want) {
		t.Errorf("replies %q, want %q\n%s", got, want, out)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 || !slices.Equal(msgs[0].Rcpts, []string{"a@example.org", "b@example.org"}) {
		t.Fatalf("delivered %+v, want one message for a@ and b@example.org", msgs)
	}
}
