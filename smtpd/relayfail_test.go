package smtpd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/internal/smtptest"
	"github.com/mxgrid/mxgrid/mailaddr"
	"github.com/mxgrid/mxgrid/relay"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/smtpd"
)

// failures are the errors a fakeRelay returns (nil: success).
type failures struct {
	open error            // at connect or MAIL
	rcpt map[string]error // at RCPT, by recipient
	data error            // at DATA
}

// fakeRelay is a downstream that fails where the test says, without a
// network: at connect or MAIL (open), at RCPT per recipient, at DATA.
type fakeRelay struct {
	fail failures

	mu        sync.Mutex
	attempts  int // calls to Open
	opened    int // transactions Open returned
	closed    int
	delivered [][]string // each delivered message's recipients
	misuse    []string   // calls on a closed transaction
}

func (f *fakeRelay) Open(_ context.Context, _ relay.Route, _ mailaddr.Address, _ relay.MailOptions) (smtpd.Transaction, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	if f.fail.open != nil {
		return nil, f.fail.open
	}
	f.opened++
	return &fakeTx{f: f}, nil
}

type fakeTx struct {
	f      *fakeRelay
	rcpts  []string
	closed bool
}

func (tx *fakeTx) use(call string) {
	if tx.closed {
		tx.f.misuse = append(tx.f.misuse, call)
	}
}

func (tx *fakeTx) Rcpt(to mailaddr.Address) error {
	tx.f.mu.Lock()
	defer tx.f.mu.Unlock()
	tx.use("RCPT")
	if err := tx.f.fail.rcpt[to.String()]; err != nil {
		return err
	}
	tx.rcpts = append(tx.rcpts, to.String())
	return nil
}

func (tx *fakeTx) Recipients() int {
	tx.f.mu.Lock()
	defer tx.f.mu.Unlock()
	return len(tx.rcpts)
}

func (tx *fakeTx) TLS() bool { return false }

func (tx *fakeTx) Data(msg io.Reader, _ relay.EightBit) (string, error) {
	if _, err := io.Copy(io.Discard, msg); err != nil {
		return "", err
	}
	tx.f.mu.Lock()
	defer tx.f.mu.Unlock()
	tx.use("DATA")
	if tx.f.fail.data != nil {
		return "", tx.f.fail.data
	}
	tx.f.delivered = append(tx.f.delivered, tx.rcpts)
	return "2.0.0 queued as 42", nil
}

func (tx *fakeTx) Close() {
	tx.f.mu.Lock()
	defer tx.f.mu.Unlock()
	if !tx.closed {
		tx.closed = true
		tx.f.closed++
	}
}

// fixedScanner gives every message the same verdict.
type fixedScanner scanner.Verdict

func (v fixedScanner) Scan(context.Context, *scanner.Envelope, *scanner.Message, scanner.Policy) scanner.Verdict {
	return scanner.Verdict(v)
}

// startFakeRelay serves example.org through fr; sc nil delivers everything.
func startFakeRelay(t *testing.T, fr *fakeRelay, sc smtpd.Scanner) *testNode {
	t.Helper()
	cfg := testConfig(t)
	// Never dialled: the fake relay stands in for the network.
	cfg.Domains = append(cfg.Domains, smtptest.Domain("example.org", "192.0.2.1:25"))
	deps := configDeps(t, cfg, nil)
	deps.Relay = fr
	if sc != nil {
		deps.Scanner = sc
	}
	return startWith(t, cfg, deps)
}

func downstream(code int, enhanced [3]int, msg string) error {
	return &relay.Error{Code: code, Enhanced: enhanced, Message: msg, Err: errors.New("injected")}
}

// Failures injected at each downstream step reach the sender as the right
// reply, and no recipient or message is answered 250 that the downstream
// did not accept.
func TestDownstreamFailuresReachTheSender(t *testing.T) {
	type rcpt struct {
		addr string
		code int
	}
	tests := []struct {
		name  string
		fail  failures
		rcpts []rcpt
		// dataCode is the reply to the message; 0 when no recipient was
		// accepted and DATA is not sent.
		dataCode      int
		wantReply     string // in the last reply
		wantDelivered [][]string
		wantOpens     int
	}{
		{
			name:  "unreachable at connect",
			fail:  failures{open: downstream(451, [3]int{4, 4, 1}, "customer mail server unreachable, try again later")},
			rcpts: []rcpt{{"bob@example.org", 451}, {"carol@example.org", 451}}, wantReply: "4.4.1 customer mail server unreachable",
			// Nothing was opened, so each recipient tries again.
			wantOpens: 2,
		},
		{
			name: "sender refused at MAIL",
			fail: failures{open: downstream(550, [3]int{5, 7, 1}, "sender refused")},
			// A refused MAIL speaks about the sender: the recipient is not
			// remembered as refused, the downstream is asked again.
			rcpts: []rcpt{{"bob@example.org", 550}, {"bob@example.org", 550}}, wantReply: "5.7.1 sender refused",
			wantOpens: 2,
		},
		{
			name:  "one recipient refused at RCPT",
			fail:  failures{rcpt: map[string]error{"gone@example.org": downstream(550, [3]int{5, 1, 1}, "no such user")}},
			rcpts: []rcpt{{"gone@example.org", 550}, {"bob@example.org", 250}}, dataCode: 250,
			wantReply: "customer server: 2.0.0 queued as 42", wantDelivered: [][]string{{"bob@example.org"}}, wantOpens: 1,
		},
		{
			name: "first recipient tempfailed at RCPT",
			fail: failures{rcpt: map[string]error{"bob@example.org": downstream(451, [3]int{4, 4, 2}, "connection to customer mail server lost, try again later")}},
			// The broken transaction is dropped and the next recipient
			// opens a new one.
			rcpts: []rcpt{{"bob@example.org", 451}, {"carol@example.org", 250}}, dataCode: 250,
			wantReply: "2.0.0", wantDelivered: [][]string{{"carol@example.org"}}, wantOpens: 2,
		},
		{
			name:  "message refused at DATA",
			fail:  failures{data: downstream(554, [3]int{5, 6, 0}, "content refused")},
			rcpts: []rcpt{{"bob@example.org", 250}}, dataCode: 554, wantReply: "5.6.0 content refused", wantOpens: 1,
		},
		{
			name:  "message tempfailed at DATA",
			fail:  failures{data: downstream(452, [3]int{4, 3, 1}, "mailbox full")},
			rcpts: []rcpt{{"bob@example.org", 250}}, dataCode: 452, wantReply: "4.3.1 mailbox full", wantOpens: 1,
		},
		{
			name:  "timeout at DATA",
			fail:  failures{data: fmt.Errorf("relay to 192.0.2.1:25: end of DATA: %w", context.DeadlineExceeded)},
			rcpts: []rcpt{{"bob@example.org", 250}}, dataCode: 451, wantReply: "4.4.5 timed out", wantOpens: 1,
		},
		{
			name:  "unclassified error at DATA",
			fail:  failures{data: errors.New("secret internal detail")},
			rcpts: []rcpt{{"bob@example.org", 250}}, dataCode: 451, wantReply: "4.3.0 local error", wantOpens: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := &fakeRelay{fail: tt.fail}
			n := startFakeRelay(t, fr, nil)
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			var last string
			for _, r := range tt.rcpts {
				last = c.cmd(r.code, "RCPT TO:<%s>", r.addr)
			}
			if tt.dataCode != 0 {
				last = c.data(tt.dataCode, testMessage)
			}
			if !strings.Contains(last, tt.wantReply) {
				t.Errorf("last reply %q, want it to contain %q", last, tt.wantReply)
			}
			if strings.Contains(last, "secret") || strings.Contains(last, "injected") {
				t.Errorf("reply %q leaks the internal error", last)
			}
			c.cmd(221, "QUIT")
			checkRelayEnd(t, fr, tt.wantOpens, tt.wantDelivered)
		})
	}
}

// A verdict that refuses or defers the message closes the downstream
// transaction without sending it.
func TestRefusedVerdictClosesDownstreamUnsent(t *testing.T) {
	for _, tt := range []struct {
		verdict   scanner.Verdict
		code      int
		wantReply string
	}{
		{scanner.Verdict{Action: scanner.Reject}, 550, "5.7.1 message rejected as spam"},
		{scanner.Verdict{Action: scanner.Tempfail}, 451, "4.7.1 message could not be fully scanned"},
	} {
		t.Run(tt.verdict.Action.String(), func(t *testing.T) {
			fr := &fakeRelay{}
			n := startFakeRelay(t, fr, fixedScanner(tt.verdict))
			c := dial(t, n.SMTPAddr())
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			if got := c.data(tt.code, testMessage); !strings.Contains(got, tt.wantReply) {
				t.Errorf("reply %q, want %q", got, tt.wantReply)
			}
			checkRelayEnd(t, fr, 1, nil)
		})
	}
}

// An abandoned transaction (RSET) is closed downstream, never sent.
func TestResetClosesDownstreamUnsent(t *testing.T) {
	fr := &fakeRelay{}
	n := startFakeRelay(t, fr, nil)
	c := dial(t, n.SMTPAddr())
	c.cmd(250, "MAIL FROM:<alice@sender.test>")
	c.cmd(250, "RCPT TO:<bob@example.org>")
	c.cmd(250, "RSET")
	checkRelayEnd(t, fr, 1, nil)
}

// checkRelayEnd waits for every opened transaction to be closed (the
// session ends asynchronously after QUIT) and checks what was delivered.
func checkRelayEnd(t *testing.T, fr *fakeRelay, wantOpens int, wantDelivered [][]string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fr.mu.Lock()
		opened, closed := fr.opened, fr.closed
		fr.mu.Unlock()
		if closed == opened || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.attempts != wantOpens {
		t.Errorf("relay asked to open %d transactions, want %d", fr.attempts, wantOpens)
	}
	if fr.closed != fr.opened {
		t.Errorf("%d of %d downstream transactions left open", fr.opened-fr.closed, fr.opened)
	}
	if fmt.Sprint(fr.delivered) != fmt.Sprint(wantDelivered) {
		t.Errorf("delivered %v, want %v", fr.delivered, wantDelivered)
	}
	if len(fr.misuse) > 0 {
		t.Errorf("used after Close: %v", fr.misuse)
	}
}
