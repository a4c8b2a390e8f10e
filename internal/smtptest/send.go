package smtptest

import (
	"errors"
	"testing"

	"github.com/emersion/go-smtp"
)

// Send is a sending MTA's one attempt: data from sender to rcpt at addr,
// returning the reply that ended it (250 and "" when the message was
// accepted, else the first refusal's code and text). Connection failures
// fail the test.
func Send(t testing.TB, addr, sender, rcpt string, data []byte) (int, string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	refusal := func(err error) (int, string) {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se.Code, se.Message
		}
		t.Fatalf("send to %s: %v", rcpt, err)
		return 0, ""
	}
	if err := c.Hello("client.sender.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(sender, nil); err != nil {
		return refusal(err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return refusal(err)
	}
	w, err := c.Data()
	if err != nil {
		return refusal(err)
	}
	if _, err := w.Write(data); err != nil {
		return refusal(err)
	}
	if err := w.Close(); err != nil {
		return refusal(err)
	}
	return 250, ""
}
