package smtp_test

import (
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// A MAIL or RCPT parameter the server recognises but does not offer is
// answered 555, as RFC 5321 §4.1.1.11 says of any parameter it cannot
// implement (and as Postfix answers an unsupported one), not 504.
func TestUnofferedParametersAnswered555(t *testing.T) {
	for _, tc := range []struct {
		setup string // a command before, "" for none
		cmd   string
	}{
		{"", "MAIL FROM:<a@example.com> RET=HDRS"},
		{"", "MAIL FROM:<a@example.com> ENVID=x"},
		{"", "MAIL FROM:<a@example.com> SMTPUTF8"},
		{"", "MAIL FROM:<a@example.com> REQUIRETLS"},
		{"", "MAIL FROM:<a@example.com> BODY=BINARYMIME"},
		{"MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com> NOTIFY=NEVER"},
		{"MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com> ORCPT=rfc822;b@example.com"},
		{"MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com> RRVS=2030-01-01T00:00:00Z"},
		{"MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com> MT-PRIORITY=1"},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			_, s, c, scanner, _ := testServerEhlo(t)
			defer s.Close()
			if tc.setup != "" {
				io.WriteString(c, tc.setup+"\r\n")
				scanner.Scan()
				if !strings.HasPrefix(scanner.Text(), "250 ") {
					t.Fatalf("%s: %q", tc.setup, scanner.Text())
				}
			}
			io.WriteString(c, tc.cmd+"\r\n")
			scanner.Scan()
			if !strings.HasPrefix(scanner.Text(), "555 5.5.4 ") {
				t.Errorf("%s: %q, want 555 5.5.4", tc.cmd, scanner.Text())
			}
		})
	}
}

// MAIL's AUTH parameter (RFC 4954 §5) belongs to the AUTH extension: a
// server that offers no mechanism (none at all, or none before TLS) answers
// it 555 as it answers any parameter of an extension it does not offer,
// whatever its value decodes to. One that offers AUTH still takes it.
func TestAuthParameterNeedsAuthOffered(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   []serverConfigureFunc
		want string
	}{
		{"no mechanism", []serverConfigureFunc{authDisabled}, "555 5.5.4 "},
		{"not before TLS", []serverConfigureFunc{func(s *smtp.Server) { s.AllowInsecureAuth = false }}, "555 5.5.4 "},
		{"offered", nil, "250 "},
	} {
		for _, param := range []string{"AUTH=<>", "AUTH=a@example.com"} {
			t.Run(tc.name+" "+param, func(t *testing.T) {
				_, s, c, scanner, caps := testServerEhlo(t, tc.fn...)
				defer s.Close()
				offered := false
				for cp := range caps {
					offered = offered || strings.HasPrefix(cp, "AUTH ")
				}
				if offered != (tc.want == "250 ") {
					t.Fatalf("EHLO capabilities %v: AUTH offered %v", caps, offered)
				}
				io.WriteString(c, "MAIL FROM:<root@example.com> "+param+"\r\n")
				scanner.Scan()
				if !strings.HasPrefix(scanner.Text(), tc.want) {
					t.Errorf("%s: %q, want %q", param, scanner.Text(), tc.want)
				}
			})
		}
	}
}

// The reply to a greeting without its argument names the command given.
func TestGreetingWithoutArgumentNamesItsVerb(t *testing.T) {
	for _, verb := range []string{"HELO", "EHLO"} {
		_, s, c, scanner := testServerGreeted(t)
		io.WriteString(c, verb+"\r\n")
		scanner.Scan()
		if want := "501 5.5.2 Domain/address argument required for " + verb; scanner.Text() != want {
			t.Errorf("%s: %q, want %q", verb, scanner.Text(), want)
		}
		s.Close()
	}
}

// VRFY takes a string (RFC 5321 §4.1.1.6: "VRFY" SP String): without
// one it is a syntax error, 501 5.5.4 as Postfix answers it, not the 252
// "will accept message" a mailbox gets, which answered a question never
// asked.
func TestVrfyNeedsAnArgument(t *testing.T) {
	for _, tc := range []struct {
		cmd, want string
	}{
		{"VRFY", "501 5.5.4 Syntax: VRFY address"},
		{"VRFY   ", "501 5.5.4 Syntax: VRFY address"},
		{"VRFY bob", "252 2.5.0 Cannot VRFY user, but will accept message"},
		{"VRFY <bob@example.com>", "252 2.5.0 Cannot VRFY user, but will accept message"},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			_, s, c, scanner, _ := testServerEhlo(t)
			defer s.Close()
			io.WriteString(c, tc.cmd+"\r\n")
			scanner.Scan()
			if scanner.Text() != tc.want {
				t.Errorf("%q: %q, want %q", tc.cmd, scanner.Text(), tc.want)
			}
		})
	}
}

// A MAIL or RCPT whose address does not parse is an address syntax error
// (RFC 3463 X.1.7 for the sender, X.1.3 for a recipient), as Postfix
// answers it; only a command without its FROM: or TO: is a command syntax
// error (X.5.2).
func TestBadAddressGetsAddressSyntaxCode(t *testing.T) {
	for _, tc := range []struct {
		setup string // a command before, "" for none
		cmd   string
		want  string
	}{
		{"", "MAIL FROM:<a@@example.com>", "501 5.1.7 bad sender address syntax"},
		{"", "MAIL FROM:<@example.com>", "501 5.1.7 bad sender address syntax"},
		{"", "MAIL FROM:<a b@example.com>", "501 5.1.7 bad sender address syntax"},
		{"", "MAIL FROM:<a@>", "501 5.1.7 bad sender address syntax"},
		{"", "MAIL <a@example.com>", "501 5.5.2 Was expecting MAIL arg syntax of FROM:<address>"},
		{"MAIL FROM:<a@example.com>", "RCPT TO:<b@@example.com>", "501 5.1.3 bad recipient address syntax"},
		{"MAIL FROM:<a@example.com>", "RCPT TO:<@example.com>", "501 5.1.3 bad recipient address syntax"},
		{"MAIL FROM:<a@example.com>", "RCPT TO:<b(c)@example.com>", "501 5.1.3 bad recipient address syntax"},
		{"MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com", "501 5.1.3 bad recipient address syntax"},
		{"MAIL FROM:<a@example.com>", "RCPT <b@example.com>", "501 5.5.2 Was expecting RCPT arg syntax of TO:<address>"},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			_, s, c, scanner, _ := testServerEhlo(t)
			defer s.Close()
			if tc.setup != "" {
				io.WriteString(c, tc.setup+"\r\n")
				scanner.Scan()
				if !strings.HasPrefix(scanner.Text(), "250 ") {
					t.Fatalf("%s: %q", tc.setup, scanner.Text())
				}
			}
			io.WriteString(c, tc.cmd+"\r\n")
			scanner.Scan()
			if scanner.Text() != tc.want {
				t.Errorf("%s: %q, want %q", tc.cmd, scanner.Text(), tc.want)
			}
		})
	}
}
