package admin

import (
	"strings"
	"testing"
)

func TestPasswordProblem(t *testing.T) {
	tests := []struct {
		name, email, pw string
		want            string // substring of the problem, "" for none
	}{
		{"passphrase", "ann@a.example", "correct horse battery", ""},
		{"exactly 12", "ann@a.example", "abcdefghijkl", ""},
		{"11", "ann@a.example", "abcdefghijk", "at least 12 characters"},
		{"12 runes, more bytes", "ann@a.example", strings.Repeat("é", 12), ""},
		{"11 runes, 22 bytes", "ann@a.example", strings.Repeat("é", 11), "at least 12 characters"},
		{"too long", "ann@a.example", strings.Repeat("x", MaxPasswordLen+1), "at most"},
		{"the email", "ann@alpha.example", "ann@alpha.example", "must not be the email"},
		{"the email, other case and spaces", "ann@alpha.example", " ANN@Alpha.example ", "must not be the email"},
		{"no email to compare", "", "ann@alpha.example", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PasswordProblem(tt.email, tt.pw)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("PasswordProblem(%q, %q) = %q, want %q", tt.email, tt.pw, got, tt.want)
			}
		})
	}
}

func TestHashPasswordRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		if ok, err := CheckPassword(h, pw); err != nil || ok != want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
}
