package smtpd

import (
	"testing"

	"github.com/emersion/go-smtp"
)

// replyLine is the reply as it went on the wire (one line), built in one
// allocation: it runs for the log line and every tracking record.
func TestReplyLine(t *testing.T) {
	for _, tt := range []struct {
		e    *smtp.SMTPError
		want string
	}{
		{&smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as 0ABC"}, "250 2.0.0 OK: queued as 0ABC"},
		{&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 12}, Message: ""}, "451 4.7.12 "},
		{&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, "550 5.1.1 no such user"},
	} {
		if got := replyLine(tt.e); got != tt.want {
			t.Errorf("replyLine = %q, want %q", got, tt.want)
		}
	}
	e := &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as 0ABC"}
	if n := testing.AllocsPerRun(100, func() { _ = replyLine(e) }); n != 1 {
		t.Errorf("replyLine allocated %.0f times, want 1", n)
	}
}
