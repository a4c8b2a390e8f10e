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
