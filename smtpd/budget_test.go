package smtpd_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/internal/smtptest"
)

// TestMemoryBudgetUnderBigMessages: 20 senders send 2 MB each at once to a
// node whose memory budget holds the scan of one such message, and whose
// bodies do not wait for it (spool_wait 0); those that do not fit hear
// 452 4.3.1 and retry like an MTA. Every message is delivered
// exactly once, byte for byte, and the budget is whole again at the end.
func TestMemoryBudgetUnderBigMessages(t *testing.T) {
	n, sink := startNode(t, func(cfg *config.Config) {
		cfg.SMTP.MaxMessageBytes = 2<<20 + 512<<10
		cfg.SMTP.MemoryBudget = 12 << 20 // one 2 MB message at a time (4 x 2 MB each)
		cfg.SMTP.SpoolWait = 0
	})
	const senders = 20
	body := func(i int) []byte {
		line := fmt.Sprintf("sender %02d says hello, this line pads a big message to two megabytes.....\r\n", i)
		return []byte(fmt.Sprintf("From: s%d@sender.test\r\nSubject: big %d\r\nMessage-ID: <big-%d@sender.test>\r\n\r\n", i, i, i) +
			strings.Repeat(line, (2<<20)/len(line)))
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		deferred int
		failures []string
	)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := range 200 {
				code, msg := smtptest.Send(t, n.SMTPAddr(), fmt.Sprintf("s%d@sender.test", i), "bob@example.org", body(i))
				switch {
				case code == 250:
					return
				case code == 452 && strings.Contains(msg, "insufficient system resources"):
					mu.Lock()
					deferred++
					mu.Unlock()
					time.Sleep(time.Duration(20+attempt*5) * time.Millisecond)
				default:
					mu.Lock()
					failures = append(failures, fmt.Sprintf("sender %d: %d %s", i, code, msg))
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("unexpected replies: %v", failures)
	}
	if deferred == 0 {
		t.Fatal("no sender heard 452: the budget held 20 messages of 2 MB at once")
	}
	deliveredOnceIntact(t, sink.Messages(), senders, body)
	// Every reservation was released: a message that takes most of the
	// budget fits at the first attempt.
	if code, msg := smtptest.Send(t, n.SMTPAddr(), "late@sender.test", "bob@example.org", body(100)); code != 250 {
		t.Errorf("after the burst: %d %s", code, msg)
	}
	t.Logf("%d deferrals (452 4.3.1) before all %d messages were delivered", deferred, senders)
}

// deliveredOnceIntact checks that msgs hold exactly one message from each
// of the senders s0@sender.test, s1@…, each byte for byte want(i) under
// the Received field the node prepends.
func deliveredOnceIntact(t *testing.T, msgs []smtptest.Received, senders int, want func(i int) []byte) {
	t.Helper()
	got := map[string]int{}
	for _, m := range msgs {
		data, err := smtptest.StripPrepended(m.Data, "Received")
		if err != nil {
			t.Fatal(err)
		}
		got[m.From]++
		var i int
		fmt.Sscanf(m.From, "s%d@sender.test", &i)
		if !bytes.Equal(data, want(i)) {
			t.Errorf("message of %s altered in transit", m.From)
		}
	}
	if len(got) != senders {
		t.Fatalf("%d senders' messages delivered, want %d", len(got), senders)
	}
	for from, c := range got {
		if c != 1 {
			t.Errorf("%s delivered %d times", from, c)
		}
	}
}

// TestCustomerServerSittingOnMessagesHoldsNoBudget: a customer's server
// (any tenant points its route at one of its own) that reads each message
// and then sits on its final reply, or reads the body slowly, for up to
// relay.data_timeout, kept what the message's scan had reserved of
// smtp.memory_budget for all that time: three (spooled) or four (in
// memory) times its size, though relaying it holds only the body in
// memory, or nothing of a spooled one. Two 25 MB messages sent to such a
// server held 150 of the default 192 MiB for five minutes, and every
// other tenant's big mail waited smtp.spool_wait, then heard 452 4.3.1;
// a few more stalled and all mail did. The reservation is cut to what the
// relay holds once the scan is done, so another customer's message is
// delivered while the stalled ones wait.
func TestCustomerServerSittingOnMessagesHoldsNoBudget(t *testing.T) {
	tests := []struct {
		name      string
		threshold int64 // smtp.spool_threshold
		size      int   // of every message
		stalled   int   // messages the hostile server sits on
	}{
		// 2 x 3 x 2 MiB: the whole 12 MiB budget, while they are scanned.
		{"spooled messages", 64 << 10, 2 << 20, 2},
		// 3 x 4 x 1 MiB: the whole budget too.
		{"messages held in memory", 1 << 20, 1<<20 - 4<<10, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostile := smtptest.StartSink(t)
			gate := hostile.GateData()
			n, sink := startNode(t, func(cfg *config.Config) {
				cfg.SMTP.MaxMessageBytes = 3 << 20
				cfg.SMTP.MemoryBudget = 12 << 20
				cfg.SMTP.SpoolThreshold = tt.threshold
				cfg.SMTP.SpoolWait = time.Second
				cfg.Domains = append(cfg.Domains, smtptest.Domain("hostile.test", hostile.Addr))
			})
			body := func(i int) []byte {
				head := fmt.Sprintf("From: s%d@sender.test\r\nSubject: big %d\r\n\r\n", i, i)
				line := "a line of text that pads the message to the size the case gives it...\r\n"
				b := []byte(head + strings.Repeat(line, (tt.size-len(head))/len(line)))
				return b
			}
			replies := make(chan string, tt.stalled)
			for i := range tt.stalled {
				go func() {
					code, msg := smtptest.Send(t, n.SMTPAddr(), fmt.Sprintf("s%d@sender.test", i), "bob@hostile.test", body(i))
					replies <- fmt.Sprintf("%d %s", code, msg)
				}()
			}
			released := 0
			defer func() {
				for ; released < tt.stalled; released++ {
					gate.Reply <- nil
				}
			}()
			for range tt.stalled {
				select {
				case <-gate.Entered:
				case <-time.After(30 * time.Second):
					t.Fatal("the stalled messages never reached the hostile server")
				}
			}
			// Every stalled message is at the hostile server, which sits
			// on its reply: another customer's mail is not its to wait.
			if code, msg := smtptest.Send(t, n.SMTPAddr(), "s100@sender.test", "bob@example.org", body(100)); code != 250 {
				t.Errorf("another customer's message while the hostile server sits on %d: %d %s, want 250", tt.stalled, code, msg)
			}
			for ; released < tt.stalled; released++ {
				gate.Reply <- nil
			}
			for range tt.stalled {
				if r := <-replies; !strings.HasPrefix(r, "250 ") {
					t.Errorf("stalled message, once answered: %s, want 250", r)
				}
			}
			if got := len(sink.Messages()); got != 1 {
				t.Errorf("the other customer's server took %d messages, want 1", got)
			}
			if got := len(hostile.Messages()); got != tt.stalled {
				t.Errorf("the hostile server took %d messages, want %d", got, tt.stalled)
			}
		})
	}
}
