package e2e

import (
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// smtpSend runs one SMTP transaction (EHLO, MAIL, one RCPT, DATA), failing
// the test if any step before the message is refused, and returns the reply
// to the message.
func smtpSend(t *testing.T, addr, from, rcpt, msg string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := textproto.NewConn(conn)
	defer c.Close()
	for _, step := range []struct {
		line string
		want int
	}{{"", 220}, {"EHLO client.sender.test", 250}, {"MAIL FROM:<" + from + ">", 250}, {"RCPT TO:<" + rcpt + ">", 250}, {"DATA", 354}} {
		if step.line != "" {
			if err := c.PrintfLine("%s", step.line); err != nil {
				t.Fatal(err)
			}
		}
		if code, text, err := c.ReadResponse(step.want); err != nil {
			t.Fatalf("%q: got %d %s, want %d", step.line, code, text, step.want)
		}
	}
	w := c.DotWriter()
	_, _ = w.Write([]byte(strings.ReplaceAll(msg, "\r\n", "\n")))
	_ = w.Close()
	code, text, _ := c.ReadResponse(0)
	return code, text
}
