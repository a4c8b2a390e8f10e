package smtpd

import "testing"

func TestASCIIHELO(t *testing.T) {
	for _, tc := range []struct{ helo, want string }{
		{"", "unknown"},
		{"mx.sender.test", "mx.sender.test"},
		{"[192.0.2.1]", "[192.0.2.1]"},
		{"café.sender.test", "xn--caf-dma.sender.test"},
		{"ＭＸ.sender.test", "mx.sender.test"},
		{"caf\xe9 host", `caf\xe9 host`},
		{"bad host ü", `bad host \u00fc`},
	} {
		if got := asciiHELO(tc.helo); got != tc.want {
			t.Errorf("asciiHELO(%q) = %q, want %q", tc.helo, got, tc.want)
		}
	}
}

// TestSanitizeClientText: what a client names itself reaches headers,
// logs, message tracking and the panel with nothing that breaks a line or
// reorders what a reader sees.
func TestSanitizeClientText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mx.sender.test", "mx.sender.test"},
		{"café.sender.test", "café.sender.test"},
		{"a\x00b\x0bc\x7fd", "a?b?c?d"},
		{"a\u0085b\u009fc", "a?b?c"},
		{"invoice\u202egpj.exe", "invoice?gpj.exe"},
		{"a\u2066b\u2069c\u200fd", "a?b?c?d"},
		{"a\u200bb\ufeffc", "a?b?c"},
		{"line\u2028two\u2029three", "line?two?three"},
		{"a\ue000b", "a?b"},
		{"caf\xe9", "caf?"},
	} {
		if got := sanitizeClientText(tc.in); got != tc.want {
			t.Errorf("sanitizeClientText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
