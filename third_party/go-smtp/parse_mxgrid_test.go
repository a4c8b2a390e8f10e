package smtp

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseCmd: STARTTLS is the whole first word, and what follows it is
// its argument (mxgrid patch: any line that began with the eight letters
// was a bare STARTTLS).
func FuzzParseCmd(f *testing.F) {
	for _, s := range []string{"STARTTLS", "starttls \t", "STARTTLS now", "STARTTLSX", "STARTTL", "NOOP", "MAIL FROM:<a@b>", "EHLO x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, arg, err := parseCmd(line)
		trimmed := strings.TrimRight(line, "\r\n")
		isStartTLS := len(trimmed) >= 8 && strings.EqualFold(trimmed[:8], "STARTTLS")
		if cmd == "STARTTLS" {
			rest := trimmed[8:]
			if !isStartTLS || (rest != "" && rest[0] != ' ') || arg != strings.TrimSpace(rest) {
				t.Fatalf("parseCmd(%q) = STARTTLS %q", line, arg)
			}
		} else if isStartTLS && err == nil {
			t.Fatalf("parseCmd(%q) = %q %q, not STARTTLS", line, cmd, arg)
		}
	})
}

// FuzzParseBdat: a BDAT command is accepted only as "count [LAST]" with a
// 32-bit count, and then as that.
func FuzzParseBdat(f *testing.F) {
	for _, s := range []string{"10", "10 LAST", "0 last", "", "1 2 3", "99999999999", "-1", "10 FIRST", "4294967295"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		size, last, msg := parseBdat(arg)
		if msg != "" {
			return
		}
		fields := strings.Fields(arg)
		want, err := strconv.ParseUint(fields[0], 10, 32)
		if err != nil || size != want || last != (len(fields) == 2) || len(fields) > 2 ||
			(last && !strings.EqualFold(fields[1], "LAST")) {
			t.Fatalf("parseBdat(%q) = %d, %v", arg, size, last)
		}
	})
}

func TestParseForwardPath(t *testing.T) {
	for _, tc := range []struct{ in, want, rest string }{
		{in: "<postmaster>", want: "postmaster"},
		{in: "<PostMaster> NOTIFY=NEVER", want: "postmaster", rest: " NOTIFY=NEVER"},
		{in: "<postmaster@example.org>", want: "postmaster@example.org"},
		{in: "<postmasterx>"},
		{in: "<postmaster"},
		{in: "postmaster"},
		{in: "<bob>"},
		{in: "<bob@@example.org>"},
		{in: "<bob@evil.example@@example.org>"},
		{in: "<bob@evil.example@example.org>", want: "bob@evil.example@example.org"},
		{in: `<"bob@evil"@example.org>`, want: "bob@evil@example.org"},
		{in: `<"b\\\"ob"@example.org> SIZE=1`, want: `b\"ob@example.org`, rest: " SIZE=1"},
		{in: "<bob.smith@example.org> SIZE=1", want: "bob.smith@example.org", rest: " SIZE=1"},
		{in: "<@relay.example:bob@example.org>", want: "bob@example.org"},
		{in: "<bob@>"},
		{in: "<bob@example.org@>"},
		{in: `<""@example.org>`},
		{in: "<bob smith@example.org>"},
	} {
		p := parser{s: tc.in}
		got, err := p.parseForwardPath()
		if tc.want == "" {
			if err == nil {
				t.Errorf("parseForwardPath(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want || p.s != tc.rest {
			t.Errorf("parseForwardPath(%q) = %q, %v, rest %q; want %q, rest %q", tc.in, got, err, p.s, tc.want, tc.rest)
		}
	}
}

// TestParsePathAllocatesNothing: a mailbox with a dot-string local part
// is the command line's own text (mxgrid patch: it was built byte by
// byte, four allocations an address, two a message).
func TestParsePathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if allocs := testing.AllocsPerRun(100, func() {
		p := parser{s: "<bob.smith@example.org> SIZE=1"}
		if got, err := p.parsePath(); err != nil || got != "bob.smith@example.org" {
			t.Fatalf("parsePath = %q, %v", got, err)
		}
	}); allocs != 0 {
		t.Errorf("%.0f allocations per path", allocs)
	}
}

// TestParseArgsWithoutParametersAllocatesNothing: most MAIL and RCPT
// commands carry no parameter, and their empty map was an allocation each
// (mxgrid patch).
func TestParseArgsWithoutParametersAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, s := range []string{"", " ", "\t "} {
		if allocs := testing.AllocsPerRun(100, func() {
			if args, err := parseArgs(s); err != nil || len(args) != 0 {
				t.Fatalf("parseArgs(%q) = %v, %v", s, args, err)
			}
		}); allocs != 0 {
			t.Errorf("parseArgs(%q): %.0f allocations", s, allocs)
		}
	}
}

// TestMailParameters: a keyword that takes no value refuses one, a
// parameter of no value after its "=" is a syntax error, and a keyword
// given twice is refused rather than read by its last use (mxgrid patch:
// upstream took "SMTPUTF8=yes" and "SMTPUTF8=" for SMTPUTF8, and of two
// SIZE parameters checked only the last).
func TestMailParameters(t *testing.T) {
	for _, tc := range []struct{ params, want string }{
		{"", "250"},
		{" SMTPUTF8", "250"},
		{" smtputf8 SIZE=10", "250"},
		{" SMTPUTF8=yes", "555"},
		{" SMTPUTF8=", "501"},
		{" REQUIRETLS=1", "555"},
		{" SIZE=", "501"},
		{" SIZE=10 SIZE=99999999", "501"},
		{" SIZE=99999999 size=10", "501"},
		{" BODY=8BITMIME BODY=8BITMIME", "501"},
		{" SIZE=10=2", "501"},
	} {
		t.Run(tc.params, func(t *testing.T) {
			codes, _ := roundTrips(t, &envelopeLog{}, func(s *Server) {
				s.EnableSMTPUTF8, s.EnableREQUIRETLS, s.MaxMessageBytes = true, true, 1000
			}, []step{{"EHLO c.test\r\n", 1}, {"MAIL FROM:<a@example.org>" + tc.params + "\r\n", 1}})
			if got := strings.Join(codes, " "); got != "250 "+tc.want {
				t.Errorf("replies %s, want 250 %s", got, tc.want)
			}
		})
	}
}
