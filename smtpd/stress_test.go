package smtpd_test

import (
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/internal/metrictest"
)

// stressNode serves example.org with max_connections 10 (stressed from 8
// open until fewer than 6 are) through a trusted proxy, and the stress
// timeout it returns.
func stressNode(t *testing.T) (*testNode, func() []string, time.Duration) {
	t.Helper()
	const stress = 300 * time.Millisecond
	n, sink := startNode(t, func(c *config.Config) {
		c.SMTP.MaxConnections = 10
		c.SMTP.MaxConnectionsPerIP = 2
		c.SMTP.TrustedProxies = []string{"127.0.0.0/8"}
		c.SMTP.CommandTimeout = 10 * time.Second
		c.SMTP.StressCommandTimeout = stress
	})
	subjects := func() []string {
		var out []string
		for _, m := range sink.Messages() {
			if _, rest, ok := strings.Cut(string(m.Data), "Subject: "); ok {
				subject, _, _ := strings.Cut(rest, "\r\n")
				out = append(out, subject)
			}
		}
		return out
	}
	return n, subjects, stress
}

// waitStress waits, within a generous bound, for mxgrid_smtp_stress to read
// want.
func waitStress(t *testing.T, n *testNode, want float64) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); metrictest.Gauge(t, n.metrics, "mxgrid_smtp_stress", "") != want; {
		if time.Now().After(end) {
			t.Fatalf("mxgrid_smtp_stress is not %v", want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStressFreesHeldSlots: attackers from five /64s at the per-IP limit
// fill the node's 10 connections, each session sending a NOOP every
// second, inside the command timeout. Before, smtp.max_junk_commands (100)
// let each keep its slot for 100 s (~200 min at the defaults) and every
// other sender got "421 4.7.0 too many connections" all along. Now the
// node is under stress from its 8th connection: the sessions already
// open get the stress timeout at once, are shown out with 421, and a
// sender gets in and delivers within a few stress timeouts. Once the
// attackers are gone the usual limits return.
func TestStressFreesHeldSlots(t *testing.T) {
	n, subjects, stress := stressNode(t)
	var wg sync.WaitGroup
	done := make(chan struct{})
	shownOut := make(chan string, 10)
	for i := range 10 {
		c := greet(t, dialAs(t, n.SMTPAddr(), fmt.Sprintf("2001:db8:%x::%d", i/2, i%2+1)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					c.c.PrintfLine("QUIT")
					return
				case <-time.After(time.Second):
				}
				if err := c.c.PrintfLine("NOOP"); err != nil {
					return
				}
				if code, msg, err := c.c.ReadResponse(250); err != nil {
					shownOut <- fmt.Sprintf("%d %s", code, msg)
					return
				}
			}
		}()
	}

	start := time.Now()
	bound := 20 * stress
	var refusals int
	for {
		conn := dialAs(t, n.SMTPAddr(), "2001:db8:ff::1")
		tc := textproto.NewConn(conn)
		if code, _, _ := tc.ReadResponse(0); code == 220 {
			c := &client{t: t, c: tc}
			c.cmd(250, "EHLO client.sender.test")
			c.cmd(250, "MAIL FROM:<alice@sender.test>")
			c.cmd(250, "RCPT TO:<bob@example.org>")
			c.data(250, "Subject: through\r\n\r\nhello\r\n")
			break
		}
		conn.Close()
		refusals++
		if time.Since(start) > bound {
			close(done)
			wg.Wait()
			t.Fatalf("a sender refused %d times over %s (%d stress timeouts) while idle sessions held every connection", refusals, time.Since(start).Round(time.Millisecond), bound/stress)
		}
		time.Sleep(stress / 6)
	}
	close(done)
	wg.Wait()
	close(shownOut)
	var out []string
	for reply := range shownOut {
		if !strings.HasPrefix(reply, "421 ") {
			t.Errorf("an attacker's session ended with %q, want a 421", reply)
		}
		out = append(out, reply)
	}
	if len(out) == 0 {
		t.Error("no attacker's session was shown out")
	}
	if got := metrictest.Counter(t, n.metrics, "mxgrid_smtp_sessions_closed_by_limit_total", "stress_command_timeout"); got != float64(len(out)) {
		t.Errorf("sessions closed by the stress timeout: %v, want %d (%q)", got, len(out), out)
	}
	if got := subjects(); len(got) != 1 || got[0] != "through" {
		t.Errorf("delivered %q, want the sender's message", got)
	}

	// The attackers gone, the node leaves stress: a session may idle past
	// the stress timeout and send NOOPs again.
	waitStress(t, n, 0)
	if _, conds := n.health.Report(); len(conds) != 0 {
		t.Errorf("/readyz lists %+v after the stress", conds)
	}
	c := greet(t, dialAs(t, n.SMTPAddr(), "2001:db8:ff::1"))
	time.Sleep(3 * stress)
	for range 3 {
		c.cmd(250, "NOOP")
	}
	c.cmd(221, "QUIT")
}

// TestStressSparesMessagesUnderway: eight senders in the middle of their
// message bodies put the node under stress. The seven whose bodies keep
// coming are not cut, however long they take within data_timeout; the one
// whose body stops past the stress timeout is shown out with 421 4.4.2, as
// Postfix's stress timeout does (spared, a client that started a message
// and trickled its body held its slot for all of data_timeout). Between
// messages the stress limits hold: a session silent past the stress
// timeout, one sending a third command that moves no mail, one making an
// error are each shown out with 421 and counted, while a sender that goes
// straight to its message delivers. /readyz lists the stress as degraded,
// the node staying ready.
func TestStressSparesMessagesUnderway(t *testing.T) {
	n, subjects, stress := stressNode(t)
	var senders []*client
	for i := range 8 {
		c := greet(t, dialAs(t, n.SMTPAddr(), fmt.Sprintf("2001:db8:%x::%d", i/2, i%2+1)))
		c.cmd(250, "MAIL FROM:<alice@sender.test>")
		c.cmd(250, "RCPT TO:<bob@example.org>")
		c.cmd(354, "DATA")
		c.write(fmt.Sprintf("Subject: underway %d\r\n\r\nthe first half\r\n", i))
		senders = append(senders, c)
	}
	stalled, senders := senders[7], senders[:7]
	// The seven send a line four times per stress timeout until told.
	done := make(chan struct{})
	var sending sync.WaitGroup
	for _, c := range senders {
		sending.Go(func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(stress / 4):
				}
				if _, err := fmt.Fprint(c.c.W, "more of the body\r\n"); err != nil || c.c.W.Flush() != nil {
					return
				}
			}
		})
	}
	waitStress(t, n, 1)
	level, conds := n.health.Report()
	if level != health.Degraded || len(conds) != 1 || conds[0].Component != "smtp.stress" || !strings.Contains(conds[0].Reason, "reached 8 of smtp.max_connections 10") {
		t.Errorf("/readyz: %v %+v, want smtp.stress degraded", level, conds)
	}
	// Shown out by the stress timeout (300 ms), not command_timeout
	// (10 s): half of that is a generous bound.
	stalledAt := time.Now()
	if msg := stalled.expect(421); !strings.HasPrefix(msg, "4.4.2") {
		t.Errorf("a body stalled under stress answered %q, want 4.4.2", msg)
	}
	if d := time.Since(stalledAt); d > 5*time.Second {
		t.Errorf("a body stalled under stress was cut after %v, the usual command timeout's doing", d)
	}
	stalled.c.Close()

	// Each shown out in turn, from its own /64, once the one before has
	// left: the eight senders leave room for two.
	probe := func(i int) *client {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); metrictest.Gauge(t, n.metrics, "mxgrid_smtp_connections_active", "") > 8; {
			if time.Now().After(end) {
				t.Fatal("a session shown out is still open")
			}
			time.Sleep(10 * time.Millisecond)
		}
		return greet(t, dialAs(t, n.SMTPAddr(), fmt.Sprintf("2001:db8:1%x::1", i)))
	}
	idle := probe(0)
	if msg := idle.expect(421); !strings.HasPrefix(msg, "4.4.2") {
		t.Errorf("idle session shown out with %q, want 4.4.2", msg)
	}
	idle.c.Close()
	junk := probe(1)
	junk.cmd(250, "NOOP")
	if msg := junk.cmd(421, "NOOP"); !strings.HasPrefix(msg, "4.7.0") {
		t.Errorf("third junk command answered %q, want 4.7.0", msg)
	}
	junk.c.Close()
	bad := probe(2)
	bad.cmd(501, "BOGUS")
	bad.expect(421)
	bad.c.Close()
	through := probe(3)
	through.cmd(250, "MAIL FROM:<alice@sender.test>")
	through.cmd(250, "RCPT TO:<bob@example.org>")
	through.data(250, "Subject: through\r\n\r\nhello\r\n")
	through.cmd(221, "QUIT")

	time.Sleep(3 * stress)
	close(done)
	sending.Wait()
	for _, c := range senders {
		c.write("the second half\r\n.\r\n")
		c.expect(250)
		c.cmd(221, "QUIT")
	}
	if got := subjects(); len(got) != 8 {
		t.Errorf("delivered %q, want the seven messages underway and the sender's", got)
	}
	for _, limit := range []string{"stress_command_timeout", "stress_junk_commands", "stress_errors"} {
		if got := metrictest.Counter(t, n.metrics, "mxgrid_smtp_sessions_closed_by_limit_total", limit); got != 1 {
			t.Errorf("sessions closed by %s: %v, want 1", limit, got)
		}
	}
	waitStress(t, n, 0)
	if _, conds := n.health.Report(); len(conds) != 0 {
		t.Errorf("/readyz lists %+v after the stress", conds)
	}
}

// TestStressEndsForSessionsWaiting: a session that began waiting for its
// next command under stress gets the usual command timeout back when the
// node leaves stress. Before, it kept the stress deadline set as it began
// to wait, and was shown out with 421 after the stress had ended, counted
// as stress's doing.
func TestStressEndsForSessionsWaiting(t *testing.T) {
	n, _, stress := stressNode(t)
	var held []*client
	for i := range 8 {
		held = append(held, greet(t, dialAs(t, n.SMTPAddr(), fmt.Sprintf("2001:db8:%x::%d", i/2, i%2+1))))
	}
	waitStress(t, n, 1)
	c := greet(t, dialAs(t, n.SMTPAddr(), "2001:db8:ff::1"))
	for _, h := range held {
		h.c.Close()
	}
	waitStress(t, n, 0)
	time.Sleep(3 * stress)
	c.cmd(250, "NOOP")
	c.cmd(221, "QUIT")
}
