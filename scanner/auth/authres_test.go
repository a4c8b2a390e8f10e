package auth

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/mxgrid/mxgrid/scanner"
)

// resinfoReference is one resinfo as first written, string by string: the
// faster one must render every outcome the same.
func resinfoReference(method, result, reason string, props []prop) string {
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte('=')
	b.WriteString(result)
	if reason != "" {
		reason = publicReason(reason)
		if method == "dmarc" && result != "temperror" && result != "permerror" {
			b.WriteString(" (" + strings.NewReplacer("(", "", ")", "", "\\", "").Replace(reason) + ")")
		} else {
			b.WriteString(" reason=" + quoteReference(reason))
		}
	}
	for _, p := range props {
		b.WriteString(" " + p.key + "=" + pvalue(p.value))
	}
	return b.String()
}

func quoteReference(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func FuzzResinfoMatchesReference(f *testing.F) {
	f.Add(uint8(0), "none", "no DNS record found", "smtp.mailfrom", "alice@example.org", "", "")
	f.Add(uint8(1), "fail", `body hash "did" not\ match`+"\r\n", "header.d", "example.org", "header.i", "@example.org")
	f.Add(uint8(2), "fail", "p=reject (dis=quarantine) \\", "header.from", "example.org", "", "")
	f.Add(uint8(2), "temperror", "lookup (timeout)", "header.from", "a b", "", "")
	f.Add(uint8(3), "fail", "bad \xff utf-8 \n", "", "", "header.i", `"odd local"@x.example`)
	methods := []string{"spf", "dkim", "dmarc", "arc"}
	f.Fuzz(func(t *testing.T, m uint8, result, reason, k1, v1, k2, v2 string) {
		o := outcome{method: methods[int(m)%len(methods)], result: result, reason: reason}
		var props []prop
		for _, p := range []prop{{k1, v1}, {k2, v2}} {
			if p.key != "" {
				o.props[len(props)] = p
				props = append(props, p)
			}
		}
		want := resinfoReference(o.method, result, reason, props)
		// Alone, and between others in the shared buffer.
		if got := resinfos([]outcome{o}); len(got) != 1 || got[0] != want {
			t.Fatalf("resinfos(%+v) = %q, want %q", o, got, want)
		}
		other := outcome{method: "spf", result: "pass", props: [2]prop{{"smtp.mailfrom", "a@example.org"}}}
		if got := resinfos([]outcome{other, o, other}); len(got) != 3 || got[1] != want || got[0] != got[2] || got[0] != "spf=pass smtp.mailfrom=a@example.org" {
			t.Fatalf("resinfos(other, %+v, other) = %q, want %q in the middle", o, got, want)
		}
		if got, want := quote(reason), quoteReference(reason); got != want {
			t.Fatalf("quote(%q) = %q, want %q", reason, got, want)
		}
	})
}

func FuzzSymbolName(f *testing.F) {
	for _, s := range [][2]string{{"SPF_", "pass"}, {"SPF_HELO_", "temperror"}, {"DMARC_FAIL_", "reject"}, {"DKIM_", "Pass"}, {"ARC_", "maybe"}, {"SPF_", "helo_pass"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, prefix, result string) {
		if got, want := symbolName(prefix, result), prefix+strings.ToUpper(result); got != want {
			t.Fatalf("symbolName(%q, %q) = %q, want %q", prefix, result, got, want)
		}
	})
}

func TestPublicReason(t *testing.T) {
	for in, want := range map[string]string{
		"lookup sender.test. on 127.0.0.1:1: read udp 127.0.0.1:43764->127.0.0.1:1: read: connection refused": "lookup sender.test.: read: connection refused",
		"lookup x._domainkey.example. on [2001:db8::53]:53: no such host":                                     "lookup x._domainkey.example.: no such host",
		"dial tcp 10.0.0.2:53: connect: connection refused":                                                   "connect: connection refused",
		"lookup пример.test.: timeout":                                                                        `lookup \u043f\u0440\u0438\u043c\u0435\u0440.test.: timeout`,
		"too many DNS lookups":                                                                                "too many DNS lookups",
		"bad instance " + strings.Repeat("1", 900_000):                                                        "bad instance " + strings.Repeat("1", maxReason-len("bad instance ")),
		"bad instance " + strings.Repeat("\x80", 900_000):                                                     "bad instance " + strings.Repeat(`\x80`, (maxReason-len("bad instance "))/4) + `\x8`,
		"bad instance " + strings.Repeat("\\", 900_000):                                                       "bad instance " + strings.Repeat(`\`, maxReason-len("bad instance ")),
	} {
		if got := publicReason(in); got != want {
			t.Errorf("publicReason(%.200q) = %.200q, want %.200q", in, got, want)
		}
	}
}

// TestReasonQuotingTheSenderIsBounded: a reason that quotes what the
// sender wrote adds at most a few KB to our header, whatever it quotes:
// an ARC instance number of 0.9 MB made a 4.5 MB Authentication-Results
// field once escaped.
func TestReasonQuotingTheSenderIsBounded(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, func(c *Config) { c.ARC = true })
	tests := []struct{ name, pad string }{
		{"digits", "1"},
		{"not UTF-8", "\x80"},
		{"backslashes", `\`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte("ARC-Seal: i=" + strings.Repeat(tt.pad, 900_000) + "\r\n" + string(testMessage("alice@example.org")))
			env := &scanner.Envelope{ClientIP: netip.MustParseAddr("192.0.2.10"), HELO: "mail.example.org", MailFrom: "alice@example.org"}
			res, err := c.Check(context.Background(), env, scanner.Parse(raw))
			if err != nil {
				t.Fatal(err)
			}
			h := strings.Join(res.AuthResults, "; ")
			if !strings.Contains(h, "arc=fail reason=\"bad instance") || len(h) > 4<<10 {
				t.Errorf("Authentication-Results of %d bytes: %.300s", len(h), h)
			}
		})
	}
}

// isTokenReference is isToken as first written, searching the excluded
// characters for each byte.
func isTokenReference(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

func FuzzTokenTableMatchesReference(f *testing.F) {
	for _, s := range []string{"", "alice@example.org", "a b", "x=y", "\x7f", "\xff", `"q"`, "~!#$%&'*+-/=?^_`{|}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isToken(s), isTokenReference(s); got != want {
			t.Fatalf("isToken(%q) = %v, reference %v", s, got, want)
		}
	})
}
